/**
 * Signals sent to real processes (issues 10.4 and 18.3): Ctrl-C / SIGTERM stop `ceg train` at
 * the next step boundary with a checkpoint and exit 130 / 143, and the run resumes to the
 * same metrics; a sweep passes the signal to its children and leaves no process behind; a
 * sweep killed with SIGKILL takes its children with it within seconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { type MetricRow, RunStore, runId } from '../src/runs/index.js';
import { runSpec } from '../src/train/sweep.js';
import { trainRun } from '../src/train/trainer.js';
import {
  LONG,
  ceg,
  tmp,
  waitFor,
  runDirs,
  metricLines,
  trainersOf,
  alive,
  longConfig,
  strip,
  rng,
} from './faults-helpers.js';

const STEPS = 400;
const overrides = { train: { steps: STEPS, decaySteps: STEPS, evalInterval: 50, checkpointInterval: 50 } };

/** The uninterrupted reference, trained in this process (once). */
let reference: Promise<MetricRow[]> | undefined;
function referenceMetrics(): Promise<MetricRow[]> {
  reference ??= trainRun(runSpec('baseline', 'smoke', 1, 'wasm', { overrides }), new RunStore(tmp('ref'))).then(
    (r) => r.metrics,
  );
  return reference;
}

for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  test(`${sig} to ceg train: a checkpoint, exit ${code} within 5 s with how to resume; the resumed run has the uninterrupted metrics`, async () => {
    const dir = tmp(sig);
    const root = path.join(dir, 'runs');
    const config = longConfig(dir, STEPS, 50);
    const args = ['train', '--scale', 'smoke', '--backend', 'wasm', '--config', config, '--runs', root];
    const p = ceg(args);
    // wait until it trains (an evaluation after step 0), then interrupt
    await waitFor(
      'training to start',
      () => runDirs(root).some((d) => metricLines(d).some((m) => m.step >= 50)) || p.child.exitCode !== null,
    );
    const sent = Date.now();
    p.child.kill(sig);
    const { code: got, at } = await p.exit;
    assert.equal(got, code, p.out());
    assert.ok(at - sent < 5000, `exited ${at - sent} ms after ${sig}`);
    assert.match(p.out(), new RegExp(`interrupted \\(${sig}\\) at step \\d+ with a checkpoint`));
    assert.match(p.out(), /to resume: ceg train --scale smoke/);
    const [run] = runDirs(root);
    const ck = fs.readdirSync(run).filter((f) => /^ckpt-\d+$/.test(f));
    assert.ok(ck.length > 0, 'a checkpoint was written');
    const stoppedAt = Math.max(...ck.map((f) => Number(f.slice(5))));
    assert.ok(stoppedAt < STEPS, `stopped early (step ${stoppedAt} of ${STEPS})`);
    if (sig === 'SIGTERM' && !LONG) return; // the resume is the same path as after SIGINT (npm run test:faults checks it too)
    // resume: the same command, to the end, with exactly the uninterrupted run's metrics
    const again = ceg(args);
    assert.equal((await again.exit).code, 0, again.out());
    const store = new RunStore(root);
    const resumed = store.get(runId(runSpec('baseline', 'smoke', 1, 'wasm', { overrides })))!;
    assert.equal(resumed.status().state, 'done');
    assert.deepEqual(strip(resumed.metrics()), strip(await referenceMetrics()));
  });
}

test('SIGINT to ceg sweep --jobs 2: the children checkpoint and exit, the sweep exits 130, no process is left behind; a second SIGINT stops at once', async () => {
  for (const second of [false, true]) {
    const dir = tmp('sweep-int');
    const root = path.join(dir, 'runs');
    const config = longConfig(dir, 2000, 50);
    const p = ceg([
      'sweep',
      '--scale',
      'smoke',
      '--innovations',
      'baseline,rope',
      '--jobs',
      '2',
      '--config',
      config,
      '--runs',
      root,
    ]);
    await waitFor(
      'two trainers training',
      () =>
        runDirs(root).filter((d) => metricLines(d).some((m) => m.step >= 50)).length === 2 || p.child.exitCode !== null,
    );
    const kids = trainersOf(root);
    assert.equal(kids.length, 2, `two child trainers: ${kids}`);
    const sent = Date.now();
    p.child.kill('SIGINT');
    if (second) {
      await new Promise((r) => setTimeout(r, 100));
      p.child.kill('SIGINT');
    }
    const { code, at } = await p.exit;
    assert.equal(code, 130, p.out());
    assert.ok(at - sent < 10_000, `the sweep exited ${at - sent} ms after SIGINT`);
    // no orphan: every child is gone (within a moment of the parent's exit)
    await waitFor('children to exit', () => kids.every((k) => !alive(k)), 5000).catch(() => {
      for (const k of kids) if (alive(k)) process.kill(k, 'SIGKILL'); // clean up before failing
      assert.fail(`children still running after the sweep exited: ${kids.filter(alive)}`);
    });
    assert.deepEqual(trainersOf(root), []);
    if (!second) {
      assert.match(p.out(), /sweep stopped \(SIGINT\)/);
      // each child stopped with a checkpoint of its own
      for (const d of runDirs(root))
        assert.ok(
          fs.readdirSync(d).some((f) => /^ckpt-\d+$/.test(f)),
          `${d} has a checkpoint`,
        );
    }
  }
});

test('kill -9 of a sweep: its children notice (IPC channel closed), checkpoint and exit within seconds', async () => {
  const reps = LONG ? 4 : 1;
  const r = rng(18);
  for (let rep = 0; rep < reps; rep++) {
    const dir = tmp('sweep-kill');
    const root = path.join(dir, 'runs');
    const config = longConfig(dir, 2000, 50);
    const p = ceg([
      'sweep',
      '--scale',
      'smoke',
      '--innovations',
      'baseline,rope',
      '--jobs',
      '2',
      '--config',
      config,
      '--runs',
      root,
    ]);
    await waitFor(
      'two trainers training',
      () =>
        runDirs(root).filter((d) => metricLines(d).some((m) => m.step >= 50)).length === 2 || p.child.exitCode !== null,
    );
    await new Promise((res) => setTimeout(res, Math.floor(r() * 1500))); // at a random point of training
    const kids = trainersOf(root);
    assert.equal(kids.length, 2, `two child trainers: ${kids}`);
    const sent = Date.now();
    p.child.kill('SIGKILL');
    await p.exit;
    await waitFor('orphaned children to exit', () => kids.every((k) => !alive(k)), 10_000).catch(() => {
      for (const k of kids) if (alive(k)) process.kill(k, 'SIGKILL');
      assert.fail(`children still running 10 s after their parent was killed: ${kids.filter(alive)}`);
    });
    const took = Date.now() - sent;
    assert.ok(took < 10_000, `children exited ${took} ms after the parent's death`);
    for (const d of runDirs(root)) {
      const status = JSON.parse(fs.readFileSync(path.join(d, 'status.json'), 'utf8'));
      assert.match(String(status.error), /interrupted \(disconnect\)/, `${d}: stopped because its parent is gone`);
    }
  }
});
