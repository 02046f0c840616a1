/**
 * Two writers on one run (issue 18.2): two `ceg train` of the same run, a `train` during a
 * sweep over the same store, and a writer that takes over from a killed one. Each must end
 * with one complete run equal to an uninterrupted one, no crash and no duplicated metric rows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { type MetricRow, RunStore, runId, CLAIMS_DIR } from '../src/runs/index.js';
import { runSpec } from '../src/train/sweep.js';
import { trainRun } from '../src/train/trainer.js';
import { LONG, ceg, tmp, waitFor, runDirs, metricLines, longConfig, strip, rng } from './faults-helpers.js';

const STEPS = 200;
const EVERY = 50;
const overrides = { train: { steps: STEPS, decaySteps: STEPS, evalInterval: EVERY, checkpointInterval: EVERY } };
const spec = (innovation = 'baseline') => runSpec(innovation, 'smoke', 1, 'wasm', { overrides });

const refs = new Map<string, Promise<MetricRow[]>>();
function reference(innovation = 'baseline'): Promise<MetricRow[]> {
  if (!refs.has(innovation))
    refs.set(
      innovation,
      trainRun(spec(innovation), new RunStore(tmp('ref'))).then((r) => r.metrics),
    );
  return refs.get(innovation)!;
}

/** One complete run: done, every evaluation once, a whole final checkpoint, the uninterrupted numbers, no leftovers. */
async function assertOneCompleteRun(root: string, innovation = 'baseline'): Promise<void> {
  const store = new RunStore(root);
  const run = store.get(runId(spec(innovation)))!;
  assert.ok(run, 'the run exists');
  assert.equal(run.status().state, 'done');
  const lines = metricLines(run.dir).map((m) => m.step);
  const want = Array.from({ length: STEPS / EVERY + 1 }, (_, i) => i * EVERY);
  assert.deepEqual(lines, want, 'each evaluation written exactly once, in order (no duplicated rows)');
  const ck = run.latestCheckpoint()!;
  assert.equal(ck.step, STEPS);
  assert.deepEqual(fs.readdirSync(ck.dir).sort(), ['checkpoint.json', 'state.json', 'tensors.bin']);
  assert.ok(run.loadCheckpoint(ck), 'the final checkpoint reads whole');
  assert.deepEqual(strip(run.metrics()), strip(await reference(innovation)));
  const junk = fs
    .readdirSync(run.dir)
    .filter((f) => !/^(spec\.json|status\.json|metrics\.jsonl|labels\.json|ckpt-\d+)$/.test(f));
  assert.deepEqual(junk, [], 'no temporary or half checkpoint left');
  assert.deepEqual(
    fs.readdirSync(path.join(root, CLAIMS_DIR)).filter((f) => f.endsWith('.lock')),
    [],
    'every claim released',
  );
}

test('two ceg train of one run, started with small random offsets, repeatedly: one complete run, no crash, no duplicate rows', async () => {
  const reps = LONG ? 12 : 2;
  const r = rng(42);
  for (let rep = 0; rep < reps; rep++) {
    const dir = tmp('two');
    const root = path.join(dir, 'runs');
    const config = longConfig(dir, STEPS, EVERY);
    const args = ['train', '--scale', 'smoke', '--backend', 'wasm', '--config', config, '--runs', root];
    const offset = Math.floor(r() * 3000);
    const a = ceg(args);
    await new Promise((res) => setTimeout(res, offset));
    const b = ceg(args);
    const [ea, eb] = await Promise.all([a.exit, b.exit]);
    assert.equal(ea.code, 0, `rep ${rep} (offset ${offset} ms), first writer:\n${a.out()}`);
    assert.equal(eb.code, 0, `rep ${rep} (offset ${offset} ms), second writer:\n${b.out()}`);
    assert.equal(
      [a.out(), b.out()].filter((o) => /\(cached\)/.test(o)).length,
      1,
      `rep ${rep}: exactly one trained, the other found it complete`,
    );
    await assertOneCompleteRun(root);
  }
});

test("ceg train during a sweep over the same store: it waits for the sweep's writer, never writes beside it", async () => {
  const reps = LONG ? 4 : 1;
  const r = rng(7);
  for (let rep = 0; rep < reps; rep++) {
    const dir = tmp('mix');
    const root = path.join(dir, 'runs');
    const config = longConfig(dir, STEPS, EVERY);
    const s = ceg([
      'sweep',
      '--scale',
      'smoke',
      '--innovations',
      'baseline,rope',
      '--jobs',
      '2',
      '--backend',
      'wasm',
      '--config',
      config,
      '--runs',
      root,
    ]);
    await waitFor('the sweep to start training', () => runDirs(root).length > 0 || s.child.exitCode !== null);
    await new Promise((res) => setTimeout(res, Math.floor(r() * 1000)));
    const t = ceg([
      'train',
      '--innovation',
      'rope',
      '--scale',
      'smoke',
      '--backend',
      'wasm',
      '--config',
      config,
      '--runs',
      root,
    ]);
    const [es, et] = await Promise.all([s.exit, t.exit]);
    assert.equal(es.code, 0, s.out());
    assert.equal(et.code, 0, t.out());
    await assertOneCompleteRun(root, 'baseline');
    await assertOneCompleteRun(root, 'rope');
  }
});

test('a writer killed with SIGKILL is taken over by the next one (its pid is gone), which completes the run exactly', async () => {
  const reps = LONG ? 4 : 1;
  const r = rng(99);
  for (let rep = 0; rep < reps; rep++) {
    const dir = tmp('takeover');
    const root = path.join(dir, 'runs');
    const config = longConfig(dir, STEPS, EVERY);
    const args = ['train', '--scale', 'smoke', '--backend', 'wasm', '--config', config, '--runs', root];
    const a = ceg(args);
    await waitFor(
      'a checkpoint',
      () => runDirs(root).some((d) => fs.readdirSync(d).some((f) => /^ckpt-\d+$/.test(f))) || a.child.exitCode !== null,
    );
    await new Promise((res) => setTimeout(res, Math.floor(r() * 500)));
    a.child.kill('SIGKILL');
    await a.exit;
    const lock = fs.readdirSync(path.join(root, CLAIMS_DIR)).filter((f) => f.endsWith('.lock'));
    assert.equal(lock.length, 1, 'the killed writer left its claim behind');
    const b = ceg(args);
    assert.equal((await b.exit).code, 0, b.out());
    await assertOneCompleteRun(root);
  }
});
