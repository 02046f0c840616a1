import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { tf } from '../src/engine/index.js';
import { RunStore } from '../src/runs/index.js';
import { trainRun } from '../src/train/trainer.js';
import { runSpec, ensureRuns } from '../src/train/sweep.js';
import { stepFlops } from '../src/model/flops.js';

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `ceg-${name}-`));
const strip = (rows: { seconds: number }[]) => rows.map(({ seconds: _s, ...r }) => r);

test('a smoke run records every evaluation point with steps, tokens, exact FLOPs, seconds, losses, lr', async () => {
  const spec = runSpec('baseline', 'smoke', 1, 'wasm');
  const { metrics, cached } = await trainRun(spec, new RunStore(tmp('a')));
  assert.equal(cached, false);
  const { steps, evalInterval, batchSize, gradAccum } = spec.train;
  assert.deepEqual(
    metrics.map((m) => m.step),
    Array.from({ length: steps / evalInterval + 1 }, (_, i) => i * evalInterval),
  );
  const perStep = batchSize * gradAccum * spec.model.blockSize;
  for (const m of metrics) {
    assert.equal(m.tokens, m.step * perStep);
    assert.equal(m.flops, m.step * stepFlops(spec.model, perStep).total);
    assert.ok(m.valLoss! > 0 && Number.isFinite(m.valLoss));
  }
  assert.equal(metrics[0].trainLoss, null);
  assert.ok(metrics[metrics.length - 1].valLoss! < metrics[0].valLoss!, 'validation loss falls');
  assert.ok(metrics[metrics.length - 1].seconds > 0);
});

test('a completed run is returned from the store without training', async () => {
  const store = new RunStore(tmp('b'));
  const spec = runSpec('rope', 'smoke', 2, 'wasm');
  const a = await trainRun(spec, store);
  const b = await trainRun(spec, store);
  assert.equal(b.cached, true);
  assert.deepEqual(b.metrics, a.metrics);
});

test('a crashed run resumes from its checkpoint and ends with the same numbers as an uninterrupted one', async () => {
  const spec = runSpec('layernorm', 'smoke', 3, 'wasm');
  const ref = await trainRun(spec, new RunStore(tmp('c')));
  const store = new RunStore(tmp('d'));
  // checkpoint every 4 steps in smoke: crash after 6 steps, i.e. 2 steps after the checkpoint
  await assert.rejects(trainRun(spec, store, { crashAfterSteps: 6 }), /simulated crash/);
  assert.equal(store.get(ref.run.id)!.status().state, 'failed');
  const resumed = await trainRun(spec, store);
  assert.equal(resumed.cached, false);
  assert.deepEqual(strip(resumed.metrics), strip(ref.metrics));
});

test('MoE and sparse variants train through the same loop; memory stays flat across steps', async () => {
  const store = new RunStore(tmp('e'));
  const counts: number[] = [];
  for (const inn of ['moe', 'sparse', 'mqa']) {
    const spec = runSpec(inn, 'smoke', 1, 'wasm');
    await trainRun(spec, store, { onStep: () => counts.push(tf.memory().numTensors) });
  }
  // every run disposes what it made: tensor count after each step never grows within a run
  const runs = [counts.slice(0, 12), counts.slice(12, 24), counts.slice(24, 36)];
  for (const r of runs) assert.equal(Math.max(...r.slice(1)), Math.min(...r.slice(1)), `tensor counts ${r.join(',')}`);
});

