/**
 * nanoGPT's learning-rate schedule: linear warmup, cosine decay to a floor, then the floor.
 *   it < warmup:      lr · (it + 1) / (warmup + 1)
 *   it > decaySteps:  minLr
 *   otherwise:        minLr + ½(1 + cos(π · (it − warmup)/(decaySteps − warmup))) · (lr − minLr)
 * Or, with schedule 'wsd', warmup–stable–decay (Hägele et al. 2024), see wsdRate.
 */
import type { TrainConfig } from '../config.js';

export function learningRate(
  step: number,
  t: Pick<TrainConfig, 'lr' | 'minLr' | 'warmupSteps' | 'decaySteps'> &
    Partial<Pick<TrainConfig, 'schedule' | 'steps' | 'cooldownSteps'>>,
): number {
  if (t.schedule === 'wsd') {
    if (t.steps === undefined) throw new Error('the wsd schedule needs train.steps');
    return wsdRate(step, { ...t, steps: t.steps });
  }
  if (step < t.warmupSteps) return (t.lr * (step + 1)) / (t.warmupSteps + 1);
  if (step > t.decaySteps) return t.minLr;
  const span = Math.max(1, t.decaySteps - t.warmupSteps);
  const ratio = (step - t.warmupSteps) / span;
  const coeff = 0.5 * (1 + Math.cos(Math.PI * ratio));
  return t.minLr + coeff * (t.lr - t.minLr);
}

/**
 * Warmup–stable–decay: the same linear warmup, then constant lr, then over the last
 * `cooldownSteps` steps a linear cooldown that reaches minLr at step `steps`:
 *   it < warmup:                 lr · (it + 1) / (warmup + 1)
 *   it < steps − cooldown:       lr
 *   otherwise:                   lr + (minLr − lr) · (it − (steps − cooldown)) / cooldown
 * A cooldown fork of a trunk (constant lr) that starts at step s has steps = s + cooldown and
 * the same rate as the trunk at every step before s.
 */
export function wsdRate(
  step: number,
  t: Pick<TrainConfig, 'lr' | 'minLr' | 'warmupSteps' | 'steps'> & Partial<Pick<TrainConfig, 'cooldownSteps'>>,
): number {
  if (step < t.warmupSteps) return (t.lr * (step + 1)) / (t.warmupSteps + 1);
  const cool = t.cooldownSteps ?? 0;
  const start = t.steps - cool;
  if (cool === 0 || step < start) return t.lr;
  return t.lr + ((t.minLr - t.lr) * Math.min(step - start, cool)) / cool;
}
