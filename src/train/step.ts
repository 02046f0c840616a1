/**
 * One optimizer step, as the trainer runs it: gradient accumulation over micro-batches
 * (loss / gradAccum each), global-norm clipping, AdamW. Shared by the trainer and by the
 * step-time measurement (src/train/timing.ts) so both time the same work.
 */
import { tf } from '../engine/index.js';
import type { ModelConfig, TrainConfig } from '../config.js';
import { gptLoss } from '../model/gpt.js';
import { type AdamW, clipCoefficient } from './adamw.js';

export interface StepState {
  params: Map<string, tf.Variable>;
  opt: AdamW;
  cfg: ModelConfig;
  tc: TrainConfig;
  /** the parameters as tf.variableGrads takes them, and its result keys mapped back to names */
  varList: tf.Variable[];
  nameOf: Map<string, string>;
}

/** The state trainStep needs, with the per-run lookups computed once rather than every step. */
export function stepState(params: Map<string, tf.Variable>, opt: AdamW, cfg: ModelConfig, tc: TrainConfig): StepState {
  const names = [...params.keys()];
  const varList = [...params.values()];
  return { params, opt, cfg, tc, varList, nameOf: new Map(varList.map((v, i) => [v.name, names[i]])) };
}

/**
 * Run one step. `batch(micro)` gives micro-batch `micro`'s tokens ([B·T] inputs and targets),
 * `seed(micro)` its dropout seed. Returns the step's mean cross-entropy (MoE's auxiliary loss is
 * trained on, not reported), read asynchronously once, which also waits for the step's work.
 */
export async function trainStep(
  s: StepState,
  lr: number,
  batch: (micro: number) => { x: Int32Array; y: Int32Array },
  seed: (micro: number) => number,
): Promise<number> {
  const { params, opt, cfg, tc, varList, nameOf } = s;
  const grads = new Map<string, tf.Tensor>();
  const ceParts: tf.Scalar[] = [];
  for (let micro = 0; micro < tc.gradAccum; micro++) {
    const b = batch(micro);
    let ce: tf.Scalar | null = null;
    const { value, grads: g } = tf.tidy(() => {
      const x = tf.tensor2d(b.x, [tc.batchSize, cfg.blockSize], 'int32');
      const y = tf.tensor2d(b.y, [tc.batchSize, cfg.blockSize], 'int32');
      return tf.variableGrads(() => {
        const out = gptLoss(params, x, y, cfg, { training: true, seed: seed(micro) });
        ce = tf.keep(out.ce);
        return (tc.gradAccum > 1 ? tf.div(out.loss, tc.gradAccum) : out.loss) as tf.Scalar;
      }, varList);
    });
    ceParts.push((ce as tf.Scalar | null)!);
    value.dispose();
    for (const [vname, gt] of Object.entries(g)) {
      const name = nameOf.get(vname)!;
      const prev = grads.get(name);
      if (prev) {
        grads.set(name, tf.add(prev, gt));
        prev.dispose();
        gt.dispose();
      } else grads.set(name, gt);
    }
  }
  // An MoE expert that received no token in this step has no gradient on the gather path;
  // it gets a zero gradient (as the dense path computes), so AdamW decays its moments and
  // applies weight decay exactly as for any unused weight. Any other missing gradient is a bug.
  for (const [name, p] of params) {
    if (grads.has(name)) continue;
    if (!name.includes('.mlp.experts.')) throw new Error(`no gradient for parameter "${name}"`);
    grads.set(name, tf.zerosLike(p));
  }
  // clipping's coefficient is applied inside the fused AdamW pass (no Multiply per gradient)
  const clip = clipCoefficient(grads, tc.gradClip);
  opt.step(grads, lr, clip.coef ?? undefined);
  tf.dispose([clip.norm, ...(clip.coef ? [clip.coef] : [])]);
  for (const g of grads.values()) g.dispose();
  const ceSum = tf.addN(ceParts);
  const loss = (await ceSum.data())[0] / tc.gradAccum;
  tf.dispose([ceSum, ...ceParts]);
  return loss;
}
