/**
 * Faults through the real CLI (issue #10 items 5 and 7): bad input that used to crash after
 * writing, every error type, a read-only store, a forbidden store, a full disk, and
 * `ceg runs --check/--repair`. Each ends with ONE `ceg:` line (no stack trace), exit 2 for
 * errors, nothing written, and — for the full disk — a re-run that resumes to the numbers of
 * an uninterrupted run. The tmpfs cases need `mount` (root); they are skipped, saying why,
 * where it is not permitted. CEG_FAULTS=long (npm run test:faults) tries more disk sizes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ConfigError } from '../src/config.js';
import { EngineError } from '../src/engine/index.js';
import { DataError } from '../src/data/index.js';
import { CegError } from '../src/ceg/index.js';
import { NoRunsError } from '../src/report/from-runs.js';
import { ExportError } from '../src/report/export.js';
import { UsageError } from '../src/cli/args.js';
import { CheckpointCorruptError } from '../src/runs/index.js';
import { describeError } from '../src/cli/errors.js';

const LONG = process.env.CEG_FAULTS === 'long';
const repo = path.resolve(import.meta.dirname, '..');
const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `ceg-fcli-${name}-`));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function ceg(args: string[], opts: { uid?: number; env?: Record<string, string> } = {}): Result {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 180_000,
    env: { ...process.env, CEG_PROGRESS: 'plain', ...opts.env },
    ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.uid } : {}),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Exactly one `ceg:` error line, no stack trace; returns that line. */