test('kill -9 in the middle of a CLI run leaves a readable store and the re-run matches', async () => {
  const root = tmp('f');
  const env = { ...process.env, CEG_RUNS: root };
  const args = [
    '--import',
    'tsx',
    'src/cli/main.ts',
    'train',
    '--scale',
    'smoke',
    '--innovation',
    'baseline',
    '--seed',
    '4',
  ];
  const child = spawn(process.execPath, args, { env, stdio: 'ignore' });
  // wait until a checkpoint exists, then kill without warning
  const t0 = Date.now();
  let killed = false;
  while (Date.now() - t0 < 60_000) {
    await new Promise((r) => setTimeout(r, 20));
    const dirs = fs.existsSync(root) ? fs.readdirSync(root) : [];
    const ck = dirs.some(
      (d) => fs.existsSync(path.join(root, d)) && fs.readdirSync(path.join(root, d)).some((f) => f.startsWith('ckpt-')),
    );
    if (ck) {
      child.kill('SIGKILL');
      killed = true;
      break;
    }
    if (child.exitCode !== null) break;
  }
  if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
  const store = new RunStore(root);
  const spec = runSpec('baseline', 'smoke', 4, 'wasm');
  const run = store.get((await import('../src/runs/index.js')).runId(spec))!;
  assert.ok(run, 'run dir exists');
  run.metrics(); // readable, whatever the moment of the kill
  const resumed = await trainRun(spec, store);
  const ref = await trainRun(spec, new RunStore(tmp('g')));
  assert.deepEqual(strip(resumed.metrics), strip(ref.metrics));
  if (!killed) console.log('(the child finished before a checkpoint was seen; resume path not exercised this time)');
});

test('sweeps name every bad input before training anything', async () => {
  const store = new RunStore(tmp('h'));
  await assert.rejects(
    ensureRuns({ scale: 'smoke', innovations: ['ropee'], seeds: [1], backend: 'wasm', store, stream: null }),
    /unknown innovation "ropee"; valid: baseline/,
  );
  await assert.rejects(
    ensureRuns({ scale: 'huge', innovations: ['rope'], seeds: [1], backend: 'wasm', store, stream: null }),
    /unknown scale "huge"; valid: smoke, micro/,
  );
  assert.equal(store.list().length, 0);
});

test('side-by-side step timing: every variant gets samples, files round-trip, wall-clock CEG formula', async () => {
  const { measureStepTimes, saveTiming, loadTimings, calibratedSecondsCeg } = await import('../src/train/timing.js');
  const t = await measureStepTimes({
    scale: 'smoke',
    innovations: ['baseline', 'mqa'],
    backend: 'wasm',
    steps: 2,
    rounds: 2,
  });
  assert.deepEqual(
    t.results.map((r) => r.innovation),
    ['baseline', 'mqa'],
  );
  for (const r of t.results) {
    assert.equal(r.samples.length, 4);
    assert.ok(
      r.msPerStep > 0 && r.msPerStep >= Math.min(...r.samples) && r.msPerStep <= Math.max(...r.samples),
      'median lies within the samples',
    );
  }
  const root = tmp('timing');
  saveTiming(root, t);
  const stored = loadTimings(root, 'smoke', 'wasm')!;
  assert.equal(stored.sets.length, 1);
  assert.equal(stored.sets[0].kernels, t.kernels);
  assert.deepEqual(stored.sets[0].results, t.results);
  assert.equal(loadTimings(root, 'micro', 'wasm'), undefined);
  // a variant twice as good per step whose steps take twice as long has wall-clock CEG 1
  assert.equal(calibratedSecondsCeg(2, 100, 200), 1);
  assert.equal(calibratedSecondsCeg(1.5, 300, 100), 4.5);
  assert.equal(calibratedSecondsCeg(null, 100, 100), null);
});

test('MoE: an expert that gets no token in a step trains with a zero gradient (decay only), not an error', async () => {
  const { trainStep, stepState } = await import('../src/train/step.js');
  const { initParams, decayedParams } = await import('../src/model/params.js');
  const { AdamW } = await import('../src/train/adamw.js');
  const spec = runSpec('moe', 'smoke', 1, 'wasm');
  // 2 tokens, top-1 of 4 experts: at least 2 experts per layer receive nothing
  const cfg = { ...spec.model, moe: { ...spec.model.moe, topK: 1 } };
  const tc = { ...spec.train, batchSize: 1, gradAccum: 1, gradClip: 0 };
  const small = { ...cfg, blockSize: 2 };
  const params = initParams(small, 3);
  const before = new Map([...params].map(([n, p]) => [n, Array.from(p.dataSync())]));
  const opt = new AdamW(params, {
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    weightDecay: 0.1,
    decayed: decayedParams(small),
  });
  const lr = 0.01;
  const loss = await trainStep(
    stepState(params, opt, small, tc),
    lr,
    () => ({ x: Int32Array.from([5, 9]), y: Int32Array.from([9, 11]) }),
    () => 0,
  );
  assert.ok(Number.isFinite(loss));
  let decayOnly = 0;
  for (const [name, p] of params) {
    if (!/mlp\.experts\.\d+\.c_fc\.weight$/.test(name)) continue;
    const b = before.get(name)!;
    const a = Array.from(p.dataSync());
    if (a.every((x, i) => Math.abs(x - b[i] * (1 - lr * 0.1)) < 1e-7)) decayOnly += 1;
  }
  assert.ok(decayOnly >= 2 * small.nLayer, `unused experts found: ${decayOnly}`);
  for (const p of params.values()) p.dispose();
  opt.dispose();
});

