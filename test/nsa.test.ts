/**
 * NSA (the paper's sparse attention, src/model/attention/nsa.ts) against an independent
 * plain-loop reference of the equations of fla-org/native-sparse-attention's ops/naive.py,
 * written here in float64 without any model code: outputs, block selection, gradients (the
 * reference differentiated by central differences), causality of the whole model, FLOPs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initEngine, tf } from '../src/engine/index.js';
import { nsaAttention, nsaSelection } from '../src/model/attention/nsa.js';
import type { ModelConfig, NsaConfig } from '../src/config.js';
import { parseModelConfig } from '../src/config.js';
import { getScale } from '../src/scales.js';
import { applyInnovations } from '../src/innovations.js';
import { gptForward } from '../src/model/gpt.js';
import { disposeParams, initParams, paramCount } from '../src/model/params.js';
import { stepFlops } from '../src/model/flops.js';

/** Deterministic uniform(-1, 1) numbers (LCG from an explicit seed). */
function rand(n: number, seed: number): Float64Array {
  const out = new Float64Array(n);
  let s = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

interface Case {
  B: number;
  H: number;
  Hkv: number;
  T: number;
  D: number;
  nsa: NsaConfig;
}

interface Inputs {
  q: Float64Array; // [B, H, T, D]
  k: Float64Array; // [B, Hkv, T, D]
  v: Float64Array; // [B, Hkv, T, D]
  g: Float64Array; // [B, H, T, 3] gates in (0, 1)
}

function inputs(c: Case, seed: number, amp = 2.5): Inputs {
  const nq = c.B * c.H * c.T * c.D;
  const nk = c.B * c.Hkv * c.T * c.D;
  return {
    q: rand(nq, seed).map((x) => x * amp),
    k: rand(nk, seed + 1).map((x) => x * amp),
    v: rand(nk, seed + 2),
    g: rand(c.B * c.H * c.T * 3, seed + 3).map((x) => 0.5 + 0.45 * x),
  };
}

/** The reference: plain loops over (batch, K/V head, query), float64. Returns o [B,H,T,D] and the selected block sets. */
function reference(c: Case, x: Inputs): { o: Float64Array; selected: number[][][][] } {
  const { B, H, Hkv, T, D } = c;
  const { blockSize: BS, blockCounts, windowSize } = c.nsa;
  const G = H / Hkv;
  const NB = T / BS;
  const S = Math.min(blockCounts, NB);
  const scale = 1 / Math.sqrt(D);
  const qi = (b: number, h: number, t: number, d: number) => x.q[((b * H + h) * T + t) * D + d];
  const ki = (b: number, h: number, t: number, d: number) => x.k[((b * Hkv + h) * T + t) * D + d];
  const vi = (b: number, h: number, t: number, d: number) => x.v[((b * Hkv + h) * T + t) * D + d];
  const gi = (b: number, h: number, t: number, j: number) => x.g[((b * H + h) * T + t) * 3 + j];
  const o = new Float64Array(B * H * T * D);
  const selected: number[][][][] = [];
  const softmaxSum = (
    keys: number[],
    score: (j: number) => number,
    val: (j: number, d: number) => number,
  ): number[] => {
    const out = new Array<number>(D).fill(0);
    if (keys.length === 0) return out;
    const s = keys.map(score);
    const mx = Math.max(...s);
    const e = s.map((z) => Math.exp(z - mx));
    const z = e.reduce((a, b2) => a + b2, 0);
    keys.forEach((j, n) => {
      for (let d = 0; d < D; d++) out[d] += (e[n] / z) * val(j, d);
    });
    return out;
  };
  for (let b = 0; b < B; b++) {
    selected.push([]);
    for (let kh = 0; kh < Hkv; kh++) {
      selected[b].push([]);
      // block means
      const kc: number[][] = [];
      const vc: number[][] = [];
      for (let blk = 0; blk < NB; blk++) {
        kc.push([]);
        vc.push([]);
        for (let d = 0; d < D; d++) {
          let sk = 0;
          let sv = 0;
          for (let j = blk * BS; j < (blk + 1) * BS; j++) {
            sk += ki(b, kh, j, d);
            sv += vi(b, kh, j, d);
          }
          kc[blk].push(sk / BS);
          vc[blk].push(sv / BS);
        }
      }
      for (let t = 0; t < T; t++) {
        const own = Math.floor(t / BS);
        const complete: number[] = [];
        for (let blk = 0; blk < NB; blk++) if ((blk + 1) * BS - 1 <= t) complete.push(blk);
        // importance of each block, summed over the group's heads
        const importance = new Array<number>(NB).fill(0);
        const oCmp: number[][] = [];
        for (let gq = 0; gq < G; gq++) {
          const h = kh * G + gq;
          const dot = (blk: number) => {
            let s = 0;
            for (let d = 0; d < D; d++) s += qi(b, h, t, d) * kc[blk][d];
            return s * scale;
          };
          oCmp.push(softmaxSum(complete, dot, (blk, d) => vc[blk][d]));
          if (complete.length) {
            const s = complete.map(dot);
            const mx = Math.max(...s);
            const z = s.reduce((a, zz) => a + Math.exp(zz - mx), 0);
            complete.forEach((blk, n) => (importance[blk] += Math.exp(s[n] - mx) / z));
          }
        }
        importance[own] = G; // the own block: 1 per head
        const eligible = Array.from({ length: own + 1 }, (_, i) => i);
        eligible.sort((a, bb) => importance[bb] - importance[a] || bb - a);
        const sel = eligible.slice(0, S).sort((a, bb) => a - bb);
        selected[b][kh].push(sel);
        const slcKeys: number[] = [];
        for (const blk of sel) for (let j = blk * BS; j < (blk + 1) * BS && j <= t; j++) slcKeys.push(j);
        const swaKeys: number[] = [];
        for (let j = Math.max(0, t - windowSize + 1); j <= t && windowSize > 0; j++) swaKeys.push(j);
        for (let gq = 0; gq < G; gq++) {
          const h = kh * G + gq;
          const dot = (j: number) => {
            let s = 0;
            for (let d = 0; d < D; d++) s += qi(b, h, t, d) * ki(b, kh, j, d);
            return s * scale;
          };
          const oSlc = softmaxSum(slcKeys, dot, (j, d) => vi(b, kh, j, d));
          const oSwa = softmaxSum(swaKeys, dot, (j, d) => vi(b, kh, j, d));
          for (let d = 0; d < D; d++)
            o[((b * H + h) * T + t) * D + d] =
              gi(b, h, t, 0) * oCmp[gq][d] + gi(b, h, t, 1) * oSlc[d] + gi(b, h, t, 2) * oSwa[d];
        }
      }
    }
  }
  return { o, selected };
}

const shape4 = (c: Case, kv: boolean, last = c.D): [number, number, number, number] => [
  c.B,
  kv ? c.Hkv : c.H,
  c.T,
  last,
];
function tensors(c: Case, x: Inputs) {
  return {
    q: tf.tensor4d(Float32Array.from(x.q), shape4(c, false)),
    k: tf.tensor4d(Float32Array.from(x.k), shape4(c, true)),
    v: tf.tensor4d(Float32Array.from(x.v), shape4(c, true)),
    g: tf.tensor4d(Float32Array.from(x.g), shape4(c, false, 3)),
  };
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number, what: string) {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const ok = Math.abs(got[i] - want[i]) <= atol + rtol * Math.abs(want[i]);
    if (!ok) assert.fail(`${what}: element ${i} got ${got[i]} want ${want[i]}`);
  }
}

