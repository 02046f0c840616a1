/**
 * One training step of the project's real model, as src/train/trainer.ts runs it (gradAccum 1,
 * dropout as configured): gptLoss under tf.variableGrads, clipCoefficient(1.0) applied inside AdamW
 * (decay as each parameter declares it: decayedParams). Deterministic: parameters from initParams(seed), a fixed batch.
 */
import { tf } from '../src/engine/index.js';
import { gptLoss, dropoutSeed } from '../src/model/gpt.js';
import { initParams, decayedParams, disposeParams } from '../src/model/params.js';
import { AdamW, clipCoefficient } from '../src/train/adamw.js';
import type { BenchConfig } from './configs.js';
import { mulberry32 } from '../src/ceg/random.js';

/** Small deterministic generator (mulberry32, from src/ceg/random.ts). */
export const rng = mulberry32;

/** Fixed random batch of token ids (the same every step: speed does not depend on data). */
export function randomBatch(c: BenchConfig, seed: number): { idx: tf.Tensor2D; targets: tf.Tensor2D } {
  const next = rng(seed);
  const T = c.model.blockSize;
  const n = c.batchSize * T;
  const a = new Int32Array(n + 1);
  for (let i = 0; i <= n; i++) a[i] = Math.floor(next() * c.model.vocabSize);
  return {
    idx: tf.tensor2d(a.subarray(0, n), [c.batchSize, T], 'int32'),
    targets: tf.tensor2d(a.subarray(1, n + 1), [c.batchSize, T], 'int32'),
  };
}

/** One full training step of src/model/gpt.ts; returns the loss (read back synchronously). */
export function makeStep(c: BenchConfig, seed: number): { step: () => number; dispose: () => void } {
  const cfg = c.model;
  const params = initParams(cfg, seed);
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, decayed: decayedParams(cfg) });
  const varList = [...params.values()];
  const names = [...params.keys()];
  const nameOf = new Map(varList.map((v, i) => [v.name, names[i]]));
  const { idx, targets } = randomBatch(c, seed + 1);
  let n = 0;
  const step = () => {
    const s = n++;
    const { value, grads } = tf.variableGrads(
      () => gptLoss(params, idx, targets, cfg, { training: true, seed: dropoutSeed(seed, s) }).loss,
      varList,
    );
    const g = new Map<string, tf.Tensor>(Object.entries(grads).map(([k, t]) => [nameOf.get(k)!, t]));
    const clip = clipCoefficient(g, 1.0); // as src/train/step.ts: the coefficient applied inside AdamW
    opt.step(g, 6e-4, clip.coef ?? undefined);
    tf.dispose([clip.norm, ...(clip.coef ? [clip.coef] : [])]);
    for (const t of g.values()) t.dispose();
    const l = value.dataSync()[0];
    value.dispose();
    return l;
  };
  const dispose = () => {
    opt.dispose();
    disposeParams(params);
    idx.dispose();
    targets.dispose();
  };
  return { step, dispose };
}
