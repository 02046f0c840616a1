/**
 * The read-back-free paths that webgpu uses (no synchronous read exists there) against the
 * read-back paths that cpu/wasm use, forced on cpu and wasm:
 *  - MoE 'dense' (device routing, every expert, gated) vs 'gather' (routing read to JS);
 *  - sparse attention selection on the device vs the host (JS, float64) rule.
 * Values, gradients and expert counts must agree within float tolerance.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initEngine, tf } from '../src/engine/index.js';
import { moeMlp, resolveMoEImpl, type MoEImpl } from '../src/model/mlp.js';
import { gptLoss } from '../src/model/gpt.js';
import { initParams, type Params } from '../src/model/params.js';
import { parseModelConfig, type ModelConfig, type SparseConfig } from '../src/config.js';
import {
  sparseAttention,
  sparseSelection,
  sparseSelectedDevice,
  resolveSparseSelect,
} from '../src/model/attention/sparse.js';

/** Deterministic uniform(-1, 1) numbers from a seed (LCG), no Math.random. */
function rand(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}
const rnd = (shape: number[], seed: number, amp = 1) =>
  tf.tensor(
    rand(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ).map((v) => v * amp),
    shape,
  );

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale += Math.abs(want[i]) / want.length;
  for (let i = 0; i < got.length; i++) {
    const e = Math.abs(got[i] - want[i]) / (Math.abs(want[i]) + scale + 1e-12);
    assert.ok(e <= tol, `${what}: element ${i} got ${got[i]} want ${want[i]} (rel err ${e.toExponential(2)} > ${tol})`);
  }
}

/** Run fn in a tensor scope: tensors it creates are disposed, plain values come back. */
function scoped<T>(fn: () => T): T {
  tf.engine().startScope();
  try {
    return fn();
  } finally {
    tf.engine().endScope();
  }
}

/** With env var `name` set to `value` (restored afterwards). */
function withEnv<T>(name: string, value: string, fn: () => T): T {
  const old = process.env[name];
  process.env[name] = value;
  try {
    return fn();
  } finally {
    if (old === undefined) delete process.env[name];
    else process.env[name] = old;
  }
}

/** MoE params: router [C, E] scaled up so routing is decisive, experts [C, Hd] / [Hd, C], optional biases. */
function moeParams(C: number, E: number, Hd: number, bias: boolean, seed: number): Params {
  const p: Params = new Map();
  p.set('m.router.weight', tf.variable(rnd([C, E], seed, 2)));
  for (let e = 0; e < E; e++) {
    p.set(`m.experts.${e}.c_fc.weight`, tf.variable(rnd([C, Hd], seed + 10 + e)));
    p.set(`m.experts.${e}.c_proj.weight`, tf.variable(rnd([Hd, C], seed + 20 + e)));
    if (bias) {
      p.set(`m.experts.${e}.c_fc.bias`, tf.variable(rnd([Hd], seed + 30 + e)));
      p.set(`m.experts.${e}.c_proj.bias`, tf.variable(rnd([C], seed + 40 + e)));
    }
  }
  return p;
}

/** y, aux, load and d(Σ y·w + aux)/d(x, every param) of one MoE implementation. */
function moeRun(p: Params, x: tf.Tensor2D, moe: ModelConfig['moe'], impl: MoEImpl) {
  return scoped(() => {
    const w = rnd(x.shape, 99);
    const vars = [...p.values()];
    let y: tf.Tensor | null = null,
      aux: tf.Tensor | null = null,
      load: tf.Tensor | null = null;
    const xv = tf.variable(x);
    const { grads } = tf.variableGrads(() => {
      const r = moeMlp(p, 'm', xv, moe, impl);
      [y, aux, load] = [tf.keep(r.y), tf.keep(r.aux), tf.keep(r.load)];
      return tf.add(tf.sum(tf.mul(r.y, w)), r.aux) as tf.Scalar;
    }, [...vars, xv]);
    const names = [...p.keys(), 'x'];
    const out = {
      y: y!.dataSync(),
      aux: aux!.dataSync()[0],
      load: Array.from(load!.dataSync()),
      grads: names.map((n, i) => [n, grads[[...vars, xv][i].name].dataSync()] as const),
    };
    xv.dispose();
    return out;
  });
}

