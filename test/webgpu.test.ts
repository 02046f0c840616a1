/**
 * webgpu backend (Dawn on lavapipe or a GPU) against the cpu backend, and the WGSL fused
 * attention kernel against plain attention. Skipped, with the reason, when no adapter exists
 * (run `source scripts/lavapipe.sh` once to get one on a CPU-only machine).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initEngine, tf } from '../src/engine/index.js';
import { collapseTile, shutdownWebGPU, webgpuBackend } from '../src/engine/webgpu.js';
import { flashAttentionWebGPU, fusedAttentionFor, tileFor } from '../src/engine/wgsl/flash-attention.js';
import { INNOVATIONS } from '../src/innovations.js';
import { runSpec } from '../src/train/sweep.js';
import { trainRun } from '../src/train/trainer.js';
import { RunStore, type MetricRow } from '../src/runs/index.js';
import { sparseAttention, sparseSelection, sparseSelectedDevice } from '../src/model/attention/sparse.js';
import { moeMlp } from '../src/model/mlp.js';

let skip: string | false = false;

before(async () => {
  try {
    await initEngine({ backend: 'webgpu' });
  } catch (e) {
    skip = `no webgpu adapter here (${(e as Error).message.slice(0, 120)}...)`;
  }
});
after(() => shutdownWebGPU());

/** Deterministic values in [-1, 1) from a seed (LCG), so both backends get the same inputs. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}
const rnd = (shape: number[], seed: number) =>
  tf.tensor(
    values(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ),
    shape,
  );

/** Run fn on a backend and read every resulting tensor back (async: webgpu has no dataSync in Node). */
async function on(backend: 'cpu' | 'webgpu', fn: () => tf.Tensor[]): Promise<Float32Array[]> {
  await initEngine({ backend });
  const ts = tf.tidy(fn);
  const out = await Promise.all(ts.map(async (t) => (await t.data()) as Float32Array));
  tf.dispose(ts);
  return out;
}

function close(got: Float32Array, want: Float32Array, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
  assert.ok(worst < tol, `${what}: max relative difference ${worst} >= ${tol}`);
}

test('collapseTile merges repeat-1 dimensions (pure)', () => {
  assert.deepEqual(collapseTile([2, 3, 1, 5, 4], [1, 1, 4, 1, 1]), { shape: [6, 20], reps: [1, 4] });
  assert.deepEqual(collapseTile([2, 3], [2, 3]), { shape: [2, 3], reps: [2, 3] });
  assert.equal(tileFor(64, 16384), 16); // (2*32*64 + 64) floats do not fit 16 KiB
  assert.equal(tileFor(32, 32768), 32);
  assert.equal(fusedAttentionFor('cpu'), null);
});

test('no adapter is a clear EngineError naming lavapipe.sh (child process, no driver)', () => {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      "import('./src/engine/index.js').then(m => m.initEngine({backend: 'webgpu'})).then(() => console.log('ADAPTER'), e => console.log(e.name + ': ' + e.message))",
    ],
    {
      env: {
        ...process.env,
        CEG_VK_DIR: 'none',
        VK_DRIVER_FILES: '/nonexistent/icd.json',
        VK_ICD_FILENAMES: '/nonexistent/icd.json',
      },
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  assert.match(r.stdout, /EngineError: no WebGPU adapter.*scripts\/lavapipe\.sh/);
});

