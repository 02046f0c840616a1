/**
 * nanoGPT's learning-rate schedule: linear warmup, cosine decay to a floor, then the floor.
 *   it < warmup:      lr · (it + 1) / (warmup + 1)
 *   it > decaySteps:  minLr
 *   otherwise:        minLr + ½(1 + cos(π · (it − warmup)/(decaySteps − warmup))) · (lr − minLr)
 */
import type { TrainConfig } from '../config.js';

export function learningRate(step: number, t: Pick<TrainConfig, 'lr' | 'minLr' | 'warmupSteps' | 'decaySteps'>): number {
  if (step < t.warmupSteps) return (t.lr * (step + 1)) / (t.warmupSteps + 1);
  if (step > t.decaySteps) return t.minLr;
  const span = Math.max(1, t.decaySteps - t.warmupSteps);
  const ratio = (step - t.warmupSteps) / span;
  const coeff = 0.5 * (1 + Math.cos(Math.PI * ratio));
  return t.minLr + coeff * (t.lr - t.minLr);
}
