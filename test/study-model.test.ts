/**
 * The study's new model options against an independent plain-array reference GPT (written
 * here from the formulas, not from src/model): post-LN placement and the input-embedding
 * scale of the fairly initialised baseline, plus finite-difference gradient checks.
 * The reference is first checked against the pre-LN and no-norm models, so a wrong reference
 * cannot pass the new checks by accident.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initEngine, tf } from '../src/engine/index.js';
import type { ModelConfig } from '../src/config.js';
import { ConfigError, parseModelConfig } from '../src/config.js';
import { disposeParams, initParams, type Params } from '../src/model/params.js';
import { gptForward, gptLoss } from '../src/model/gpt.js';
import { applyInnovations, FAIR_EMBED_SCALE, innovationChange } from '../src/innovations.js';
import { getScale } from '../src/scales.js';

function tiny(over: Partial<ModelConfig> = {}): ModelConfig {
  return parseModelConfig({
    vocabSize: 16,
    blockSize: 6,
    nLayer: 2,
    nHead: 2,
    nEmbd: 8,
    nKvHead: 2,
    dropout: 0,
    bias: true,
    norm: 'none',
    positions: 'learned',
    ropeBase: 10000,
    attnKernel: 'plain',
    sparse: { blockSize: 2, localBlocks: 1, selectedBlocks: 1 },
    mlp: 'gelu',
    mlpHidden: 16,
    moe: { experts: 3, topK: 2, auxLossWeight: 0.01 },
    ...over,
  });
}

// ------------------------------------------------------------------ plain-array reference

type Vec = number[];
type Mat = number[][]; // rows

/** erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7). */
function erf(x: number): number {
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return s * y;
}
const geluRef = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));

function weights(p: Params, name: string): { rows: Mat } {
  const v = p.get(name);
  if (!v) throw new Error(`missing ${name}`);
  const d = Array.from(v.dataSync());
  const [r, c] = v.shape.length === 2 ? v.shape : [1, v.shape[0]];
  return { rows: Array.from({ length: r }, (_, i) => d.slice(i * c, (i + 1) * c)) };
}
const vec = (p: Params, name: string): Vec | undefined =>
  p.has(name) ? Array.from(p.get(name)!.dataSync()) : undefined;

/** x [in] · W [in, out] + b */
function lin(x: Vec, p: Params, name: string): Vec {
  const W = weights(p, `${name}.weight`).rows;
  const b = vec(p, `${name}.bias`);
  const out = new Array(W[0].length).fill(0);
  for (let i = 0; i < x.length; i++) for (let j = 0; j < out.length; j++) out[j] += x[i] * W[i][j];
  return b ? out.map((o, j) => o + b[j]) : out;
}

function layerNormRef(x: Vec, g: Vec, b?: Vec): Vec {
  const m = x.reduce((a, v) => a + v, 0) / x.length;
  const v = x.reduce((a, u) => a + (u - m) ** 2, 0) / x.length;
  return x.map((u, i) => ((u - m) / Math.sqrt(v + 1e-5)) * g[i] + (b ? b[i] : 0));
}

/** Logits [T][V] of one sequence, from the formulas: GELU MLP, learned positions, MHA, LayerNorm. */
function referenceLogits(p: Params, cfg: ModelConfig, idx: number[]): Mat {
  const C = cfg.nEmbd;
  const H = cfg.nHead;
  const hs = C / H;
  const T = idx.length;
  const wte = weights(p, 'transformer.wte.weight').rows;
  const wpe = weights(p, 'transformer.wpe.weight').rows;
  const s = cfg.embedScale ?? 1;
  let x: Mat = idx.map((t, i) => wte[t].map((w, c) => s * (w + wpe[i][c])));
  const g = cfg.blockInputScale ?? 1;
  const norm = (name: string, h: Mat) =>
    cfg.norm === 'none'
      ? h.map((r) => r.map((u) => g * u))
      : h.map((r) => layerNormRef(r, vec(p, `${name}.weight`)!, vec(p, `${name}.bias`)));
  const post = cfg.normPlacement === 'post';
  const add = (a: Mat, b: Mat) => a.map((r, i) => r.map((v, j) => v + b[i][j]));
  for (let l = 0; l < cfg.nLayer; l++) {
    const h = `transformer.h.${l}`;
    const ain = post ? x : norm(`${h}.ln_1`, x);
    const qkv = ain.map((r) => lin(r, p, `${h}.attn.c_attn`));
    const y: Mat = Array.from({ length: T }, () => new Array(C).fill(0));
    for (let hd = 0; hd < H; hd++) {
      const q = (t: number) => qkv[t].slice(hd * hs, (hd + 1) * hs);
      const k = (t: number) => qkv[t].slice(C + hd * hs, C + (hd + 1) * hs);
      const v = (t: number) => qkv[t].slice(2 * C + hd * hs, 2 * C + (hd + 1) * hs);
      for (let i = 0; i < T; i++) {
        const sc = Array.from(
          { length: i + 1 },
          (_, j) => q(i).reduce((a, u, c) => a + u * k(j)[c], 0) / Math.sqrt(hs),
        );
        const mx = Math.max(...sc);
        const e = sc.map((u) => Math.exp(u - mx));
        const z = e.reduce((a, u) => a + u, 0);
        for (let j = 0; j <= i; j++) for (let c = 0; c < hs; c++) y[i][hd * hs + c] += (e[j] / z) * v(j)[c];
      }
    }
    x = add(
      x,
      y.map((r) => lin(r, p, `${h}.attn.c_proj`)),
    );
    if (post) x = norm(`${h}.ln_1`, x);
    const min = post ? x : norm(`${h}.ln_2`, x);
    x = add(
      x,
      min.map((r) => lin(lin(r, p, `${h}.mlp.c_fc`).map(geluRef), p, `${h}.mlp.c_proj`)),
    );
    if (post) x = norm(`${h}.ln_2`, x);
  }
  const xf = x.map((r) => layerNormRef(r, vec(p, 'transformer.ln_f.weight')!, vec(p, 'transformer.ln_f.bias')));
  return xf.map((r) => wte.map((w) => w.reduce((a, u, c) => a + u * r[c], 0)));
}

