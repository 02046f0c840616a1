/**
 * Every innovation of the registry (src/innovations.ts; no list of ids here, so a new entry is
 * picked up without touching this file), at a tiny size:
 *  - its FLOP count (src/model/flops.ts) differs from the baseline's, or the entry declares
 *    `flopsUnchanged` (and then it must be equal);
 *  - every parameter's weight-decay group is declared where it is created, by nanoGPT's rule
 *    (matrices and embeddings decay, gains and biases do not);
 *  - its gradients match central finite differences, per parameter tensor, on cpu and wasm;
 *  - it trains a few AdamW steps (the trainer's own step) on a fixed batch on each CI backend
 *    (cpu, wasm; webgpu when an adapter exists, e.g. lavapipe), the loss falling, with the
 *    same initial loss on every backend.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { initEngine, tf, type BackendName } from '../src/engine/index.js';
import { INNOVATIONS, applyInnovations } from '../src/innovations.js';
import { parseModelConfig, parseTrainConfig, type ModelConfig } from '../src/config.js';
import { getScale } from '../src/scales.js';
import { decayedParams, disposeParams, initParams, paramSpecs, type Params } from '../src/model/params.js';
import { gptLoss } from '../src/model/gpt.js';
import { stepFlops } from '../src/model/flops.js';
import { AdamW } from '../src/train/adamw.js';
import { stepState, trainStep } from '../src/train/step.js';

const V = 64;
const T = 16;
const B = 2;

/** The smoke scale shrunk to one layer of width 16, 4 heads of 4, context 16 (sparse kernels select: 4 blocks of 4). */
function tinyModel(id: string): ModelConfig {
  const s = getScale('smoke').model;
  const base = parseModelConfig({
    ...s,
    vocabSize: V,
    blockSize: T,
    nLayer: 1,
    nHead: 4,
    nKvHead: 4,
    nEmbd: 16,
    mlpHidden: 64,
    sparse: { blockSize: 4, localBlocks: 1, selectedBlocks: 1 },
    nsa: { heads: 4, kvHeads: 1, blockSize: 4, blockCounts: 2, windowSize: 0 },
  });
  return parseModelConfig(applyInnovations(base, [id]));
}

/** Deterministic token ids (LCG), independent of tfjs. */
function tokens(n: number, seed: number): Int32Array {
  let s = seed >>> 0;
  return Int32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % V;
  });
}
const X = tokens(B * T, 11);
const Y = tokens(B * T, 12);

test('registry: ids are unique and every innovation builds a valid tiny model', () => {
  const ids = INNOVATIONS.map((i) => i.id);
  assert.equal(new Set(ids).size, ids.length, `duplicate ids in ${ids.join(', ')}`);
  for (const inn of INNOVATIONS) assert.doesNotThrow(() => tinyModel(inn.id), inn.id);
});

test('FLOPs: every innovation changes the count or declares flopsUnchanged (and then keeps it)', () => {
  const base = stepFlops(tinyModel('baseline'), B * T).total;
  for (const inn of INNOVATIONS) {
    const f = stepFlops(tinyModel(inn.id), B * T).total;
    if (inn.flopsUnchanged)
      assert.equal(f, base, `${inn.id} declares flopsUnchanged but counts ${f} FLOPs vs the baseline's ${base}`);
    else
      assert.notEqual(
        f,
        base,
        `${inn.id} has the baseline's FLOP count (${base}): count its work in src/model/flops.ts or declare flopsUnchanged`,
      );
  }
});

test('weight decay: every parameter declares its group where it is created (matrices decay, gains and biases do not)', () => {
  for (const inn of INNOVATIONS) {
    const cfg = tinyModel(inn.id);
    const decayed = decayedParams(cfg);
    for (const p of paramSpecs(cfg)) {
      assert.equal(typeof p.decay, 'boolean', `${inn.id}: ${p.name} declares no decay group`);
      assert.equal(
        decayed(p.name),
        p.shape.length >= 2,
        `${inn.id}: ${p.name} [${p.shape}] ${p.decay ? 'is' : 'is not'} decayed`,
      );
    }
  }
});

// ------------------------------------------------------------------ finite differences