function oneErrorLine(r: Result, code = 2): string {
  assert.equal(r.code, code, `exit ${r.code}; stderr:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('ceg: '));
  assert.equal(lines.length, 1, `one error line; stderr:\n${r.stderr}`);
  return lines[0];
}

const metricsOf = (runDir: string) =>
  fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const { seconds: _s, ...rest } = JSON.parse(l);
      return rest;
    });

let golden: { root: string; id: string };
before(() => {
  const root = tmp('golden');
  const r = ceg(['train', '--scale', 'smoke', '--seed', '5', '--runs', root]);
  assert.equal(r.code, 0, r.stderr);
  golden = { root, id: fs.readdirSync(root).find((e) => /^[0-9a-f]{16}$/.test(e))! }; // not .claims/
});

// ---------------------------------------------------------------- bad input

function configFile(o: unknown): string {
  const f = path.join(tmp('cfg'), 'c.json');
  fs.writeFileSync(f, JSON.stringify(o));
  return f;
}

const LIMIT_CASES: [string, unknown, RegExp][] = [
  [
    'blockSize 1e7',
    { model: { blockSize: 1e7 } },
    /^ceg: model\.blockSize 10000000 is too large to train on wasm: the attention scores .* more than the 2147483647 one tensor can hold; .*model\.blockSize can be at most about \d+$/,
  ],
  [
    'nEmbd 1e6',
    { model: { nEmbd: 1e6 } },
    /^ceg: model\.nEmbd 1000000 is too large to train on wasm: parameter .* more than the 2147483647 one tensor can hold; .*model\.nEmbd can be at most about \d+$/,
  ],
  [
    'context 4096 at smoke',
    { model: { blockSize: 4096 } },
    /^ceg: model\.blockSize 4096 is too large to train on wasm: training needs about [\d.]+ GiB of tensor memory .* more than the 4\.0 GiB the wasm backend can address .*can be at most about \d+$/,
  ],
];

for (const [name, cfg, want] of LIMIT_CASES) {
  test(`bad input (${name}): train and sweep --jobs 2 refuse it naming field, value and limit; exit 2, one line, nothing written`, () => {
    const file = configFile(cfg);
    // (the sweep gets --data too: until #18.1 is fixed, sweep drops --config without --data)
    const data = tokenDir(6000, 6000);
    for (const args of [
      ['train', '--scale', 'smoke'],
      [
        'sweep',
        '--scale',
        'smoke',
        '--innovations',
        'baseline,rope',
        '--jobs',
        '2',
        '--data',
        data,
        '--tokenizer',
        'char',
      ],
    ]) {
      const runs = path.join(tmp('runs'), 'store');
      const r = ceg([...args, '--config', file, '--runs', runs]);
      assert.match(oneErrorLine(r), want);
      assert.equal(fs.existsSync(runs), false, 'nothing written');
    }
  });
}

/** A nanoGPT-format token folder with `train` and `val` tokens (char ids). */
function tokenDir(train: number, val: number): string {
  const dir = tmp('tokens');
  fs.writeFileSync(path.join(dir, 'train.bin'), Buffer.from(new Uint16Array(train).map((_, i) => (i * 7) % 50).buffer));
  fs.writeFileSync(path.join(dir, 'val.bin'), Buffer.from(new Uint16Array(val).map((_, i) => (i * 7) % 50).buffer));
  return dir;
}

test('a context longer than the data is refused before anything is written', () => {
  const dir = tokenDir(1000, 20);
  for (const args of [['train'], ['sweep', '--innovations', 'baseline,rope', '--jobs', '2']]) {
    const runs = path.join(tmp('runs'), 'store');
    const r = ceg([...args, '--scale', 'smoke', '--data', dir, '--tokenizer', 'char', '--runs', runs]);
    assert.match(
      oneErrorLine(r),
      /^ceg: model\.blockSize 32 is longer than the data: the val split \(.*\) has 20 tokens, so the context can be at most 19$/,
    );
    assert.equal(fs.existsSync(runs), false, 'nothing written');
  }
});

test('every error type of the project maps to one message and exit 2; I/O errors name the path', () => {
  for (const C of [UsageError, ConfigError, EngineError, DataError, CegError, NoRunsError, ExportError]) {
    assert.deepEqual(describeError(new C('the message')), { message: 'the message', exitCode: 2 }, C.name);
  }
  assert.equal(describeError(new CheckpointCorruptError('/r/ckpt-4', 'x'))?.exitCode, 2);
  const io = (code: string, p: string) => Object.assign(new Error(`${code}: x`), { code, path: p });
  assert.match(
    describeError(io('ENOSPC', '/s/r/m.jsonl'))!.message,
    /no space left .* writing \/s\/r\/m\.jsonl\. .*run the same command again; interrupted runs resume/,
  );
  assert.match(describeError(io('EROFS', '/s/r'))!.message, /^\/s\/r is on a read-only file system/);
  assert.match(
    describeError(io('EACCES', '/s/r/.status.json.tmp-1-ab'))!.message,
    /permission denied \(EACCES\) on \/s\/r:/,
    'a temporary file is named by its folder',
  );
  assert.equal(describeError(new TypeError('a bug')), null, 'bugs keep their stack trace');
});

test('CegError and NoRunsError through the real commands: one line, exit 2', () => {
  // a store holding only rope runs: the CEG table has no baseline
  const root = tmp('nobase');
  const r0 = ceg(['train', '--scale', 'smoke', '--innovation', 'rope', '--runs', root]);
  assert.equal(r0.code, 0, r0.stderr);
  const r = ceg(['report', '--scale', 'smoke', '--runs', root]);
  assert.match(oneErrorLine(r), /^ceg: no "baseline" run at scale "smoke"/);
  const f = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'scripts/figures.ts', '--runs', tmp('empty'), '--scale', 'smoke', '--out', tmp('figs')],
    { cwd: repo, encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(f.status, 2, f.stderr);
  assert.match(f.stderr, /no completed runs at scale "smoke"/);
  assert.doesNotMatch(f.stderr, /^\s+at /m);
});

// ---------------------------------------------------------------- check / repair

test('ceg runs --check lists each damaged run with what is wrong (exit 1); --repair fixes them (exit 0); training resumes them to the same numbers', () => {
  const root = tmp('check');
  const ids = ['00000000000000c1', '00000000000000c2', '00000000000000c3'];
  fs.cpSync(path.join(golden.root, golden.id), path.join(root, golden.id), { recursive: true });
  const healthy = path.join(root, golden.id);
  // three more copies of the same run under other names, each damaged differently
  for (const id of ids) fs.cpSync(healthy, path.join(root, id), { recursive: true });
  fs.writeFileSync(path.join(root, ids[0], 'status.json'), '{"state":');
  fs.truncateSync(
    path.join(root, ids[1], 'metrics.jsonl'),
    fs.statSync(path.join(root, ids[1], 'metrics.jsonl')).size - 7,
  );
  const t = path.join(root, ids[2], 'ckpt-12', 'tensors.bin');
  const b = fs.readFileSync(t);
  b[100] ^= 0x10;
  fs.writeFileSync(t, b);
  const before = fs
    .readdirSync(healthy, { recursive: true })
    .map(String)
    .sort()
    .map((f) => [f, fs.statSync(path.join(healthy, f)).mtimeMs]);

  const c = ceg(['runs', '--check', '--runs', root]);
  assert.equal(c.code, 1, c.stderr);
  assert.match(c.stdout, /checked 4 run\(s\) .*: 1 healthy, 3 damaged/);
  assert.match(c.stdout, new RegExp(`${ids[0]} .*\\n  damaged: status\\.json: is not valid JSON`));
  assert.match(c.stdout, new RegExp(`${ids[1]} .*\\(done\\)\\n  damaged: metrics\\.jsonl: ends in a torn line`));
  assert.match(
    c.stdout,
    new RegExp(`${ids[2]} .*\\(done\\)\\n  damaged: ckpt-12: corrupt: tensors\\.bin does not match its sha256`),
  );
  assert.doesNotMatch(c.stdout, new RegExp(`^${golden.id}`, 'm'), 'the healthy run is not listed');
  const list = ceg(['runs', '--runs', root]);
  assert.equal(list.code, 0, 'listing a damaged store works');

  const r = ceg(['runs', '--repair', '--runs', root]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /repaired: reset the status to running/);
  assert.match(r.stdout, /repaired: moved ckpt-12 to .*quarantine/);
  const after = fs
    .readdirSync(healthy, { recursive: true })
    .map(String)
    .sort()
    .map((f) => [f, fs.statSync(path.join(healthy, f)).mtimeMs]);
  assert.deepEqual(after, before, 'the healthy run is not touched');
  assert.equal(ceg(['runs', '--check', '--runs', root]).code, 0);
  // the reset runs are resumed by training; theirs are the golden numbers (same spec)
  for (const id of [ids[0], ids[1]]) {
    fs.rmSync(healthy, { recursive: true }); // so that training the golden spec reopens the damaged copy under the real id
    fs.renameSync(path.join(root, id), healthy);
    const t2 = ceg(['train', '--scale', 'smoke', '--seed', '5', '--runs', root]);
    assert.equal(t2.code, 0, t2.stderr);
    assert.doesNotMatch(t2.stdout, /\(cached\)/);
    assert.deepEqual(metricsOf(healthy), metricsOf(path.join(golden.root, golden.id)));
  }
});

// ---------------------------------------------------------------- read-only, forbidden, full

function tryMount(dir: string, opts: string): string | null {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir], { encoding: 'utf8' });
  return r.status === 0 ? null : (r.stderr || r.error?.message || `mount exited ${r.status}`).trim();
}
const mounts: string[] = [];
after(() => {
  for (const m of mounts) spawnSync('umount', [m]);
});

test('a read-only store: done runs are served and listed, writing commands end in one line naming the path, nothing changes', (t) => {
  const mnt = tmp('ro');
  const why = tryMount(mnt, 'size=16m');
  if (why) return t.skip(`cannot mount a tmpfs here (${why})`);
  mounts.push(mnt);
  const root = path.join(mnt, 'runs');
  fs.mkdirSync(root);
  fs.cpSync(path.join(golden.root, golden.id), path.join(root, golden.id), { recursive: true });
  const remount = spawnSync('mount', ['-o', 'remount,ro', mnt], { encoding: 'utf8' });
  assert.equal(remount.status, 0, remount.stderr);
  const cached = ceg(['train', '--scale', 'smoke', '--seed', '5', '--runs', root]);
  assert.equal(cached.code, 0, cached.stderr);
  assert.match(cached.stdout, /\(cached\)/);
  assert.equal(ceg(['runs', '--check', '--runs', root]).code, 0);
  const fresh = ceg(['train', '--scale', 'smoke', '--seed', '6', '--runs', root]);
  assert.match(oneErrorLine(fresh), new RegExp(`^ceg: ${root}.* is on a read-only file system \\(EROFS\\)`));
  assert.deepEqual(fs.readdirSync(root), [golden.id]);
});

test('a store this user may not write: one line naming the path (EACCES), exit 2', (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root to run the CLI as another user');
  const root = tmp('forbidden');
  fs.chmodSync(root, 0o755);
  const r = ceg(['train', '--scale', 'smoke', '--seed', '6', '--runs', root], {
    uid: 65534,
    env: { HOME: os.tmpdir() },
  });
  if (r.code !== 2 && /EACCES.*(tsx|node_modules|\.ts)/.test(r.stderr))
    return t.skip(`user nobody cannot run the project here: ${r.stderr.split('\n')[0]}`);
  assert.match(oneErrorLine(r), new RegExp(`^ceg: permission denied \\(EACCES\\) on ${root}`));
  assert.deepEqual(fs.readdirSync(root), []);
});

test('a full disk: one line naming the file and saying a re-run resumes; with space again the re-run ends with the uninterrupted numbers', (t) => {
  // a smoke checkpoint is ~370 KB: these sizes run out at different points (run folder, metrics, checkpoints, prune)
  const sizes = LONG ? [64, 200, 400, 600, 800, 1000, 1100, 1200, 1400] : [600];
  let full = 0;
  for (const kb of sizes) {
    const mnt = tmp('full');
    const why = tryMount(mnt, `size=${kb}k`);
    if (why) return t.skip(`cannot mount a tmpfs here (${why})`);
    mounts.push(mnt);
    const root = path.join(mnt, 'runs');
    const r = ceg(['train', '--scale', 'smoke', '--seed', '5', '--runs', root]);
    if (r.code === 0) continue; // it fit: nothing to check at this size
    full += 1;
    const line = oneErrorLine(r);
    assert.match(
      line,
      new RegExp(
        `^ceg: no space left on the device \\(ENOSPC\\) writing ${mnt}/\\S+\\. .*run the same command again; interrupted runs resume from their last checkpoint$`,
      ),
      `size ${kb}k`,
    );
    assert.equal(spawnSync('mount', ['-o', 'remount,size=16m', mnt]).status, 0);
    const again = ceg(['train', '--scale', 'smoke', '--seed', '5', '--runs', root]);
    assert.equal(again.code, 0, `size ${kb}k: ${again.stderr}`);
    assert.deepEqual(
      metricsOf(path.join(root, golden.id)),
      metricsOf(path.join(golden.root, golden.id)),
      `size ${kb}k`,
    );
    assert.equal(ceg(['runs', '--check', '--runs', root]).code, 0, `size ${kb}k: store healthy after the resume`);
  }
  assert.ok(full > 0, 'at least one size ran out of space (else this test checked nothing)');
});