/** GPT-2 init is too small for a sharp test: larger, seeded weights so every path matters. */
function params(cfg: ModelConfig, seed: number): Params {
  const p = initParams(cfg, seed);
  let k = 0;
  for (const [n, v] of p) {
    k += 1;
    const extra = tf.tidy(() => tf.randomNormal(v.shape, 0, n.includes('ln_') ? 0.3 : 0.3, 'float32', seed * 101 + k));
    v.assign(tf.add(v, extra));
    extra.dispose();
  }
  return p;
}

function compare(cfg: ModelConfig, what: string): void {
  const p = params(cfg, 5);
  const seqs = [
    [1, 5, 9, 2, 15, 0],
    [3, 3, 7, 11, 4, 8],
  ];
  const idx = tf.tensor2d(seqs, [2, 6], 'int32');
  const got = gptForward(p, idx, cfg, { training: false, seed: 0 }).logits.arraySync() as number[][][];
  seqs.forEach((s, b) => {
    const want = referenceLogits(p, cfg, s);
    for (let t = 0; t < s.length; t++)
      for (let v = 0; v < cfg.vocabSize; v++)
        assert.ok(
          Math.abs(got[b][t][v] - want[t][v]) <= 1e-4 * (1 + Math.abs(want[t][v])),
          `${what}: logits[${b}][${t}][${v}] ${got[b][t][v]} vs reference ${want[t][v]}`,
        );
  });
  disposeParams(p);
}

test('the plain-array reference agrees with the existing no-norm and pre-LN models', async () => {
  await initEngine({ backend: 'cpu' });
  compare(tiny(), 'no norm');
  compare(tiny({ norm: 'layernorm' }), 'pre-LN');
});

test('post-LN: x = LN(x + attn(x)); x = LN(x + mlp(x)) equals the reference, and differs from pre-LN', async () => {
  await initEngine({ backend: 'cpu' });
  const cfg = tiny({ norm: 'layernorm', normPlacement: 'post' });
  compare(cfg, 'post-LN');
  const p = params(cfg, 5);
  const idx = tf.tensor2d([[1, 5, 9, 2, 15, 0]], [1, 6], 'int32');
  const a = gptForward(p, idx, cfg, { training: false, seed: 0 }).logits.dataSync();
  const b = gptForward(p, idx, { ...cfg, normPlacement: 'pre' }, { training: false, seed: 0 }).logits.dataSync();
  assert.ok(Math.max(...a.map((v, i) => Math.abs(v - b[i]))) > 1e-2, 'post-LN must not compute pre-LN');
  disposeParams(p);
});

test('embedScale multiplies the input embeddings: equals the reference', async () => {
  await initEngine({ backend: 'cpu' });
  compare(tiny({ embedScale: 7.5 }), 'embedScale 7.5');
});

test('blockInputScale: every sublayer reads s·x (the residual stream is not scaled): equals the reference, differs from embedScale', async () => {
  await initEngine({ backend: 'cpu' });
  compare(tiny({ blockInputScale: 6 }), 'blockInputScale 6');
  const a = tiny({ blockInputScale: 6 });
  const b = tiny({ embedScale: 6 });
  const p = params(a, 5);
  const idx = tf.tensor2d([[1, 5, 9, 2, 15, 0]], [1, 6], 'int32');
  const la = gptForward(p, idx, a, { training: false, seed: 0 }).logits.dataSync();
  const lb = gptForward(p, idx, b, { training: false, seed: 0 }).logits.dataSync();
  assert.ok(Math.max(...la.map((v, i) => Math.abs(v - lb[i]))) > 1e-2);
  disposeParams(p);
  assert.throws(() => tiny({ blockInputScale: 2, norm: 'layernorm' }), /blockInputScale replaces a norm/);
});

