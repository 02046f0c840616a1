import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initEngine, tf } from '../src/engine/index.js';
import type { ModelConfig } from '../src/config.js';
import { ATTN_KERNELS, parseModelConfig } from '../src/config.js';
import { getScale } from '../src/scales.js';
import {
  countParams,
  decayedParams,
  disposeParams,
  initParams,
  paramCount,
  paramSpecs,
  swigluHidden,
  type Params,
} from '../src/model/params.js';
import { layerNorm, rmsNorm } from '../src/model/norms.js';
import { applyRope } from '../src/model/rope.js';
import { moeMlp, swigluMlp } from '../src/model/mlp.js';
import { gptForward, gptLoss } from '../src/model/gpt.js';

/** Deterministic pseudo-random numbers in [-1, 1) (LCG), independent of tfjs. */
function rand(n: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

function tiny(over: Partial<ModelConfig> = {}): ModelConfig {
  return parseModelConfig({
    vocabSize: 16,
    blockSize: 8,
    nLayer: 2,
    nHead: 4,
    nEmbd: 16,
    nKvHead: 4,
    dropout: 0,
    bias: true,
    norm: 'none',
    positions: 'learned',
    ropeBase: 10000,
    attnKernel: 'plain',
    sparse: { blockSize: 2, localBlocks: 1, selectedBlocks: 1 },
    mlp: 'gelu',
    mlpHidden: 32,
    moe: { experts: 3, topK: 2, auxLossWeight: 0.01 },
    ...over,
  });
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) => {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++)
    assert.ok(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
};

const tokens = (B: number, T: number, V: number, seed: number) =>
  tf.tensor2d(
    rand(B * T, seed).map((r) => Math.floor((r + 1) * 0.5 * V) % V),
    [B, T],
    'int32',
  );

test('params: names, shapes, counts, init and weight-decay groups', async () => {
  await initEngine({ backend: 'cpu' });
  const cfg = getScale('smoke').model; // V 128, T 32, L 2, C 32, gelu 128, bias, norm none
  const p = initParams(cfg, 7);
  const C = 32;
  // hand count: wte 128·32 + wpe 32·32 + per layer (c_attn 32·96+96, c_proj 32·32+32, c_fc 32·128+128, c_proj 128·32+32) + ln_f 2·32
  const perLayer = C * 3 * C + 3 * C + (C * C + C) + (C * 128 + 128) + (128 * C + C);
  const hand = 128 * C + 32 * C + 2 * perLayer + 2 * C;
  assert.equal(countParams(p), hand);
  assert.equal(paramCount(cfg), hand);
  assert.equal(paramCount(cfg, { nonEmbedding: true }), hand - 32 * C);
  assert.deepEqual(p.get('transformer.h.1.attn.c_attn.weight')!.shape, [32, 96]);
  assert.ok(!p.has('transformer.h.0.ln_1.weight'));
  assert.deepEqual(p.get('transformer.ln_f.bias')!.shape, [32]);
  // init: c_proj std 0.02/sqrt(2·2) = 0.01, c_fc std 0.02, biases 0, gains 1
  const std = (name: string) => {
    const d = Array.from(p.get(name)!.dataSync());
    const m = d.reduce((a, b) => a + b, 0) / d.length;
    return Math.sqrt(d.reduce((a, b) => a + (b - m) ** 2, 0) / d.length);
  };
  assert.ok(Math.abs(std('transformer.h.0.mlp.c_proj.weight') - 0.01) < 0.001);
  assert.ok(Math.abs(std('transformer.h.0.mlp.c_fc.weight') - 0.02) < 0.002);
  assert.ok(
    p
      .get('transformer.h.0.attn.c_attn.bias')!
      .dataSync()
      .every((x) => x === 0),
  );
  assert.ok(
    p
      .get('transformer.ln_f.weight')!
      .dataSync()
      .every((x) => x === 1),
  );
  // same seed -> same numbers, other seed -> different
  const q = initParams(cfg, 7);
  const r = initParams(cfg, 8);
  assert.deepEqual(q.get('transformer.wte.weight')!.dataSync(), p.get('transformer.wte.weight')!.dataSync());
  assert.notDeepEqual(r.get('transformer.wte.weight')!.dataSync(), p.get('transformer.wte.weight')!.dataSync());
  [p, q, r].forEach(disposeParams);

  // weight-decay groups, as each parameter declares them where it is created (paramSpecs)
  const isDecayed = (name: string) =>
    decayedParams(tiny({ norm: 'layernorm', mlp: name.includes('.experts.') ? 'moe' : 'gelu' }))(name);
  assert.equal(isDecayed('transformer.wte.weight'), true);
  assert.equal(isDecayed('transformer.h.0.mlp.c_fc.weight'), true);
  assert.equal(isDecayed('transformer.h.0.mlp.experts.1.c_proj.weight'), true);
  assert.equal(isDecayed('transformer.h.0.mlp.c_fc.bias'), false);
  assert.equal(isDecayed('transformer.h.0.ln_1.weight'), false);
  assert.equal(isDecayed('transformer.ln_f.weight'), false);
  assert.throws(() => isDecayed('transformer.h.0.attn.made_up.weight'), /not part of this model config/);

  // variants: RoPE drops wpe, rmsnorm has no bias, MQA shrinks c_attn, SwiGLU 2/3 width, MoE experts
  const names = (c: ModelConfig) => new Map(paramSpecs(c).map((s) => [s.name, s.shape]));
  const v = names(tiny({ positions: 'rope', norm: 'rmsnorm', nKvHead: 1, mlp: 'swiglu' }));
  assert.ok(
    !v.has('transformer.wpe.weight') && !v.has('transformer.h.0.ln_1.bias') && v.has('transformer.h.0.ln_1.weight'),
  );
  assert.deepEqual(v.get('transformer.h.0.attn.c_attn.weight'), [16, 16 + 2 * 4]);
  assert.equal(swigluHidden(tiny()), 24); // floor(2·32/3) = 21 -> 24
  assert.deepEqual(v.get('transformer.h.0.mlp.c_fc2.weight'), [16, 24]);
  const m = names(tiny({ mlp: 'moe' }));
  assert.deepEqual(m.get('transformer.h.1.mlp.router.weight'), [16, 3]);
  assert.ok(!m.has('transformer.h.1.mlp.router.bias'));
  assert.deepEqual(m.get('transformer.h.1.mlp.experts.2.c_proj.weight'), [32, 16]);
});

test('LayerNorm and RMSNorm equal plain-loop formulas', async () => {
  await initEngine({ backend: 'cpu' });
  const N = 3,
    C = 5;
  const x = rand(N * C, 1).map((v) => 3 * v + 0.5);
  const g = rand(C, 2),
    b = rand(C, 3);
  const ln: number[] = [],
    rms: number[] = [];
  for (let n = 0; n < N; n++) {
    const row = x.slice(n * C, n * C + C);
    const mu = row.reduce((a, c) => a + c, 0) / C;
    const va = row.reduce((a, c) => a + (c - mu) ** 2, 0) / C;
    const ms = row.reduce((a, c) => a + c * c, 0) / C;
    for (let c = 0; c < C; c++) {
      ln.push(((row[c] - mu) / Math.sqrt(va + 1e-5)) * g[c] + b[c]);
      rms.push((row[c] / Math.sqrt(ms + 1e-5)) * g[c]);
    }
  }
  const [xt, gt, bt] = [tf.tensor2d(x, [N, C]), tf.tensor1d(g), tf.tensor1d(b)];
  close(layerNorm(xt, gt, bt).dataSync(), ln, 1e-5, 'layerNorm');
  close(rmsNorm(xt, gt).dataSync(), rms, 1e-5, 'rmsNorm');
});

test('RoPE: hand-computed rotation, and scores depend only on the offset m − n', async () => {
  await initEngine({ backend: 'cpu' });
  // hs = 2: one pair (x0, x1) rotated by m·θ0 with θ0 = base^0 = 1 rad
  const x = tf.tensor4d([1, 0, 0.5, 2, 3, -1], [1, 1, 3, 2]);
  const got = applyRope(x, 10000).dataSync();
  const want: number[] = [];
  [
    [1, 0],
    [0.5, 2],
    [3, -1],
  ].forEach(([a, b], m) => want.push(a * Math.cos(m) - b * Math.sin(m), a * Math.sin(m) + b * Math.cos(m)));
  close(got, want, 1e-6, 'rope 2-d');
  // hs = 4, base 100: pairs (0,2) at θ=1 and (1,3) at θ=100^(-1/2)=0.1
  const y = applyRope(tf.tensor4d([1, 2, 3, 4, 1, 2, 3, 4], [1, 1, 2, 4]), 100).dataSync();
  const [c1, s1, c2, s2] = [Math.cos(1), Math.sin(1), Math.cos(0.1), Math.sin(0.1)];
  close(y, [1, 2, 3, 4, 1 * c1 - 3 * s1, 2 * c2 - 4 * s2, 1 * s1 + 3 * c1, 2 * s2 + 4 * c2], 1e-6, 'rope pairs');
  // relative property: same q, k vectors placed at (m, n) and (m + s, n + s) give the same score
  const hs = 8;
  const qv = rand(hs, 4),
    kv = rand(hs, 5);
  const score = (m: number, n: number) => {
    const q = Array.from(applyRope(tf.tensor4d(qv, [1, 1, 1, hs]), 10000, m).dataSync());
    const k = applyRope(tf.tensor4d(kv, [1, 1, 1, hs]), 10000, n).dataSync();
    return q.reduce((a, v, i) => a + v * k[i], 0);
  };
  const s0 = score(5, 2);
  for (const shift of [1, 7, 40]) assert.ok(Math.abs(score(5 + shift, 2 + shift) - s0) < 1e-4, `shift ${shift}`);
  assert.ok(Math.abs(score(5, 3) - s0) > 1e-3, 'a different offset gives a different score');
});

/** Copy params of `src` into a model of cfg `dst`, expanding K/V heads so that head h uses src kv head floor(h / g). */
function expandKv(src: Params, from: ModelConfig, to: ModelConfig): Params {
  const out = initParams(to, 99);
  const C = from.nEmbd,
    hs = C / from.nHead,
    g = to.nKvHead / from.nKvHead;
  for (const [name, v] of src) {
    if (!name.endsWith('attn.c_attn.weight') && !name.endsWith('attn.c_attn.bias')) {
      out.get(name)!.assign(v);
      continue;
    }
    const isW = name.endsWith('weight');
    const cols = (t: tf.Tensor, a: number, n: number) => (isW ? tf.slice(t, [0, a], [-1, n]) : tf.slice(t, [a], [n]));
    const parts: tf.Tensor[] = [cols(v, 0, C)];
    for (const base of [C, C + from.nKvHead * hs])
      for (let h = 0; h < to.nKvHead; h++) parts.push(cols(v, base + Math.floor(h / g) * hs, hs));
    out.get(name)!.assign(tf.concat(parts, isW ? 1 : 0));
  }
  return out;
}

test('MQA equals MHA with all K/V heads copies of one head; GQA head h uses kv head floor(h/(H/Hkv))', async () => {
  await initEngine({ backend: 'cpu' });
  const idx = tokens(2, 8, 16, 11);
  const mha = tiny();
  for (const nKv of [1, 2]) {
    const small = tiny({ nKvHead: nKv });
    const p = initParams(small, 3);
    const q = expandKv(p, small, mha);
    const a = gptForward(p, idx, small, { training: false, seed: 0 }).logits.dataSync();
    const b = gptForward(q, idx, mha, { training: false, seed: 0 }).logits.dataSync();
    close(a, b, 1e-5, `kv ${nKv}`);
    // a wrong grouping (h mod Hkv) must differ for GQA: swap head blocks to check the test can fail
    if (nKv === 2) {
      const w = q.get('transformer.h.0.attn.c_attn.weight')!;
      const hs = 4;
      const perm = [0, 2, 1, 3]; // heads 0..3 using kv (0,1,0,1) instead of (0,0,1,1)
      const parts: tf.Tensor[] = [tf.slice(w, [0, 0], [-1, 16])];
      for (const base of [16, 32]) for (const h of perm) parts.push(tf.slice(w, [0, base + h * hs], [-1, hs]));
      w.assign(tf.concat(parts, 1));
      const c = gptForward(q, idx, mha, { training: false, seed: 0 }).logits.dataSync();
      assert.ok(
        c.some((x, i) => Math.abs(x - a[i]) > 1e-4),
        'the h mod Hkv grouping should differ',
      );
    }
    disposeParams(p);
    disposeParams(q);
  }
});

test('SwiGLU equals loops: (silu(x·W1) ⊙ (x·W3))·W2 + biases', async () => {
  await initEngine({ backend: 'cpu' });
  const N = 2,
    C = 3,
    Hs = 4;
  const x = rand(N * C, 21),
    w1 = rand(C * Hs, 22),
    w3 = rand(C * Hs, 23),
    w2 = rand(Hs * C, 24);
  const b1 = rand(Hs, 25),
    b3 = rand(Hs, 26),
    b2 = rand(C, 27);
  const p: Params = new Map<string, tf.Variable>([
    ['m.c_fc2.weight', tf.variable(tf.tensor2d(w1, [C, Hs]))],
    ['m.c_fc2.bias', tf.variable(tf.tensor1d(b1))],
    ['m.c_fc.weight', tf.variable(tf.tensor2d(w3, [C, Hs]))],
    ['m.c_fc.bias', tf.variable(tf.tensor1d(b3))],
    ['m.c_proj.weight', tf.variable(tf.tensor2d(w2, [Hs, C]))],
    ['m.c_proj.bias', tf.variable(tf.tensor1d(b2))],
  ]);
  const want: number[] = [];
  for (let n = 0; n < N; n++) {
    const h: number[] = [];
    for (let j = 0; j < Hs; j++) {
      let a = b1[j],
        u = b3[j];
      for (let c = 0; c < C; c++) {
        a += x[n * C + c] * w1[c * Hs + j];
        u += x[n * C + c] * w3[c * Hs + j];
      }
      h.push((a / (1 + Math.exp(-a))) * u);
    }
    for (let c = 0; c < C; c++) want.push(b2[c] + h.reduce((s, hv, j) => s + hv * w2[j * C + c], 0));
  }
  close(swigluMlp(p, 'm', tf.tensor2d(x, [N, C])).dataSync(), want, 1e-5, 'swiglu');
  disposeParams(p);
});

test('MoE: output is the renormalised weighted sum of the chosen experts; Switch load-balancing loss', async () => {
  await initEngine({ backend: 'cpu' });
  // C = E = 3 with router = identity, so the router logits are x itself (hand-made)
  const N = 4,
    C = 3,
    E = 3,
    Hd = 2;
  const x = [2, 1, 0, 0, 0.5, 3, 1, 1, 1.5, -1, 2, 0.1];
  const p: Params = new Map([['m.router.weight', tf.variable(tf.eye(3))]]);
  const ew: number[][][] = [];
  for (let e = 0; e < E; e++) {
    const W1 = rand(C * Hd, 30 + e),
      B1 = rand(Hd, 40 + e),
      W2 = rand(Hd * C, 50 + e),
      B2 = rand(C, 60 + e);
    ew.push([W1, B1, W2, B2]);
    p.set(`m.experts.${e}.c_fc.weight`, tf.variable(tf.tensor2d(W1, [C, Hd])));
    p.set(`m.experts.${e}.c_fc.bias`, tf.variable(tf.tensor1d(B1)));
    p.set(`m.experts.${e}.c_proj.weight`, tf.variable(tf.tensor2d(W2, [Hd, C])));
    p.set(`m.experts.${e}.c_proj.bias`, tf.variable(tf.tensor1d(B2)));
  }
  const erf = (z: number) => {
    // Abramowitz-Stegun 7.1.26 (|err| < 1.5e-7)
    const t = 1 / (1 + 0.3275911 * Math.abs(z));
    const y =
      1 -
      ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
        t *
        Math.exp(-z * z);
    return z >= 0 ? y : -y;
  };
  const expert = (e: number, row: number[]) => {
    const [W1, B1, W2, B2] = ew[e];
    const h = B1.map((b, j) => {
      const a = b + row.reduce((s, v, c) => s + v * W1[c * Hd + j], 0);
      return 0.5 * a * (1 + erf(a / Math.SQRT2));
    });
    return B2.map((b, c) => b + h.reduce((s, hv, j) => s + hv * W2[j * C + c], 0));
  };
  // hand routing (top-2 of the logits = x rows): [0,1], [2,1], [2,0] (1.5 > 1 = 1), [2,1]
  const chosen = [
    [0, 1],
    [2, 1],
    [2, 0],
    [2, 1],
  ];
  const want: number[] = [];
  const probs: number[][] = [];
  for (let n = 0; n < N; n++) {
    const row = x.slice(n * C, n * C + C);
    const z = row.map(Math.exp);
    const s = z.reduce((a, b) => a + b, 0);
    probs.push(z.map((v) => v / s));
    const [e1, e2] = chosen[n];
    const w1 = probs[n][e1] / (probs[n][e1] + probs[n][e2]),
      w2 = 1 - w1;
    const y1 = expert(e1, row),
      y2 = expert(e2, row);
    want.push(...y1.map((v, c) => w1 * v + w2 * y2[c]));
  }
  const r = moeMlp(p, 'm', tf.tensor2d(x, [N, C]), { experts: E, topK: 2, auxLossWeight: 0 });
  close(r.y.dataSync(), want, 1e-5, 'moe output');
  assert.deepEqual(r.counts, [2, 3, 3]);
  // aux = E·Σ f_e·P_e with f = counts/(N·k) = [2,3,3]/8, P = mean of probs
  const P = [0, 1, 2].map((e) => probs.reduce((a, pr) => a + pr[e], 0) / N);
  const aux = 3 * [2, 3, 3].reduce((a, c, e) => a + (c / 8) * P[e], 0);
  assert.ok(Math.abs(r.aux.dataSync()[0] - aux) < 1e-5, `aux ${r.aux.dataSync()[0]} vs ${aux}`);
  // uniform router (all logits equal): P_e = 1/E and Σ f_e = 1, so aux = 1 exactly
  const u = moeMlp(p, 'm', tf.zeros([5, 3]) as tf.Tensor2D, { experts: E, topK: 2, auxLossWeight: 0 });
  assert.ok(Math.abs(u.aux.dataSync()[0] - 1) < 1e-6);
  // top-1: the raw probability weights the single expert (Switch)
  const one = moeMlp(p, 'm', tf.tensor2d(x.slice(0, 3), [1, 3]), { experts: E, topK: 1, auxLossWeight: 0 });
  close(
    one.y.dataSync(),
    expert(0, x.slice(0, 3)).map((v) => v * probs[0][0]),
    1e-5,
    'top-1',
  );
  disposeParams(p);
});

for (const kernel of ATTN_KERNELS) {
  // The sparse kernel once chose key blocks from the mean of a whole query block, which let a
  // later token change the blocks of earlier ones; it now uses a causal pooled query. This
  // test caught the leak and guards the fix.
  test(`causal masking (${kernel}): a future token does not change earlier logits`, async () => {
    await initEngine({ backend: 'cpu' });
    // NSA has no rotary (the paper's is the identity): learned positions, 4 blocks of 2, 2 selected
    const nsa = { heads: 4, kvHeads: 1, blockSize: 2, blockCounts: 2, windowSize: 0 };
    const cfg = tiny(
      kernel === 'nsa'
        ? { attnKernel: kernel, norm: 'layernorm', nsa }
        : { attnKernel: kernel, positions: 'rope', norm: 'layernorm' },
    );
    const p = initParams(cfg, 5);
    const a = tokens(1, 8, 16, 3);
    const arr = a.arraySync();
    arr[0][5] = (arr[0][5] + 7) % 16;
    const b = tf.tensor2d(arr, [1, 8], 'int32');
    const la = gptForward(p, a, cfg, { training: false, seed: 0 }).logits.arraySync()[0];
    const lb = gptForward(p, b, cfg, { training: false, seed: 0 }).logits.arraySync()[0];
    disposeParams(p);
    for (let t = 0; t < 5; t++) close(lb[t], la[t], 1e-5, `${kernel} position ${t}`);
    assert.ok(
      lb[5].some((v, i) => Math.abs(v - la[5][i]) > 1e-6),
      `${kernel}: position 5 should change`,
    );
  });
}

test('dropout is deterministic per seed, off in evaluation', async () => {
  await initEngine({ backend: 'cpu' });
  const cfg = tiny({ dropout: 0.3 });
  const p = initParams(cfg, 1);
  const idx = tokens(2, 8, 16, 4);
  const loss = (training: boolean, seed: number) => gptLoss(p, idx, idx, cfg, { training, seed }).loss.dataSync()[0];
  assert.equal(loss(true, 5), loss(true, 5));
  assert.notEqual(loss(true, 5), loss(true, 6));
  assert.equal(loss(false, 5), loss(false, 6));
  disposeParams(p);
});

/** Central finite differences on the entries with the largest analytic gradients. */
function gradCheck(cfg: ModelConfig, names: string[]) {
  const p = initParams(cfg, 13);
  // larger weights than GPT-2 init so that every path carries a visible gradient
  for (const [n, v] of p) if (n.endsWith('.weight') && !/ln_/.test(n)) v.assign(tf.mul(v, 10));
  const idx = tokens(2, 8, cfg.vocabSize, 8);
  const tgt = tokens(2, 8, cfg.vocabSize, 9);
  const f = () => gptLoss(p, idx, tgt, cfg, { training: false, seed: 0 }).loss;
  const vars = names.map((n) => p.get(n)!);
  const { grads } = tf.variableGrads(f, vars);
  for (const n of names) {
    const v = p.get(n)!;
    const g = grads[v.name].dataSync();
    const order = [...g.keys()].sort((a, b) => Math.abs(g[b]) - Math.abs(g[a])).slice(0, 3);
    for (const i of order) {
      const base = v.dataSync().slice();
      const at = (d: number) => {
        const w = base.slice();
        w[i] += d;
        v.assign(tf.tensor(w, v.shape));
        return f().dataSync()[0];
      };
      const eps = 3e-3;
      const num = (at(eps) - at(-eps)) / (2 * eps);
      v.assign(tf.tensor(base, v.shape));
      assert.ok(Math.abs(num - g[i]) <= 0.03 * Math.abs(g[i]) + 2e-4, `${n}[${i}]: analytic ${g[i]} vs numeric ${num}`);
    }
  }
  disposeParams(p);
}

test('finite-difference gradient check: baseline', async () => {
  await initEngine({ backend: 'cpu' });
  gradCheck(tiny({ nLayer: 1 }), [
    'transformer.wte.weight',
    'transformer.wpe.weight',
    'transformer.h.0.attn.c_attn.weight',
    'transformer.h.0.attn.c_proj.bias',
    'transformer.h.0.mlp.c_fc.weight',
    'transformer.ln_f.weight',
  ]);
});

test('finite-difference gradient check: layernorm + rope + moe (with aux loss)', async () => {
  await initEngine({ backend: 'cpu' });
  gradCheck(
    tiny({
      nLayer: 1,
      norm: 'layernorm',
      positions: 'rope',
      mlp: 'moe',
      moe: { experts: 3, topK: 2, auxLossWeight: 0.5 },
    }),
    [
      'transformer.h.0.ln_1.weight',
      'transformer.h.0.attn.c_attn.weight',
      'transformer.h.0.mlp.router.weight',
      'transformer.h.0.mlp.experts.1.c_fc.weight',
      'transformer.h.0.ln_2.bias',
    ],
  );
});

for (const backend of ['cpu', 'wasm'] as const) {
  test(`a tiny model overfits one batch with Adam (${backend})`, async () => {
    await initEngine({ backend });
    const cfg = tiny({ vocabSize: 32, blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 32, nKvHead: 2, mlpHidden: 64 });
    const p = initParams(cfg, 2);
    const idx = tokens(4, 16, 32, 10);
    const tgt = tokens(4, 16, 32, 11);
    const opt = tf.train.adam(1e-2);
    const vars = [...p.values()];
    const first = gptLoss(p, idx, tgt, cfg, { training: false, seed: 0 }).loss.dataSync()[0];
    for (let s = 0; s < 100; s++) {
      tf.tidy(() => {
        opt.minimize(() => gptLoss(p, idx, tgt, cfg, { training: true, seed: s }).loss, false, vars);
      });
    }
    const last = gptLoss(p, idx, tgt, cfg, { training: false, seed: 0 }).loss.dataSync()[0];
    assert.ok(Math.abs(first - Math.log(32)) < 0.1, `initial loss ${first} ≈ ln 32`);
    assert.ok(last < 0.5, `loss after 100 steps ${last} should be far below ln 32 = ${Math.log(32).toFixed(2)}`);
    opt.dispose();
    disposeParams(p);
  });
}

test('wasm loss and gradients equal the cpu ones (rope + layernorm + GQA + moe)', async () => {
  const cfg = tiny({ positions: 'rope', norm: 'layernorm', nKvHead: 2, mlp: 'moe' });
  const run = () => {
    const p = initParams(cfg, 21);
    const idx = tokens(2, 8, 16, 30);
    const { value, grads } = tf.variableGrads(
      () => gptLoss(p, idx, idx, cfg, { training: false, seed: 0 }).loss,
      [...p.values()],
    );
    const names = [...p.keys()];
    const out = { loss: value.dataSync()[0], g: [...p.values()].map((v) => Array.from(grads[v.name].dataSync())) };
    disposeParams(p);
    return { ...out, names };
  };
  await initEngine({ backend: 'cpu' });
  const a = run();
  await initEngine({ backend: 'wasm' });
  const b = run();
  assert.ok(Math.abs(a.loss - b.loss) < 1e-5, `loss cpu ${a.loss} vs wasm ${b.loss}`);
  a.g.forEach((g, i) => {
    const scale = Math.max(...g.map(Math.abs));
    const worst = Math.max(...g.map((v, j) => Math.abs(v - b.g[i][j])));
    assert.ok(scale > 0 && worst <= 1e-3 * scale, `${a.names[i]}: max |cpu − wasm| ${worst} vs max |grad| ${scale}`);
  });
});