test('webgpu ops and gradients equal cpu: matmul, softmax, gather, layer norm, rank-5 tile', async (t) => {
  if (skip) return t.skip(skip);
  const run = () => {
    const a = rnd([5, 7], 1),
      b = rnd([7, 3], 2),
      emb = rnd([6, 4], 3),
      w = rnd([3, 4], 4);
    const idx = tf.tensor1d([1, 5, 1], 'int32');
    const x = rnd([3, 4], 5),
      gamma = rnd([4], 6);
    const ln = (xx: tf.Tensor, g: tf.Tensor) => {
      const { mean, variance } = tf.moments(xx, -1, true);
      return tf.mul(tf.div(tf.sub(xx, mean), tf.sqrt(tf.add(variance, 1e-5))), g);
    };
    const [gA, gB] = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.softmax(tf.matMul(p, q))))([a, b]);
    const gEmb = tf.grad((e: tf.Tensor) => tf.sum(tf.mul(tf.gather(e, idx), w)))(emb);
    const [gX, gG] = tf.grads((xx: tf.Tensor, g: tf.Tensor) => tf.sum(tf.mul(ln(xx, g), w)))([x, gamma]);
    const tiled = tf.tile(tf.reshape(rnd([2, 3, 4], 7), [1, 2, 1, 3, 4]), [2, 1, 3, 1, 1]);
    return [tf.matMul(a, b), tf.softmax(tf.matMul(a, b)), gA, gB, gEmb, ln(x, gamma), gX, gG, tiled];
  };
  const want = await on('cpu', run);
  const got = await on('webgpu', run);
  const names = ['matmul', 'softmax', 'dA', 'dB', 'gather grad', 'layernorm', 'dx', 'dgamma', 'tile5'];
  names.forEach((n, i) => close(got[i], want[i], 1e-5, n));
  // hand check: gather grad rows 0, 2, 3, 4 are zero; row 1 = w[0] + w[2]
  const w = values(12, 4);
  for (let c = 0; c < 4; c++) assert.ok(Math.abs(got[4][4 + c] - (w[c] + w[8 + c])) < 1e-6);
  assert.deepEqual(Array.from(got[4].slice(0, 4)), [0, 0, 0, 0]);
});

/** A one-layer GPT from tf ops (pre-norm, causal attention, GELU-free ReLU MLP, tied head). */
function tinyGptLosses(steps: number): tf.Tensor[] {
  const V = 11,
    C = 16,
    T = 8,
    B = 2,
    H = 2,
    hs = C / H;
  const p = {
    wte: tf.variable(tf.mul(rnd([V, C], 11), 0.5)),
    wpe: tf.variable(tf.mul(rnd([T, C], 12), 0.1)),
    wqkv: tf.variable(tf.mul(rnd([C, 3 * C], 13), 0.3)),
    wo: tf.variable(tf.mul(rnd([C, C], 14), 0.3)),
    w1: tf.variable(tf.mul(rnd([C, 4 * C], 15), 0.3)),
    w2: tf.variable(tf.mul(rnd([4 * C, C], 16), 0.2)),
  };
  const tokens = Array.from(values(B * (T + 1), 17), (x) => Math.floor((x + 1) * 5.5) % V);
  const xIdx = tf.tensor2d(
    tokens.filter((_, i) => i % (T + 1) < T),
    [B, T],
    'int32',
  );
  const yIdx = tf.tensor1d(
    tokens.filter((_, i) => i % (T + 1) > 0),
    'int32',
  );
  const mask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9);
  const norm = (x: tf.Tensor) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5)));
  };
  const heads = (x: tf.Tensor) => tf.transpose(tf.reshape(x, [B, T, H, hs]), [0, 2, 1, 3]); // [B,H,T,hs]
  const loss = () => {
    let x = tf.add(tf.gather(p.wte, xIdx), p.wpe); // [B, T, C]
    const qkv = tf.reshape(tf.matMul(tf.reshape(norm(x), [B * T, C]), p.wqkv), [B, T, 3 * C]);
    const [q, k, v] = tf.split(qkv, 3, -1).map(heads);
    const att = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hs)), mask));
    const y = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [B * T, C]);
    x = tf.add(x, tf.reshape(tf.matMul(y, p.wo), [B, T, C]));
    const h = tf.relu(tf.matMul(tf.reshape(norm(x), [B * T, C]), p.w1));
    x = tf.add(x, tf.reshape(tf.matMul(h, p.w2), [B, T, C]));
    const logits = tf.matMul(tf.reshape(norm(x), [B * T, C]), p.wte, false, true); // [B*T, V]
    return tf.losses.softmaxCrossEntropy(tf.oneHot(yIdx, V), logits) as tf.Scalar;
  };
  const losses: tf.Tensor[] = [];
  for (let s = 0; s < steps; s++) {
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(loss);
      for (const [name, g] of Object.entries(grads)) {
        const v = Object.values(p).find((q) => q.name === name)!;
        v.assign(tf.sub(v, tf.mul(g, 0.5)));
      }
      losses.push(tf.keep(value));
    });
  }
  Object.values(p).forEach((v) => v.dispose());
  tf.dispose([xIdx, yIdx, mask]);
  const out = tf.stack(losses);
  tf.dispose(losses);
  return [out];
}