test("evalProtocol 'random' (the paper's): fresh seeded batches per evaluation, its own run id, resumable", async () => {
  const { initParams } = await import('../src/model/params.js');
  const { gptLoss } = await import('../src/model/gpt.js');
  const { loadTokens, fixedEvalBatches } = await import('../src/data/index.js');
  const { randomEvalSeed } = await import('../src/train/trainer.js');
  const { runId } = await import('../src/runs/index.js');
  const fixed = runSpec('baseline', 'smoke', 4, 'wasm');
  const random = runSpec('baseline', 'smoke', 4, 'wasm', { overrides: { train: { evalProtocol: 'random' } } });
  const explicitFixed = runSpec('baseline', 'smoke', 4, 'wasm', { overrides: { train: { evalProtocol: 'fixed' } } });
  assert.notEqual(runId(random), runId(fixed), 'the protocol is part of the run identity');
  assert.equal(
    runId(explicitFixed),
    runId(fixed),
    "'fixed' is the default and keeps the ids of runs made before the option",
  );
  assert.throws(
    () => runSpec('baseline', 'smoke', 4, 'wasm', { overrides: { train: { evalProtocol: 'sometimes' } } }),
    /train\.evalProtocol/,
  );

  const ref = await trainRun(random, new RunStore(tmp('ep1')));
  const fix = await trainRun(fixed, new RunStore(tmp('ep2')));
  // reference for the step-0 point: the initial weights on the batches seeded by (seed 4, step 0)
  const data = loadTokens(random.data);
  const { batchSize: B, evalBatches: n } = random.train;
  const T = random.model.blockSize;
  const params = initParams(random.model, random.seed);
  const lossOn = (seed: number) => {
    const batches = fixedEvalBatches(data.val, n, B, T, seed);
    let sum = 0;
    for (const b of batches)
      sum += tf.tidy(
        () =>
          gptLoss(params, tf.tensor2d(b.x, [B, T], 'int32'), tf.tensor2d(b.y, [B, T], 'int32'), random.model, {
            training: false,
            seed: 0,
          }).ce.dataSync()[0],
      );
    return sum / batches.length;
  };
  const want0 = lossOn(randomEvalSeed(4, 0));
  const atStep4 = lossOn(randomEvalSeed(4, 4)); // other batches, same initial weights
  for (const p of params.values()) p.dispose();
  assert.ok(Math.abs(ref.metrics[0].valLoss! - want0) < 1e-6, `${ref.metrics[0].valLoss} vs ${want0}`);
  assert.notEqual(want0, atStep4, 'each evaluation draws other batches');
  assert.notEqual(ref.metrics[0].valLoss, fix.metrics[0].valLoss, 'random batches are not the fixed set');
  // the training trajectory is the protocol's business only through evaluation: same train losses
  assert.deepEqual(
    ref.metrics.map((m) => m.trainLoss),
    fix.metrics.map((m) => m.trainLoss),
  );
  // a crash and resume draws the same evaluation batches
  const store = new RunStore(tmp('ep3'));
  await assert.rejects(trainRun(random, store, { crashAfterSteps: 6 }), /simulated crash/);
  const resumed = await trainRun(random, store);
  assert.deepEqual(strip(resumed.metrics), strip(ref.metrics));
});
