/**
 * QK-norm against an independent reference: a one-layer GPT written with plain float64 loops
 * (no tf), QK-norm included (RMSNorm of each head's q and k over its channels, gains shared by
 * the heads, eps 1e-5, before RoPE). Checks the loss of the tf model, and its gradients for the
 * new gains and the projections feeding them against the reference's finite differences.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initEngine, tf } from '../src/engine/index.js';
import { parseModelConfig, type ModelConfig } from '../src/config.js';
import { applyInnovations } from '../src/innovations.js';
import { disposeParams, initParams, swigluHidden, type Params } from '../src/model/params.js';
import { gptLoss } from '../src/model/gpt.js';

const V = 16;
const T = 4;
const C = 8;
const H = 2;
const hs = C / H;

function config(): ModelConfig {
  const base = parseModelConfig({
    vocabSize: V,
    blockSize: T,
    nLayer: 1,
    nHead: H,
    nEmbd: C,
    nKvHead: H,
    dropout: 0,
    bias: true,
    norm: 'none',
    positions: 'rope',
    ropeBase: 10000,
    attnKernel: 'plain',
    sparse: { blockSize: 2, localBlocks: 1, selectedBlocks: 1 },
    mlp: 'swiglu',
    mlpHidden: 16,
    moe: { experts: 2, topK: 1, auxLossWeight: 0 },
  });
  return parseModelConfig(applyInnovations(base, ['qknorm']));
}

type W = Map<string, Float64Array>;

/** The reference model: plain loops in float64. Linear weights are [in, out] as in memory. */
function referenceLoss(w: W, idx: number[], tgt: number[], cfg: ModelConfig): number {
  const g = (n: string) => w.get(n)!;
  const lin = (x: number[], name: string, nin: number, nout: number) => {
    const W = g(`${name}.weight`);
    const b = w.get(`${name}.bias`);
    return Array.from({ length: nout }, (_, o) => {
      let s = b ? b[o] : 0;
      for (let i = 0; i < nin; i++) s += x[i] * W[i * nout + o];
      return s;
    });
  };
  const rms = (v: number[], gain: Float64Array) => {
    const ms = v.reduce((a, x) => a + x * x, 0) / v.length;
    return v.map((x, i) => (x / Math.sqrt(ms + 1e-5)) * gain[i]);
  };
  const rope = (v: number[], m: number) => {
    const half = hs / 2;
    const out = v.slice();
    for (let i = 0; i < half; i++) {
      const th = m * Math.pow(cfg.ropeBase, (-2 * i) / hs);
      out[i] = v[i] * Math.cos(th) - v[i + half] * Math.sin(th);
      out[i + half] = v[i + half] * Math.cos(th) + v[i] * Math.sin(th);
    }
    return out;
  };
  const wte = g('transformer.wte.weight');
  let x = idx.map((id) => Array.from(wte.subarray(id * C, id * C + C)));
  const p = 'transformer.h.0';
  // attention
  const qkv = x.map((r) => lin(r, `${p}.attn.c_attn`, C, 3 * C));
  const y = x.map(() => new Array<number>(C).fill(0));
  for (let h = 0; h < H; h++) {
    const q = qkv.map((r, t) => rope(rms(r.slice(h * hs, h * hs + hs), g(`${p}.attn.q_norm.weight`)), t));
    const k = qkv.map((r, t) => rope(rms(r.slice(C + h * hs, C + h * hs + hs), g(`${p}.attn.k_norm.weight`)), t));
    const v = qkv.map((r) => r.slice(2 * C + h * hs, 2 * C + h * hs + hs));
    for (let t = 0; t < T; t++) {
      const s = Array.from({ length: t + 1 }, (_, j) => q[t].reduce((a, qi, i) => a + qi * k[j][i], 0) / Math.sqrt(hs));
      const mx = Math.max(...s);
      const e = s.map((z) => Math.exp(z - mx));
      const Z = e.reduce((a, b) => a + b, 0);
      for (let j = 0; j <= t; j++) for (let i = 0; i < hs; i++) y[t][h * hs + i] += (e[j] / Z) * v[j][i];
    }
  }
  x = x.map((r, t) => lin(y[t], `${p}.attn.c_proj`, C, C).map((a, i) => a + r[i]));
  // SwiGLU MLP: c_proj(silu(c_fc2(x)) ⊙ c_fc(x))
  const Hs = swigluHidden(cfg);
  x = x.map((r) => {
    const up = lin(r, `${p}.mlp.c_fc`, C, Hs);
    const gate = lin(r, `${p}.mlp.c_fc2`, C, Hs);
    const hdn = gate.map((a, i) => (a / (1 + Math.exp(-a))) * up[i]);
    return lin(hdn, `${p}.mlp.c_proj`, Hs, C).map((a, i) => a + r[i]);
  });
  // final LayerNorm, tied head, mean cross-entropy
  let loss = 0;
  x.forEach((r, t) => {
    const mean = r.reduce((a, b) => a + b, 0) / C;
    const vr = r.reduce((a, b) => a + (b - mean) ** 2, 0) / C;
    const n = r.map(
      (a, i) => ((a - mean) / Math.sqrt(vr + 1e-5)) * g('transformer.ln_f.weight')[i] + g('transformer.ln_f.bias')[i],
    );
    const logits = Array.from({ length: V }, (_, o) => n.reduce((a, ni, i) => a + ni * wte[o * C + i], 0));
    const mx = Math.max(...logits);
    const lse = mx + Math.log(logits.reduce((a, z) => a + Math.exp(z - mx), 0));
    loss += lse - logits[tgt[t]];
  });
  return loss / T;
}