const CASES: Record<string, Case> = {
  // 16 tokens in 4 blocks of 4, 2 selected: selection is really a choice for t >= 8
  'MQA layout (4 query heads, 1 K/V head), no window': {
    B: 2,
    H: 4,
    Hkv: 1,
    T: 16,
    D: 3,
    nsa: { heads: 4, kvHeads: 1, blockSize: 4, blockCounts: 2, windowSize: 0 },
  },
  'GQA layout (4 query heads, 2 K/V heads), window 3': {
    B: 1,
    H: 4,
    Hkv: 2,
    T: 16,
    D: 2,
    nsa: { heads: 4, kvHeads: 2, blockSize: 4, blockCounts: 2, windowSize: 3 },
  },
  'one selected block (the own block only)': {
    B: 1,
    H: 2,
    Hkv: 1,
    T: 12,
    D: 2,
    nsa: { heads: 2, kvHeads: 1, blockSize: 3, blockCounts: 1, windowSize: 0 },
  },
  'more blocks allowed than exist (dense selection)': {
    B: 1,
    H: 2,
    Hkv: 2,
    T: 8,
    D: 2,
    nsa: { heads: 2, kvHeads: 2, blockSize: 2, blockCounts: 16, windowSize: 0 },
  },
};

test('setup: cpu backend', async () => {
  await initEngine({ backend: 'cpu' });
});

