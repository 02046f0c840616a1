/**
 * The benchmark configurations: the project's real model config (src/model/gpt.ts) plus a batch size.
 *  A   = the `micro` scale of src/scales.ts exactly as it is (char vocab 128, T 128, 4 layers,
 *        4 heads, width 128, batch = micro's train.batchSize)
 *  A16 = A at batch 16 (optional: `--configs A,A16,B`)
 *  B   = GPT-2 vocabulary (50304): micro's model with 2 layers, T 64, batch 8 (ENGINE-NOTES' B)
 * All use the study's baseline block (micro's model): no per-block LayerNorm, final LayerNorm,
 * learned positions, plain masked-softmax attention, exact-GELU MLP (4x), biases, tied head.
 * FLOPs come from src/model/flops.ts (the study's own count: matmuls only, causal attention).
 */
import { getScale, GPT2_VOCAB } from '../src/scales.js';
import type { ModelConfig } from '../src/config.js';
import { stepFlops as modelStepFlops } from '../src/model/flops.js';

export const BENCH_CONFIG_NAMES = ['A', 'A16', 'B'] as const;
export type BenchConfigName = (typeof BENCH_CONFIG_NAMES)[number];

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

function make(name: BenchConfigName, model: ModelConfig, batchSize: number): BenchConfig {
  const { vocabSize, blockSize, nLayer, nHead, nEmbd } = model;
  return { name, model, batchSize, vocabSize, blockSize, nLayer, nHead, nEmbd };
}

export function benchConfigs(): Record<BenchConfigName, BenchConfig> {
  const micro = getScale('micro');
  const B = { ...micro.model, vocabSize: GPT2_VOCAB, nLayer: 2, blockSize: 64 };
  return {
    A: make('A', micro.model, micro.train.batchSize),
    A16: make('A16', micro.model, 16),
    B: make('B', B, 8),
  };
}

export function benchConfig(name: string): BenchConfig {
  const all = benchConfigs();
  if (!(BENCH_CONFIG_NAMES as readonly string[]).includes(name))
    throw new Error(`unknown bench config "${name}"; valid: ${BENCH_CONFIG_NAMES.join(', ')}`);
  return all[name as BenchConfigName];
}

/** FLOPs of one training step (forward + backward) by src/model/flops.ts. */
export function stepFlops(c: BenchConfig): number {
  return modelStepFlops(c.model, c.batchSize * c.model.blockSize).total;
}