export interface GradCheck {
  name: string;
  /** the analytic directional derivative g·d */
  analytic: number;
  /** (L(θ + h·d) − L(θ − h·d)) / 2h */
  numeric: number;
  ok: boolean;
}

/** A unit direction over one tensor: half along its gradient (signal), half random (catches errors orthogonal to it). */
function direction(g: tf.Tensor, seed: number): tf.Tensor {
  return tf.tidy(() => {
    const r = tf.randomNormal(g.shape, 0, 1, 'float32', seed);
    const unit = (t: tf.Tensor) => tf.div(t, tf.maximum(tf.norm(t), 1e-30));
    const gn = tf.norm(g).dataSync()[0];
    const d = gn > 0 ? tf.add(unit(g), unit(r)) : r;
    return unit(d);
  });
}

/**
 * Central differences of `loss` along one random-plus-gradient direction per variable, against
 * the gradient tf computes. float32: the step h0 is chosen so that the loss moves by ~4e-3
 * (rounding error of the difference ~1e-3 relative), capped at 0.05; tolerance 2% plus the
 * rounding error of the difference. Innovations that select discretely (MoE routing, sparse
 * block selection) are piecewise smooth: a step can cross a selection boundary, so smaller
 * steps h0/4 ... h0/256 are tried too and the check passes when one of them agrees. The
 * rounding term grows as h shrinks but stays under ~3% of |g·d| (h0 uncapped) at h0/256, so a
 * gradient 6% off fails at every step (the self-test below: 5%).
 */
export function checkGradients(loss: () => tf.Scalar, vars: Map<string, tf.Variable>, seed: number): GradCheck[] {
  const list = [...vars.values()];
  const names = [...vars.keys()];
  const { grads, value } = tf.variableGrads(loss, list);
  const L0 = Math.abs(value.dataSync()[0]);
  value.dispose();
  const noise = 2.4e-7 * Math.max(1, L0); // two float32 ulps of the loss: the rounding error of L(θ+) − L(θ−)
  const out: GradCheck[] = [];
  list.forEach((v, i) => {
    const g = grads[v.name] ?? tf.zerosLike(v);
    const d = direction(g, seed + i);
    const analytic = tf.tidy(() => tf.sum(tf.mul(g, d)).dataSync()[0]);
    const h0 = Math.min(0.05, 4e-3 / Math.max(Math.abs(analytic), 1e-12));
    const theta = tf.clone(v);
    const at = (s: number, h: number) => {
      tf.tidy(() => v.assign(tf.add(theta, tf.mul(d, s * h))));
      return tf.tidy(() => loss().dataSync()[0]);
    };
    let best: GradCheck | undefined;
    for (const h of [h0, h0 / 4, h0 / 16, h0 / 64, h0 / 256]) {
      const numeric = (at(1, h) - at(-1, h)) / (2 * h);
      const tol = 0.02 * Math.abs(analytic) + noise / (2 * h);
      const c = { name: names[i], analytic, numeric, ok: Math.abs(numeric - analytic) <= tol };
      if (!best || c.ok || Math.abs(numeric - analytic) < Math.abs(best.numeric - analytic)) best = c;
      if (c.ok) break;
    }
    v.assign(theta);
    tf.dispose([theta, d, g]);
    out.push(best!);
  });
  return out;
}

/** Random parameters (seeded) around GPT-2's init, larger so every gradient is measurable in float32. */
function perturb(params: Params, seed: number): void {
  let k = 0;
  for (const [name, v] of params) {
    const ones = name.endsWith('.weight') && v.rank === 1; // norm gains
    tf.tidy(() =>
      v.assign(
        tf.add(
          ones ? tf.onesLike(v) : tf.mul(v, 0),
          tf.randomNormal(v.shape, 0, ones ? 0.1 : 0.08, 'float32', seed + k++),
        ),
      ),
    );
  }
}