for (const [name, c] of Object.entries(CASES)) {
  test(`NSA matches the plain-loop reference: ${name}`, () => {
    const x = inputs(c, 7);
    const ref = reference(c, x);
    const t = tensors(c, x);
    const o = nsaAttention(t.q, t.k, t.v, t.g, c.nsa);
    assertClose(o.dataSync(), ref.o, 2e-5, 2e-5, 'o');
    // the selected block sets, exactly
    const sel = nsaSelection(t.q, t.k, c.nsa);
    const s = sel.arraySync() as boolean[][][][] | number[][][][];
    for (let b = 0; b < c.B; b++)
      for (let h = 0; h < c.Hkv; h++)
        for (let tt = 0; tt < c.T; tt++) {
          const got = (s[b][h][tt] as (boolean | number)[]).flatMap((on, blk) => (on ? [blk] : []));
          assert.deepEqual(got, ref.selected[b][h][tt], `selection b${b} h${h} t${tt}`);
        }
    // selection is not trivially "everything causal" in the sparse cases
    if (c.nsa.blockCounts < c.T / c.nsa.blockSize) {
      const last = ref.selected[0][0][c.T - 1];
      assert.equal(last.length, c.nsa.blockCounts);
      assert.ok(last.includes(Math.floor((c.T - 1) / c.nsa.blockSize)), 'the own block is selected');
    }
    tf.dispose([o, sel, t.q, t.k, t.v, t.g]);
  });
}

test('NSA gradients (q, k, v, gates) match central differences of the reference', () => {
  const c = CASES['GQA layout (4 query heads, 2 K/V heads), window 3'];
  const x = inputs(c, 11);
  const w = rand(c.B * c.H * c.T * c.D, 99); // loss = Σ w·o
  const lossRef = (xx: Inputs) => reference(c, xx).o.reduce((a, o, i) => a + o * w[i], 0);
  const t = tensors(c, x);
  const wt = tf.tensor4d(Float32Array.from(w), shape4(c, false));
  const grads = tf.grads((q, k, v, g) =>
    tf.sum(tf.mul(nsaAttention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, g as tf.Tensor4D, c.nsa), wt)),
  )([t.q, t.k, t.v, t.g]);
  const names = ['q', 'k', 'v', 'g'] as const;
  const eps = 1e-6;
  names.forEach((n, idx) => {
    const got = grads[idx].dataSync();
    const want = new Float64Array(got.length);
    for (let i = 0; i < got.length; i++) {
      const plus = { ...x, [n]: Float64Array.from(x[n]) };
      const minus = { ...x, [n]: Float64Array.from(x[n]) };
      plus[n][i] += eps;
      minus[n][i] -= eps;
      want[i] = (lossRef(plus) - lossRef(minus)) / (2 * eps);
    }
    assertClose(got, want, 1e-4, 1e-3, `d loss / d ${n}`);
    assert.ok(
      want.some((z) => Math.abs(z) > 1e-2),
      `${n}: the gradient is not trivially zero`,
    );
  });
  tf.dispose([...grads, wt, t.q, t.k, t.v, t.g]);
});

function nsaModel(): ModelConfig {
  return parseModelConfig(applyInnovations(getScale('smoke').model, ['sparse']));
}

test('the whole NSA model is causal: perturbing future tokens leaves earlier logits unchanged', () => {
  const cfg = nsaModel();
  assert.equal(cfg.attnKernel, 'nsa');
  const T = cfg.blockSize;
  const params = initParams(cfg, 3);
  const ids = Array.from({ length: T }, (_, i) => (i * 37 + 11) % cfg.vocabSize);
  // a cut in the middle of a block and one at a block boundary: compression (complete blocks),
  // selection (which blocks) and the selected tokens all must ignore what comes after
  for (const cut of [13, 16]) {
    const other = ids.map((id, i) => (i > cut ? (id * 7 + 5) % cfg.vocabSize : id));
    const idx = tf.tensor2d([ids, other], [2, T], 'int32');
    const { logits, aux } = gptForward(params, idx, cfg, { training: false, seed: 0 });
    const l = logits.arraySync() as number[][][];
    for (let t = 0; t <= cut; t++) assertClose(l[1][t], l[0][t], 0, 0, `logits at ${t} <= cut ${cut}`);
    const later = l[0].slice(cut + 1).some((row, i) => row.some((z, j) => z !== l[1][cut + 1 + i][j]));
    assert.ok(later, 'the perturbation does change later logits');
    tf.dispose([idx, logits, aux]);
  }
  disposeParams(params);
});

