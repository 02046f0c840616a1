/**
 * Exclusive claims (src/runs/claim.ts): one holder at a time, takeover of dead holders only,
 * a holder that lost its claim notices before writing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import {
  tryClaim,
  acquireClaim,
  inspectClaim,
  ClaimLostError,
  ClaimWaitAborted,
  type ClaimHolder,
} from '../src/runs/index.js';
import { RunStore, CLAIMS_DIR } from '../src/runs/index.js';

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `ceg-claim-${name}-`));

/** Write a lock file as another holder would have (for dead/stale holder cases). */
function plant(file: string, h: Partial<ClaimHolder>): ClaimHolder {
  const now = new Date().toISOString();
  const full: ClaimHolder = {
    host: os.hostname(),
    pid: process.pid,
    startedAt: now,
    heartbeatAt: now,
    token: 'planted',
    ...h,
  };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(full));
  return full;
}

/** A pid that is certainly not running: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

test('a claim is exclusive: a second attempt sees the holder; release frees it', () => {
  const file = path.join(tmp('a'), 'run.lock');
  const a = tryClaim(file);
  assert.ok(a.ok);
  const held = JSON.parse(fs.readFileSync(file, 'utf8')) as ClaimHolder;
  assert.equal(held.pid, process.pid);
  assert.equal(held.host, os.hostname());
  assert.ok(Date.parse(held.startedAt) > 0 && Date.parse(held.heartbeatAt) > 0);
  const b = tryClaim(file);
  assert.equal(b.ok, false);
  if (!b.ok) assert.equal(b.holder.token, held.token);
  assert.equal(inspectClaim(file)?.alive, true);
  a.claim.check(); // still ours
  a.claim.release();
  assert.equal(fs.existsSync(file), false);
  assert.equal(inspectClaim(file), undefined);
  const c = tryClaim(file);
  assert.ok(c.ok, 'free again');
  c.claim.release();
});

test('the SLURM job/task id is recorded when given', () => {
  const file = path.join(tmp('job'), 'run.lock');
  const a = tryClaim(file, { job: '1234_7' });
  assert.ok(a.ok);
  assert.equal((JSON.parse(fs.readFileSync(file, 'utf8')) as ClaimHolder).job, '1234_7');
  a.claim.release();
});

test('a dead holder on this host (pid gone) is taken over; a live one is not', () => {
  const file = path.join(tmp('b'), 'run.lock');
  plant(file, { pid: deadPid(), token: 'dead' });
  const seen = inspectClaim(file)!;
  assert.equal(seen.alive, false);
  assert.match(seen.reason, /process \d+ is gone/);
  const a = tryClaim(file);
  assert.ok(a.ok, 'taken over');
  if (a.ok) {
    assert.equal(a.tookOver?.holder.token, 'dead');
    a.claim.release();
  }
  plant(file, { pid: process.ppid, token: 'live' }); // our parent is alive
  const b = tryClaim(file);
  assert.equal(b.ok, false);
});

test('a holder on another host is dead only when its heartbeat is older than the limit', () => {
  const file = path.join(tmp('c'), 'run.lock');
  const old = new Date(Date.now() - 60_000).toISOString();
  plant(file, { host: 'elsewhere', pid: 1, heartbeatAt: old, token: 'remote' });
  assert.equal(
    tryClaim(file, { staleAfterMs: 120_000 }).ok,
    false,
    'a 60 s old heartbeat is alive under a 120 s limit',
  );
  const r = tryClaim(file, { staleAfterMs: 30_000 });
  assert.ok(r.ok, 'and dead under a 30 s limit');
  if (r.ok) {
    assert.match(r.tookOver!.reason, /heartbeat 60 s old/);
    r.claim.release();
  }
});

test('a holder whose claim was taken over notices before writing (ClaimLostError); heartbeats refresh the time', async () => {
  const file = path.join(tmp('d'), 'run.lock');
  const a = tryClaim(file);
  assert.ok(a.ok);
  const t0 = a.claim.holder.heartbeatAt;
  await new Promise((r) => setTimeout(r, 15));
  a.claim.heartbeat();
  assert.ok(a.claim.holder.heartbeatAt > t0);
  assert.equal((JSON.parse(fs.readFileSync(file, 'utf8')) as ClaimHolder).heartbeatAt, a.claim.holder.heartbeatAt);
  // someone judged it stale and took over
  await new Promise((r) => setTimeout(r, 30));
  const b = tryClaim(file, { staleAfterMs: 10 });
  assert.ok(b.ok);
  assert.throws(() => a.claim.check(), ClaimLostError);
  assert.throws(() => a.claim.heartbeat(), ClaimLostError);
  a.claim.release(); // does not remove the new holder's lock
  assert.ok(fs.existsSync(file));
  if (b.ok) b.claim.check();
});

test('acquireClaim waits for a live holder and gets the claim once it is released; a signal stops the wait', async () => {
  const file = path.join(tmp('e'), 'run.lock');
  const a = tryClaim(file);
  assert.ok(a.ok);
  const waited: string[] = [];
  const p = acquireClaim(file, { pollMs: 20, onWait: (h) => waited.push(h.token) });
  setTimeout(() => a.claim.release(), 100);
  const c = await p;
  assert.deepEqual(waited, [a.claim.holder.token]);
  const ac = new AbortController();
  const q = acquireClaim(file, { pollMs: 20, signal: ac.signal });
  setTimeout(() => ac.abort('SIGINT'), 50);
  await assert.rejects(q, ClaimWaitAborted);
  c.release();
});

test('the run store keeps claims in <root>/.claims, outside the run folders', async () => {
  const root = tmp('store');
  const store = new RunStore(root);
  const c = await store.claim('0123456789abcdef');
  assert.equal(store.claimFile('0123456789abcdef'), path.join(root, CLAIMS_DIR, '0123456789abcdef.lock'));
  assert.equal(store.claimHolder('0123456789abcdef')?.holder.pid, process.pid);
  assert.deepEqual(store.ids(), []);
  c.release();
});

test('processes racing for one claim: exactly one wins each round, also when the lock holder is dead', async () => {
  const dir = tmp('race');
  const file = path.join(dir, 'run.lock');
  const script = `
    import { tryClaim } from ${JSON.stringify(path.resolve('src/runs/claim.ts'))};
    const go = Number(process.argv[1]);
    while (Date.now() < go) {}
    const r = tryClaim(${JSON.stringify(file)});
    process.stdout.write(r.ok ? 'won' : 'lost');
    // stay alive a while: a winner that has exited is a dead holder, rightly taken over
    setTimeout(() => {}, 3000);
  `;
  const rounds = process.env.CEG_FAULTS === 'long' ? 6 : 2; // npm run test:faults: more rounds
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 1) plant(file, { pid: deadPid(), token: 'dead' }); // everybody tries to take over
    const go = Date.now() + 4000; // all start together after tsx has loaded
    const outs = await Promise.all(
      Array.from(
        { length: 4 },
        () =>
          new Promise<string>((resolve) => {
            const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, String(go)], {
              stdio: ['ignore', 'pipe', 'inherit'],
            });
            let out = '';
            c.stdout.on('data', (d) => (out += d));
            c.on('exit', () => resolve(out));
          }),
      ),
    );
    assert.equal(outs.filter((o) => o === 'won').length, 1, `round ${round}: ${outs.join(',')}`);
    assert.equal(outs.filter((o) => o === 'lost').length, 3, `round ${round}: ${outs.join(',')}`);
    fs.rmSync(file, { force: true }); // the winners exited without releasing: clear for the next round
  }
});
