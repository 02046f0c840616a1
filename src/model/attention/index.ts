/**
 * Attention kernels behind one call. Every kernel computes exact causal attention (the
 * sparse one under its block mask) from already-projected, already-rotated heads:
 *   q: [B, H, T, hs]   k, v: [B, Hkv, T, hs]  (Hkv divides H: MHA, GQA, MQA)  ->  [B, H, T, hs]
 */
import type { tf } from '../../engine/index.js';
import type { ModelConfig, SparseConfig } from '../../config.js';
import { plainAttention } from './plain.js';

export interface AttendOptions {
  /** attention-probability dropout rate, applied only when training */
  dropout: number;
  training: boolean;
  /** dropout seed for this call (the caller derives it from run seed, step and layer) */
  seed: number;
  /** block-sparse pattern, used by the 'sparse' kernel */
  sparse: SparseConfig;
}

export function attend(
  kernel: ModelConfig['attnKernel'],
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  opts: AttendOptions,
): tf.Tensor4D {
  switch (kernel) {
    case 'plain':
      return plainAttention(q, k, v, opts);
    case 'fused':
    case 'sparse':
      throw new Error(`attention kernel "${kernel}" is not implemented yet`);
  }
}