test('a tiny GPT over-fits one batch with the same losses on webgpu as on cpu', async (t) => {
  if (skip) return t.skip(skip);
  const [want] = await on('cpu', () => tinyGptLosses(25));
  const before = tf.memory().numTensors;
  const [got] = await on('webgpu', () => tinyGptLosses(25));
  assert.equal(tf.memory().numTensors, before, 'tensors leaked by the training loop');
  assert.ok(want[24] < want[0] * 0.5, `cpu loss fell from ${want[0]} to ${want[24]}`);
  close(got, want, 1e-3, 'losses');
});

/** Plain causal attention from tf ops (GQA by gathering kv heads). */
function plainAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D): tf.Tensor {
  const [, H, T, hs] = q.shape;
  const g = H / k.shape[1];
  const idx = tf.tensor1d(
    [...Array(H).keys()].map((h) => Math.floor(h / g)),
    'int32',
  );
  const kk = tf.gather(k, idx, 1),
    vv = tf.gather(v, idx, 1);
  const mask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9);
  const att = tf.softmax(tf.add(tf.mul(tf.matMul(q, kk, false, true), 1 / Math.sqrt(hs)), mask));
  return tf.matMul(att, vv);
}

for (const [B, H, Hkv, T, hs] of [
  [2, 2, 2, 64, 16],
  [1, 4, 2, 100, 32],
  [1, 3, 1, 33, 16],
]) {
  test(`WGSL flash attention equals plain attention, forward and gradients (B${B} H${H} Hkv${Hkv} T${T} hs${hs})`, async (t) => {
    if (skip) return t.skip(skip);
    const make = (attn: (q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D) => tf.Tensor) => () => {
      const q = tf.mul(rnd([B, H, T, hs], 21), 2) as tf.Tensor4D;
      const k = tf.mul(rnd([B, Hkv, T, hs], 22), 2) as tf.Tensor4D;
      const v = rnd([B, Hkv, T, hs], 23) as tf.Tensor4D;
      const w = rnd([B, H, T, hs], 24);
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.mul(attn(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D), w));
      return [attn(q, k, v), ...tf.grads(f)([q, k, v])];
    };
    const cpu = await on('cpu', make(plainAttention));
    const gpuPlain = await on('webgpu', make(plainAttention));
    const before = tf.memory().numTensors;
    const fused = await on('webgpu', make(flashAttentionWebGPU));
    assert.equal(tf.memory().numTensors, before, 'tensors leaked by flash attention');
    ['y', 'dq', 'dk', 'dv'].forEach((n, i) => {
      close(fused[i], cpu[i], 2e-5, `${n} vs cpu`);
      close(fused[i], gpuPlain[i], 2e-5, `${n} vs webgpu plain`);
    });
  });
}

test('AddN with more inputs than the device binds storage buffers sums correctly (chunked)', async (t) => {
  if (skip) return t.skip(skip);
  await initEngine({ backend: 'webgpu' });
  const limit = webgpuBackend().device.limits.maxStorageBuffersPerShaderStage;
  const n = 3 * limit + 2; // three levels of chunks on lavapipe (limit 8)
  const xs = Array.from({ length: n }, (_, i) => tf.fill([5], i + 1));
  const before = tf.memory().numTensors;
  const sum = tf.addN(xs);
  const got = await sum.data();
  sum.dispose();
  assert.equal(tf.memory().numTensors, before, 'AddN leaked');
  assert.deepEqual(Array.from(got), Array(5).fill((n * (n + 1)) / 2));
  tf.dispose(xs);
});