test('the gradient check fails on a wrong gradient (self-test)', async () => {
  await initEngine({ backend: 'cpu' });
  const w = tf.variable(tf.tensor1d([0.3, -0.7, 1.1]), true);
  // value Σx², gradient 2x (right) or 2.1x (5% off)
  const withGrad = (k: number) =>
    tf.customGrad(((x: tf.Tensor) => ({
      value: tf.sum(tf.square(x)) as tf.Scalar,
      gradFunc: (dy: tf.Tensor) => tf.mul(dy, tf.mul(x, k)),
    })) as Parameters<typeof tf.customGrad>[0]);
  const right = withGrad(2);
  const wrong = withGrad(2.1);
  const vars = new Map([['w', w]]);
  assert.ok(checkGradients(() => right(w) as tf.Scalar, vars, 1)[0].ok);
  assert.ok(!checkGradients(() => wrong(w) as tf.Scalar, vars, 1)[0].ok, 'a 5% error in a gradient must be caught');
  w.dispose();
});

for (const backend of ['cpu', 'wasm'] as const) {
  test(`gradients against finite differences, every innovation, ${backend}`, async () => {
    await initEngine({ backend });
    const failures: string[] = [];
    for (const inn of INNOVATIONS) {
      const cfg = tinyModel(inn.id);
      const params = initParams(cfg, 5);
      perturb(params, 100);
      const x = tf.tensor2d(X, [B, T], 'int32');
      const y = tf.tensor2d(Y, [B, T], 'int32');
      const loss = () =>
        tf.tidy(() => {
          const r = gptLoss(params, x, y, cfg, { training: false, seed: 1 });
          return r.loss;
        });
      for (const c of checkGradients(loss, params, 1000)) {
        if (!c.ok)
          failures.push(
            `${inn.id} ${c.name}: analytic ${c.analytic.toExponential(4)}, finite differences ${c.numeric.toExponential(4)}`,
          );
      }
      tf.dispose([x, y]);
      disposeParams(params);
    }
    assert.deepEqual(failures, [], failures.join('\n'));
  });
}

// ------------------------------------------------------------------ training on each backend

const initialLoss = new Map<string, number>();

async function trainEvery(backend: BackendName): Promise<void> {
  const tc = parseTrainConfig({ ...getScale('smoke').train, batchSize: B, gradAccum: 1, gradClip: 1 });
  for (const inn of INNOVATIONS) {
    const cfg = tinyModel(inn.id);
    const params = initParams(cfg, 3);
    const opt = new AdamW(params, {
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      weightDecay: 0.1,
      decayed: decayedParams(cfg),
    });
    const st = stepState(params, opt, cfg, tc);
    const losses: number[] = [];
    for (let k = 0; k < 6; k++)
      losses.push(
        await trainStep(
          st,
          1e-2,
          () => ({ x: X, y: Y }),
          () => k + 1,
        ),
      );
    disposeParams(params);
    opt.dispose();
    assert.ok(losses.every(Number.isFinite), `${inn.id} on ${backend}: losses ${losses}`);
    assert.ok(
      losses[5] < losses[0] - 0.05,
      `${inn.id} on ${backend}: the loss did not fall on a fixed batch (${losses.map((l) => l.toFixed(4)).join(' ')})`,
    );
    const ref = initialLoss.get(inn.id);
    if (ref === undefined) initialLoss.set(inn.id, losses[0]);
    else
      assert.ok(
        Math.abs(losses[0] - ref) <= 1e-4 * ref,
        `${inn.id}: initial loss ${losses[0]} on ${backend} vs ${ref} on cpu`,
      );
  }
}

test('every innovation trains a few steps, cpu', async () => {
  await initEngine({ backend: 'cpu' });
  await trainEvery('cpu');
});

test('every innovation trains a few steps, wasm', async () => {
  await initEngine({ backend: 'wasm' });
  await trainEvery('wasm');
});

let webgpuStarted = false;
test('every innovation trains a few steps, webgpu (when an adapter exists: scripts/lavapipe.sh)', async (t) => {
  try {
    await initEngine({ backend: 'webgpu' });
    webgpuStarted = true;
  } catch (e) {
    return t.skip(`no webgpu adapter here (${(e as Error).message.slice(0, 100)}...)`);
  }
  await trainEvery('webgpu');
});

after(async () => {
  if (webgpuStarted) (await import('../src/engine/webgpu.js')).shutdownWebGPU();
});