test('NSA model: parameters of the NSA layout (own projections, g_proj, o_proj without bias)', () => {
  const cfg = nsaModel();
  const n = cfg.nsa!;
  const C = cfg.nEmbd;
  const D = C / n.heads;
  const params = initParams(cfg, 1);
  const names = [...params.keys()].filter((k) => k.startsWith('transformer.h.0.attn.'));
  assert.deepEqual(names, [
    'transformer.h.0.attn.q_proj.weight',
    'transformer.h.0.attn.q_proj.bias',
    'transformer.h.0.attn.k_proj.weight',
    'transformer.h.0.attn.k_proj.bias',
    'transformer.h.0.attn.v_proj.weight',
    'transformer.h.0.attn.v_proj.bias',
    'transformer.h.0.attn.g_proj.weight',
    'transformer.h.0.attn.o_proj.weight',
  ]);
  assert.deepEqual(params.get('transformer.h.0.attn.k_proj.weight')!.shape, [C, n.kvHeads * D]);
  assert.deepEqual(params.get('transformer.h.0.attn.g_proj.weight')!.shape, [C, 3 * n.heads]);
  const base = getScale('smoke').model;
  const perLayer = C * C + 2 * C * n.kvHeads * D + C * 3 * n.heads + C * C + (C + 2 * n.kvHeads * D); // weights + q/k/v biases
  const basePerLayer = C * 3 * C + 3 * C + C * C + C; // c_attn + bias, c_proj + bias
  assert.equal(paramCount(cfg) - paramCount(base), cfg.nLayer * (perLayer - basePerLayer));
  disposeParams(params);
});

test('NSA FLOPs: hand count of every branch (smoke: T 32, blocks of 8, 2 selected, 4 heads of 8, 1 K/V head)', () => {
  const cfg = nsaModel();
  assert.deepEqual(cfg.nsa, { heads: 4, kvHeads: 1, blockSize: 8, blockCounts: 2, windowSize: 0 });
  const seqs = 4;
  const N = seqs * 32;
  const f = stepFlops(cfg, N);
  // compressed keys: t+1 < 8 -> 0 blocks (8 queries), 8..15 -> 1 (t=7..14), ... counted per query:
  // floor((t+1)/8) over t = 0..31 = 0·7 + 1·8 + 2·8 + 3·8 + 4·1 = 52
  const cmpKeys = 52;
  // selected keys: block 0 (t<8): t+1 -> 36; t in block 1: 8 + (t%8+1) -> 64+36 = 100; blocks 2 and 3 (2 selected): same 100 each
  const slcKeys = 36 + 100 + 100 + 100;
  const L = 2;
  const H = 4;
  const D = 8;
  assert.equal(f.breakdown['attention.compressed'], L * seqs * H * cmpKeys * (2 * D + 2 * D));
  assert.equal(f.breakdown['attention.selected'], L * seqs * H * slcKeys * (2 * D + 2 * D));
  assert.equal(f.breakdown['attention.sliding'], undefined);
  assert.equal(f.breakdown.qkv, L * 2 * N * 32 * (32 + 8 + 8));
  assert.equal(f.breakdown['attn.gates'], L * 2 * N * 32 * 12);
  assert.equal(f.breakdown['attn.proj'], L * 2 * N * 32 * 32);
  assert.equal(
    Object.values(f.breakdown).reduce((a, b) => a + b, 0),
    f.forward,
  );
  // with a window of 4: min(4, t+1) keys = 1+2+3+4·29 = 122 per head
  const w = stepFlops({ ...cfg, nsa: { ...cfg.nsa!, windowSize: 4 } }, N);
  assert.equal(w.breakdown['attention.sliding'], L * seqs * H * 122 * 4 * D);
  assert.notEqual(f.forward, stepFlops(getScale('smoke').model, N).forward);
});

test('NSA config validation: one message naming the problem', () => {
  const cfg = nsaModel();
  assert.throws(
    () => parseModelConfig({ ...cfg, nsa: { ...cfg.nsa!, heads: 5 } }),
    /nsa\.heads.*divisible|divisible by nsa\.heads 5/,
  );
  assert.throws(
    () => parseModelConfig({ ...cfg, nsa: { ...cfg.nsa!, blockSize: 5 } }),
    /multiple of the NSA block size 5/,
  );
  assert.throws(() => parseModelConfig({ ...cfg, nsa: undefined }), /attnKernel 'nsa' needs the nsa settings/);
  assert.throws(() => parseModelConfig({ ...cfg, positions: 'rope' }), /no rotary embedding/);
});

test('NSA leaks no tensors (forward and gradients; its constant masks are built once and kept)', () => {
  const c = CASES['MQA layout (4 query heads, 1 K/V head), no window'];
  const t = tensors(c, inputs(c, 5));
  const run = () => {
    const g = tf.grads((q, k, v, gg) =>
      tf.sum(nsaAttention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, gg as tf.Tensor4D, c.nsa)),
    )([t.q, t.k, t.v, t.g]);
    tf.dispose(g);
  };
  run(); // warms the mask cache
  const before = tf.memory().numTensors;
  run();
  run();
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([t.q, t.k, t.v, t.g]);
});
