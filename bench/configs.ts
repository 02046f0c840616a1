/**
 * The two benchmark configurations and their FLOP count.
 *  A = the `micro` scale of src/scales.ts (char vocab 128, T 128, 4 layers, width 128, batch 16)
 *  B = GPT-2 vocabulary (50304), 2 layers, width 128, T 64, batch 8 (ENGINE-NOTES' B)
 * Both use the study's baseline block: no per-block LayerNorm, final LayerNorm, learned
 * positions, plain masked-softmax attention, GELU MLP (4x), biases, tied head.
 */
import { getScale, GPT2_VOCAB } from '../src/scales.js';

export interface BenchConfig {
  name: 'A' | 'B';
  vocabSize: number;
  blockSize: number;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  batchSize: number;
}

export function benchConfigs(): Record<'A' | 'B', BenchConfig> {
  const micro = getScale('micro');
  return {
    A: {
      name: 'A',
      vocabSize: micro.model.vocabSize,
      blockSize: micro.model.blockSize,
      nLayer: micro.model.nLayer,
      nHead: micro.model.nHead,
      nEmbd: micro.model.nEmbd,
      batchSize: micro.train.batchSize,
    },
    B: { name: 'B', vocabSize: GPT2_VOCAB, blockSize: 64, nLayer: 2, nHead: 4, nEmbd: 128, batchSize: 8 },
  };
}

/** Parameters that take part in matmuls (nanoGPT's count: all but the position table; wte counted once, as the tied head). */
export function matmulParams(c: BenchConfig): number {
  const C = c.nEmbd;
  const perBlock = C * 3 * C + 3 * C + C * C + C + C * 4 * C + 4 * C + 4 * C * C + C;
  return c.vocabSize * C + c.nLayer * perBlock + 2 * C;
}

/**
 * FLOPs of one training step (forward + backward) as nanoGPT's estimate_mfu:
 * 6·N per token for the weights plus 12·L·C·T per token for attention (q·kᵀ and att·v,
 * forward 4·L·C·T, backward twice that), with T the full context (the causal half is not discounted).
 */
export function stepFlops(c: BenchConfig): number {
  const tokens = c.batchSize * c.blockSize;
  return tokens * (6 * matmulParams(c) + 12 * c.nLayer * c.nEmbd * c.blockSize);
}