for (const backend of ['cpu', 'wasm'] as const) {
  test(`MoE dense equals gather (${backend}): output, aux, counts, gradients; top-1 and top-2; with and without bias`, async () => {
    await initEngine({ backend });
    assert.equal(resolveMoEImpl(), 'gather', 'cpu/wasm default to the gather path');
    for (const [N, C, E, Hd, k, bias] of [
      [12, 6, 4, 5, 2, true],
      [9, 4, 3, 7, 1, true],
      [10, 5, 4, 3, 2, false],
    ] as const) {
      const p = moeParams(C, E, Hd, bias, N + E);
      const x = rnd([N, C], 7 + k) as tf.Tensor2D;
      const moe = { experts: E, topK: k, auxLossWeight: 0.01 };
      const a = moeRun(p, x, moe, 'gather');
      const b = moeRun(p, x, moe, 'dense');
      const what = `N${N} E${E} k${k}${bias ? '' : ' no bias'}`;
      close(b.y, a.y, 1e-5, `${what} y`);
      assert.ok(Math.abs(a.aux - b.aux) < 1e-6, `${what} aux ${b.aux} vs ${a.aux}`);
      assert.deepEqual(b.load, a.load, `${what} counts`);
      assert.equal(
        a.load.reduce((s, c) => s + c, 0),
        N * k,
        `${what}: counts sum to N·k`,
      );
      assert.ok(a.load.filter((c) => c > 0).length > 1, `${what}: routing should use several experts`);
      for (const [i, [n, g]] of a.grads.entries()) close(b.grads[i][1], g, 1e-4, `${what} d${n}`);
      // the dense path's `counts` getter reads the device counts (cpu/wasm only)
      const r = moeMlp(p, 'm', x, moe, 'dense');
      assert.deepEqual(r.counts, a.load);
      tf.dispose([r.y, r.aux, r.load, x, ...p.values()]);
    }
  });
}

test('MoE implementation choice: from the config (not the environment) and a clear error for a bad name', async () => {
  await initEngine({ backend: 'cpu' });
  assert.equal(resolveMoEImpl('dense'), 'dense');
  assert.equal(resolveMoEImpl('gather'), 'gather');
  assert.equal(
    withEnv('CEG_MOE_IMPL', 'dense', () => resolveMoEImpl()),
    'gather',
    'the environment no longer changes numbers',
  );
  assert.throws(() => resolveMoEImpl('sparse' as never), /MoE implementation "sparse".*valid: gather, dense, auto/);
  assert.equal(resolveSparseSelect(), 'host');
  assert.equal(resolveSparseSelect('device'), 'device');
  assert.equal(
    withEnv('CEG_SPARSE_SELECT', 'device', () => resolveSparseSelect()),
    'host',
    'the environment no longer changes numbers',
  );
  assert.throws(() => resolveSparseSelect('gpu' as never), /sparse selection "gpu".*valid: host, device, auto/);
});

test('gptLoss with MoE: dense and gather give the same loss, gradients and per-layer expert counts tensor', async () => {
  await initEngine({ backend: 'cpu' });
  const cfg = parseModelConfig({
    vocabSize: 16,
    blockSize: 8,
    nLayer: 2,
    nHead: 2,
    nKvHead: 2,
    nEmbd: 8,
    dropout: 0,
    bias: true,
    norm: 'layernorm',
    positions: 'learned',
    ropeBase: 10000,
    attnKernel: 'plain',
    mlp: 'moe',
    mlpHidden: 12,
    sparse: { blockSize: 4, localBlocks: 1, selectedBlocks: 1 },
    moe: { experts: 4, topK: 2, auxLossWeight: 0.1 },
  });
  const p = initParams(cfg, 3) as Params;
  // decisive routing: scale the routers up
  for (const [n, v] of p) if (n.endsWith('router.weight')) v.assign(tf.mul(v, 100));
  const idx = tf.tensor2d(
    Array.from(rand(16, 5), (v) => Math.floor((v + 1) * 8) % 16),
    [2, 8],
    'int32',
  );
  // the implementation is the config's moeImpl (gptLoss passes it to the MoE layer)
  const run = (impl: 'gather' | 'dense') =>
    scoped(() => {
      let counts: Float32Array | null = null;
      const { value, grads } = tf.variableGrads(() => {
        const r = gptLoss(p, idx, idx, { ...cfg, moeImpl: impl }, { training: false, seed: 0 });
        assert.deepEqual(r.expertCounts!.shape, [2, 4]);
        counts = r.expertCounts!.dataSync() as Float32Array;
        return r.loss;
      }, [...p.values()]);
      return {
        loss: value.dataSync()[0],
        counts: Array.from(counts!),
        grads: [...p.values()].map((v) => grads[v.name].dataSync()),
      };
    });
  const a = run('gather');
  const b = run('dense');
  assert.ok(Math.abs(a.loss - b.loss) < 1e-5, `loss ${b.loss} vs ${a.loss}`);
  assert.deepEqual(b.counts, a.counts);
  assert.equal(
    a.counts.slice(0, 4).reduce((s, c) => s + c, 0),
    16 * 2,
    'layer 0 counts sum to N·k',
  );
  [...p.keys()].forEach((n, i) => close(b.grads[i], a.grads[i], 1e-4, `d${n}`));
  const gcfg = { ...cfg, mlp: 'gelu' as const };
  const gp = initParams(gcfg, 3) as Params;
  const none = gptLoss(gp, idx, idx, gcfg, { training: false, seed: 0 });
  assert.equal(none.expertCounts, null, 'no MoE: no counts tensor');
  tf.dispose([idx, none.loss, none.ce, none.aux, ...p.values(), ...gp.values()]);
});

