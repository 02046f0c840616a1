/**
 * The benchmark configurations: the project's real model config (src/model/gpt.ts) plus a batch size.
 *  A   = the `micro` scale of src/scales.ts exactly as it is (char vocab 128, T 128, 4 layers,
 *        4 heads, width 128, batch = micro's train.batchSize)
 *  A16 = A at batch 16 (optional: `--configs A,A16,B`)
 *  B   = GPT-2 vocabulary (50304): micro's model with 2 layers, T 64, batch 8 (ENGINE-NOTES' B)
 *  the rungs of the CPU study plan (`cpu` in src/plans.ts, issue #13): micro's model block with
 *        the rung's layers, heads, width (MLP 4x) and batch, at the plan's context and vocabulary
 *        (as rungModel() in src/train/study.ts builds the baseline).
 * All use the study's baseline block (micro's model): no per-block LayerNorm, final LayerNorm,
 * learned positions, plain masked-softmax attention, exact-GELU MLP (4x), biases, tied head.
 * FLOPs come from src/model/flops.ts (the study's own count: matmuls only, causal attention).
 */
import { getPlan } from '../src/plans.js';
import { getScale, GPT2_VOCAB } from '../src/scales.js';
import type { ModelConfig } from '../src/config.js';
import { stepFlops as modelStepFlops } from '../src/model/flops.js';
import { paramCount } from '../src/model/params.js';

export const BENCH_CONFIG_NAMES = ['A', 'A16', 'B'] as const;
export type BenchConfigName = string;

export interface BenchConfig {
  name: BenchConfigName;
  model: ModelConfig;
  batchSize: number;
  /** flat copy for the PyTorch reference (bench/torch_step.py) */
  vocabSize: number;
  blockSize: number;
  nLayer: number;
  nHead: number;
  nEmbd: number;
}

/** A rung as the study plan states it (src/plans.ts PlanRung). */
export interface BenchRung {
  name: string;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  batchSize: number;
}

/** The `cpu` study plan's context, vocabulary and rungs (src/plans.ts), with where they came from. */
export interface PlanRungs {
  source: string;
  blockSize: number;
  vocabSize: number;
  rungs: BenchRung[];
}

async function loadCpuPlan(): Promise<PlanRungs> {
  const p = getPlan('cpu');
  return { source: `src/plans.ts, plan "cpu"`, blockSize: p.blockSize, vocabSize: p.vocabSize, rungs: p.rungs };
}

export const cpuPlan: PlanRungs = await loadCpuPlan();

function make(name: BenchConfigName, model: ModelConfig, batchSize: number): BenchConfig {
  const { vocabSize, blockSize, nLayer, nHead, nEmbd } = model;
  return { name, model, batchSize, vocabSize, blockSize, nLayer, nHead, nEmbd };
}

export function benchConfigs(): Record<BenchConfigName, BenchConfig> {
  const micro = getScale('micro');
  const B = { ...micro.model, vocabSize: GPT2_VOCAB, nLayer: 2, blockSize: 64 };
  const out: Record<BenchConfigName, BenchConfig> = {
    A: make('A', micro.model, micro.train.batchSize),
    A16: make('A16', micro.model, 16),
    B: make('B', B, 8),
  };
  for (const r of cpuPlan.rungs) {
    const m = {
      ...micro.model,
      vocabSize: cpuPlan.vocabSize,
      blockSize: cpuPlan.blockSize,
      nLayer: r.nLayer,
      nHead: r.nHead,
      nKvHead: r.nHead,
      nEmbd: r.nEmbd,
      mlpHidden: 4 * r.nEmbd,
    };
    out[r.name] = make(r.name, m, r.batchSize);
  }
  return out;
}

/** The rung names of the CPU study plan, smallest first (as the plan lists them). */
export function rungNames(): string[] {
  return cpuPlan.rungs.map((r) => r.name);
}

export function benchConfig(name: string): BenchConfig {
  const all = benchConfigs();
  if (!(name in all)) throw new Error(`unknown bench config "${name}"; valid: ${Object.keys(all).join(', ')}`);
  return all[name];
}

/** FLOPs of one training step (forward + backward) by src/model/flops.ts. */
export function stepFlops(c: BenchConfig): number {
  return modelStepFlops(c.model, c.batchSize * c.model.blockSize).total;
}

/** Parameters of the config's model (src/model/params.ts). */
export function benchParams(c: BenchConfig): number {
  return paramCount(c.model);
}