/** Seeded parameters, wider than GPT-2's init (so QK-norm's gains matter), gains around 1. */
function params(cfg: ModelConfig): Params {
  const p = initParams(cfg, 9);
  let k = 0;
  for (const [name, v] of p) {
    const gain = name.endsWith('_norm.weight') || name.endsWith('ln_f.weight');
    tf.tidy(() =>
      v.assign(
        tf.add(
          gain ? tf.onesLike(v) : tf.zerosLike(v),
          tf.randomNormal(v.shape, 0, gain ? 0.2 : 0.3, 'float32', 50 + k++),
        ),
      ),
    );
  }
  return p;
}

test('QK-norm: loss and gradients equal a plain-loop float64 reference', async () => {
  await initEngine({ backend: 'cpu' });
  const cfg = config();
  assert.equal(cfg.qkNorm, true);
  const p = params(cfg);
  assert.deepEqual(p.get('transformer.h.0.attn.q_norm.weight')!.shape, [hs]);
  const idx = [3, 7, 1, 12];
  const tgt = [7, 1, 12, 5];
  const w: W = new Map([...p].map(([n, v]) => [n, Float64Array.from(v.dataSync())]));

  const x = tf.tensor2d([idx], [1, T], 'int32');
  const y = tf.tensor2d([tgt], [1, T], 'int32');
  const names = [...p.keys()];
  const { value, grads } = tf.variableGrads(
    () => gptLoss(p, x, y, cfg, { training: false, seed: 0 }).loss,
    [...p.values()],
  );
  const ref = referenceLoss(w, idx, tgt, cfg);
  assert.ok(Math.abs(value.dataSync()[0] - ref) < 2e-5 * ref, `loss ${value.dataSync()[0]} vs reference ${ref}`);

  // the reference without QK-norm differs (so the check above sees the norm)
  const plain = referenceLoss(
    new Map([...w, ['transformer.h.0.attn.q_norm.weight', new Float64Array(hs).fill(1)]]),
    idx,
    tgt,
    cfg,
  );
  assert.ok(Math.abs(plain - ref) > 1e-3, 'the q gains change the loss');

  // gradients: every entry of the two gains, and of the q/k columns' bias of c_attn, by central differences in float64
  const check = (name: string, entries: number[]) => {
    const i = names.indexOf(name);
    const gt = grads[[...p.values()][i].name].dataSync();
    for (const e of entries) {
      const base = w.get(name)!;
      const at = (d: number) => {
        const c = Float64Array.from(base);
        c[e] += d;
        return referenceLoss(new Map([...w, [name, c]]), idx, tgt, cfg);
      };
      const fd = (at(1e-6) - at(-1e-6)) / 2e-6;
      assert.ok(Math.abs(gt[e] - fd) <= 1e-3 * Math.abs(fd) + 2e-5, `${name}[${e}]: tf ${gt[e]}, reference ${fd}`);
    }
  };
  const all = (n: number) => Array.from({ length: n }, (_, i) => i);
  check('transformer.h.0.attn.q_norm.weight', all(hs));
  check('transformer.h.0.attn.k_norm.weight', all(hs));
  check('transformer.h.0.attn.c_attn.bias', all(2 * C)); // the q and k columns
  check('transformer.h.0.attn.c_attn.weight', [0, 5, 17, 30, 41, 63, 70, 95]);
  tf.dispose([x, y, value, ...Object.values(grads)]);
  disposeParams(p);
});

test('QK-norm: the switch is absent from configs without it (run ids unchanged) and false is stored as absent', () => {
  const base = config();
  const { qkNorm: _on, ...off } = base;
  assert.ok(!('qkNorm' in parseModelConfig(off)));
  const explicitOff = parseModelConfig({ ...off, qkNorm: false });
  assert.equal(JSON.stringify(explicitOff), JSON.stringify(parseModelConfig(off)));
  assert.throws(() => parseModelConfig({ ...off, qkNorm: 'yes' }), /model\.qkNorm/);
});