const t4 = (shape: number[], seed: number, amp = 1) => rnd(shape, seed, amp) as tf.Tensor4D;

test('sparse: device selection picks the same blocks as the host rule (MHA, GQA, MQA, ties, T not a multiple)', async () => {
  await initEngine({ backend: 'cpu' });
  const cases: [number, number, number, number, number, SparseConfig][] = [
    [2, 4, 2, 40, 4, { blockSize: 4, localBlocks: 1, selectedBlocks: 2 }],
    [1, 3, 1, 46, 6, { blockSize: 4, localBlocks: 2, selectedBlocks: 3 }],
    [2, 2, 2, 32, 4, { blockSize: 2, localBlocks: 1, selectedBlocks: 4 }],
    [1, 4, 4, 30, 8, { blockSize: 3, localBlocks: 3, selectedBlocks: 1 }],
  ];
  for (const [B, H, Hkv, T, hs, sp] of cases) {
    for (const tie of [false, true]) {
      const q = t4([B, H, T, hs], 5 + T, 2);
      // ties: every key equal, so every block scores the same and the lower indices must win
      const k = tie ? (tf.ones([B, Hkv, T, hs]) as tf.Tensor4D) : t4([B, Hkv, T, hs], 6 + T, 2);
      const host = sparseSelection(q, k, sp).blocks;
      const dev = (await sparseSelectedDevice(q, k, sp).array()) as number[][][][];
      const { localBlocks: L, selectedBlocks: S } = sp;
      let checked = 0;
      for (let b = 0; b < B; b++)
        for (let h = 0; h < Hkv; h++)
          for (let i = L + S - 1; i < host[b][h].length; i++) {
            assert.deepEqual(
              dev[b][h][i],
              host[b][h][i].slice(0, S),
              `B${B} H${H} Hkv${Hkv} T${T}${tie ? ' ties' : ''}: b${b} h${h} block ${i}`,
            );
            checked++;
          }
      assert.ok(checked > 0);
      if (tie)
        assert.deepEqual(dev[0][0][host[0][0].length - 1], [...Array(S).keys()], 'ties go to the lower block index');
      tf.dispose([q, k]);
    }
  }
});

for (const backend of ['cpu', 'wasm'] as const) {
  test(`sparse attention with device selection equals the host path (${backend}): values and gradients, with dropout`, async () => {
    await initEngine({ backend });
    const cases: [number, number, number, number, number, SparseConfig, number][] = [
      [2, 4, 2, 40, 4, { blockSize: 4, localBlocks: 1, selectedBlocks: 2 }, 0],
      [1, 3, 1, 46, 6, { blockSize: 4, localBlocks: 2, selectedBlocks: 3 }, 0.2],
      [1, 2, 2, 16, 4, { blockSize: 4, localBlocks: 1, selectedBlocks: 1 }, 0],
    ];
    for (const [B, H, Hkv, T, hs, sp, dropout] of cases) {
      const q = t4([B, H, T, hs], 50 + T, 2),
        k = t4([B, Hkv, T, hs], 60 + T, 2),
        v = t4([B, Hkv, T, hs], 70 + T);
      const w = rnd([B, H, T, hs], 80 + T);
      const opts = { dropout, training: dropout > 0, seed: 11, sparse: sp };
      const run = (sel: 'host' | 'device') =>
        scoped(() => {
          const o = { ...opts, sparseSelect: sel };
          const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
            tf.sum(tf.mul(sparseAttention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, o), w));
          const y = sparseAttention(q, k, v, o).dataSync();
          return [
            y,
            ...tf
              .grads(f)([q, k, v])
              .map((g) => g.dataSync()),
          ];
        });
      const before = tf.memory().numTensors;
      const host = run('host');
      const dev = run('device');
      assert.equal(tf.memory().numTensors, before, 'no tensor leaked');
      ['y', 'dq', 'dk', 'dv'].forEach((n, i) => close(dev[i], host[i], 1e-5, `B${B} H${H} Hkv${Hkv} T${T} ${n}`));
      tf.dispose([q, k, v, w]);
    }
  });
}