test('baseline_fair: block inputs start at RMS ~1, as behind a pre-LN norm', async () => {
  await initEngine({ backend: 'cpu' });
  // at GPT-2 init, the first block's input wte[idx] + wpe has RMS 0.02·√2; baseline_fair's sublayers read it × 1/(0.02·√2)
  const cfg = applyInnovations(getScale('micro').model, ['baseline_fair']);
  assert.equal(cfg.blockInputScale, FAIR_EMBED_SCALE);
  assert.equal(cfg.embedScale, undefined);
  assert.equal(cfg.norm, 'none');
  const p = initParams(cfg, 3);
  const rms = (s: number) =>
    tf.tidy(() => {
      const x = tf.add(
        tf.gather(
          p.get('transformer.wte.weight')!,
          tf.tensor1d(
            [...Array(128).keys()].map((i) => i % 97),
            'int32',
          ),
        ),
        p.get('transformer.wpe.weight')!,
      );
      return Math.sqrt(tf.mean(tf.square(tf.mul(x, s))).dataSync()[0]);
    });
  assert.ok(Math.abs(rms(1) - 0.02 * Math.SQRT2) < 0.003, `unscaled RMS ${rms(1)}`);
  assert.ok(Math.abs(rms(FAIR_EMBED_SCALE) - 1) < 0.1, `scaled RMS ${rms(FAIR_EMBED_SCALE)}`);
  disposeParams(p);
});

/** Central finite differences on the entries with the largest analytic gradients. */
function gradCheck(cfg: ModelConfig, names: string[]) {
  const p = params(cfg, 13);
  const idx = tf.tensor2d(
    [
      [1, 5, 9, 2, 15, 0],
      [3, 3, 7, 11, 4, 8],
    ],
    [2, 6],
    'int32',
  );
  const tgt = tf.tensor2d(
    [
      [5, 9, 2, 15, 0, 1],
      [3, 7, 11, 4, 8, 2],
    ],
    [2, 6],
    'int32',
  );
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
      assert.ok(Math.abs(g[i]) > 1e-6, `${n}: gradient should not vanish`);
      assert.ok(Math.abs(num - g[i]) <= 0.03 * Math.abs(g[i]) + 2e-4, `${n}[${i}]: analytic ${g[i]} vs numeric ${num}`);
    }
  }
  disposeParams(p);
}

test('finite-difference gradient check: post-LN', async () => {
  await initEngine({ backend: 'cpu' });
  gradCheck(tiny({ nLayer: 1, norm: 'layernorm', normPlacement: 'post' }), [
    'transformer.wte.weight',
    'transformer.h.0.ln_1.weight',
    'transformer.h.0.ln_1.bias',
    'transformer.h.0.attn.c_attn.weight',
    'transformer.h.0.ln_2.weight',
    'transformer.h.0.mlp.c_fc.weight',
  ]);
});

test('finite-difference gradient check: embedScale', async () => {
  await initEngine({ backend: 'cpu' });
  gradCheck(tiny({ nLayer: 1, embedScale: 3 }), [
    'transformer.wte.weight',
    'transformer.wpe.weight',
    'transformer.h.0.attn.c_attn.weight',
  ]);
});

test('finite-difference gradient check: blockInputScale (fair-init baseline)', async () => {
  await initEngine({ backend: 'cpu' });
  gradCheck(tiny({ nLayer: 1, blockInputScale: 3 }), [
    'transformer.wte.weight',
    'transformer.wpe.weight',
    'transformer.h.0.attn.c_attn.weight',
    'transformer.h.0.mlp.c_fc.weight',
  ]);
});

test('config: post-LN without a norm is refused; absent new options leave configs (and run ids) as before', () => {
  assert.throws(
    () => tiny({ normPlacement: 'post' }),
    (e: unknown) => e instanceof ConfigError && /normPlacement.*needs a norm/.test(e.message),
  );
  assert.throws(() => tiny({ embedScale: 0 }), ConfigError);
  const base = getScale('micro').model;
  assert.equal('normPlacement' in base, false);
  assert.equal('embedScale' in base, false);
  assert.equal('blockInputScale' in base, false);
  assert.deepEqual(innovationChange('postln'), { norm: 'layernorm', normPlacement: 'post' });
  const modern = applyInnovations(base, ['modern']);
  assert.deepEqual([modern.norm, modern.positions, modern.mlp], ['rmsnorm', 'rope', 'swiglu']);
  for (const [id, field, want] of [
    ['modern_nonorm', 'norm', 'none'],
    ['modern_postnorm', 'normPlacement', 'post'],
    ['modern_learned', 'positions', 'learned'],
    ['modern_gelu', 'mlp', 'gelu'],
    ['modern_layernorm', 'norm', 'layernorm'],
  ] as const) {
    const c = parseModelConfig(applyInnovations(base, [id]));
    assert.equal(c[field], want, `${id}.${field}`);
    const others = (['norm', 'positions', 'mlp', 'normPlacement'] as const).filter((k) => k !== field);
    for (const k of others)
      assert.equal(c[k], k === 'normPlacement' ? undefined : modern[k], `${id} keeps modern's ${k}`);
  }
});