test('MoE dense and sparse device selection on webgpu equal the cpu read-back paths (micro-like shapes)', async (t) => {
  if (skip) return t.skip(skip);
  // sparse: T 128, bs 16, L 2, S 2 (micro's pattern: 8 blocks, 2 selected), GQA; MoE: E 4, k 2
  const [B, H, Hkv, T, hs] = [2, 4, 2, 128, 8];
  const sp = { blockSize: 16, localBlocks: 2, selectedBlocks: 2 };
  const [N, C, E, Hd] = [64, 16, 4, 24];
  const run = (dense: boolean) => () => {
    const q = tf.mul(rnd([B, H, T, hs], 31), 2) as tf.Tensor4D,
      k = tf.mul(rnd([B, Hkv, T, hs], 32), 2) as tf.Tensor4D;
    const v = rnd([B, Hkv, T, hs], 33) as tf.Tensor4D,
      w = rnd([B, H, T, hs], 34);
    const o = { dropout: 0, training: false, seed: 0, sparse: sp };
    const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      tf.sum(tf.mul(sparseAttention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, o), w));
    const p = new Map<string, tf.Variable>([['m.router.weight', tf.variable(tf.mul(rnd([C, E], 40), 3))]]);
    for (let e = 0; e < E; e++) {
      p.set(`m.experts.${e}.c_fc.weight`, tf.variable(rnd([C, Hd], 41 + e)));
      p.set(`m.experts.${e}.c_fc.bias`, tf.variable(rnd([Hd], 51 + e)));
      p.set(`m.experts.${e}.c_proj.weight`, tf.variable(rnd([Hd, C], 61 + e)));
      p.set(`m.experts.${e}.c_proj.bias`, tf.variable(rnd([C], 71 + e)));
    }
    const x = rnd([N, C], 45) as tf.Tensor2D;
    const moe = { experts: E, topK: 2, auxLossWeight: 0.01 };
    const r = moeMlp(p, 'm', x, moe, dense ? 'dense' : 'gather');
    const g = tf.variableGrads(
      () => tf.add(tf.sum(tf.mul(moeMlp(p, 'm', x, moe, dense ? 'dense' : 'gather').y, x)), r.aux) as tf.Scalar,
      [...p.values()],
    );
    const sel = dense
      ? tf.cast(sparseSelectedDevice(q, k, sp), 'float32')
      : tf.tensor(
          sparseSelection(q, k, sp).blocks.flatMap((bb) =>
            bb.flatMap((hh) => hh.map((blk) => (blk.length === 4 ? blk.slice(0, 2) : [0, 0]))),
          ),
        );
    const out = [
      sparseAttention(q, k, v, o),
      ...tf.grads(f)([q, k, v]),
      r.y,
      r.aux,
      r.load,
      ...[...p.values()].map((vv) => g.grads[vv.name]),
      sel,
    ];
    p.forEach((vv) => vv.dispose());
    return out;
  };
  const want = await on('cpu', run(false));
  const got = await on('webgpu', run(true));
  const names = [
    'sparse y',
    'dq',
    'dk',
    'dv',
    'moe y',
    'aux',
    'load',
    ...Array.from({ length: 1 + 4 * E }, (_, i) => `moe grad ${i}`),
  ];
  names.forEach((n, i) => close(got[i], want[i], 1e-4, n));
  // selected blocks of query blocks 3..7 (those with L+S = 4 key blocks)
  const nb = T / sp.blockSize;
  const sel = got[got.length - 1],
    ref = want[want.length - 1];
  for (let bh = 0; bh < B * Hkv; bh++)
    for (let i = 3; i < nb; i++)
      for (let s = 0; s < 2; s++)
        assert.equal(
          sel[(bh * nb + i) * 2 + s],
          ref[(bh * nb + i) * 2 + s],
          `selected block (bh ${bh}, i ${i}, slot ${s})`,
        );
});

