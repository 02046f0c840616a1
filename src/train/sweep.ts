/**
 * From names to runs: the run spec of (innovation, scale, seed, backend), and sweeps that
 * train every requested variant × seed, skipping runs the store already completed.
 */
import { getScale } from '../scales.js';
import { applyInnovations, getInnovation } from '../innovations.js';
import { parseModelConfig } from '../config.js';
import type { BackendName } from '../engine/index.js';
import type { RunSpec } from '../runs/index.js';

export function runSpec(innovation: string, scale: string, seed: number, backend: BackendName): RunSpec {
  getInnovation(innovation); // validates the id
  const s = getScale(scale);
  const model = parseModelConfig(applyInnovations(s.model, [innovation]));
  return { model, train: s.train, data: s.data, seed, backend, innovation, scale };
}