/**
 * Train one innovation at the smoke scale through the real trainer (its own run store, so that
 * innovations equal to the baseline at this scale, e.g. gqa with 2 heads, are not served from cache).
 */
async function smokeRun(id: string, backend: 'webgpu' | 'wasm', steps: number, root: string) {
  const spec = runSpec(id, 'smoke', 1, backend);
  spec.train = { ...spec.train, steps, checkpointInterval: 0 };
  const losses: number[] = [];
  const tensors: number[] = [];
  const t0 = performance.now();
  const { metrics, cached } = await trainRun(spec, new RunStore(path.join(root, `${id}-${backend}`)), {
    onStep: (s) => {
      losses.push(s.loss);
      tensors.push(tf.memory().numTensors);
    },
  });
  assert.equal(cached, false, `${id}: trained, not cached`);
  return { losses, tensors, metrics, seconds: (performance.now() - t0) / 1000, spec };
}

test('every innovation trains on webgpu through the real trainer (smoke): finite, falling, first step as on wasm', async (t) => {
  if (skip) return t.skip(skip);
  const STEPS = 6; // smoke trains 12; 6 is enough to see the loss fall (warmup 2 steps, LR 3e-3)
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ceg-webgpu-smoke-'));
  try {
    const gpu = new Map<string, Awaited<ReturnType<typeof smokeRun>>>();
    for (const inn of INNOVATIONS) gpu.set(inn.id, await smokeRun(inn.id, 'webgpu', STEPS, root));
    const timing = [...gpu].map(([id, r]) => `${id} ${r.seconds.toFixed(1)}s`).join(', ');
    t.diagnostic(`webgpu smoke, ${STEPS} steps each (incl. 2 evaluations): ${timing}`);
    for (const inn of INNOVATIONS) {
      const cpu = await smokeRun(inn.id, 'wasm', 1, root);
      const { losses, tensors, metrics, spec } = gpu.get(inn.id)!;
      const id = inn.id;
      assert.equal(losses.length, STEPS, `${id}: one loss per step`);
      assert.ok(losses.every(Number.isFinite), `${id}: finite losses ${losses}`);
      assert.ok(
        losses[STEPS - 1] < losses[0] - 0.1,
        `${id}: the loss should fall, got ${losses.map((l) => l.toFixed(4))}`,
      );
      // identical math, different float order: the first step's loss agrees with wasm
      assert.ok(
        Math.abs(losses[0] - cpu.losses[0]) < 2e-3,
        `${id}: first-step loss webgpu ${losses[0]} vs wasm ${cpu.losses[0]}`,
      );
      // no per-step leak: the live tensor count is the same after every step
      assert.ok(
        tensors.every((n) => n === tensors[0]),
        `${id}: live tensors per step ${tensors}`,
      );
      const vals = metrics.map((m: MetricRow) => m.valLoss);
      assert.ok(vals.length >= 2 && vals.every((v) => Number.isFinite(v)), `${id}: validation losses ${vals}`);
      if (spec.model.mlp === 'moe') {
        // expert load read asynchronously at evaluation: every eval token routed to k experts in every layer
        const tokens = spec.train.evalBatches * spec.train.batchSize * spec.model.blockSize;
        const want = tokens * spec.model.moe.topK * spec.model.nLayer;
        for (const m of metrics) {
          const load = m.expertLoad as number[];
          assert.equal(load.length, spec.model.moe.experts, `${id}: one count per expert`);
          assert.equal(
            load.reduce((a, b) => a + b, 0),
            want,
            `${id}: expert load sums to tokens·k·layers`,
          );
        }
      }
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
