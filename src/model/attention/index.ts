/**
 * Attention kernels behind one call. Every kernel computes exact causal attention (the
 * sparse one under its block mask) from already-projected, already-rotated heads:
 *   q: [B, H, T, hs]   k, v: [B, Hkv, T, hs]  (Hkv divides H: MHA, GQA, MQA)  ->  [B, H, T, hs]
 */
import { tf } from '../../engine/index.js';
import { fusedAttentionFor } from '../../engine/wgsl/flash-attention.js';
import type { ModelConfig, SparseConfig, SPARSE_SELECTS } from '../../config.js';

type SparseSelect = (typeof SPARSE_SELECTS)[number];
import { plainAttention } from './plain.js';
import { fusedAttention } from './fused.js';
import { sparseAttention } from './sparse.js';

export { sparseMask } from './sparse.js';
export { nsaSelection } from './nsa.js';

export interface AttendOptions {
  /** attention-probability dropout rate, applied only when training */
  dropout: number;
  training: boolean;
  /** dropout seed for this call (the caller derives it from run seed, step and layer) */
  seed: number;
  /** block-sparse pattern, used by the 'sparse' kernel */
  sparse: SparseConfig;
  /** tokens per query/key block of the 'fused' kernel (default DEFAULT_FUSED_BLOCK = 64) */
  fusedBlock?: number;
  /** where the 'sparse' kernel selects its blocks (model.sparseSelect; default 'auto') */
  sparseSelect?: SparseSelect;
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
    case 'fused': {
      // on webgpu: the WGSL FlashAttention kernel (tiles in workgroup memory); it has no
      // attention dropout, so training with dropout uses the tf-ops fused kernel there too
      const wgsl = opts.training && opts.dropout > 0 ? null : fusedAttentionFor(tf.getBackend());
      return wgsl ? wgsl(q, k, v) : fusedAttention(q, k, v, opts);
    }
    case 'sparse':
      return sparseAttention(q, k, v, opts);
    case 'nsa':
      throw new Error(
        "attnKernel 'nsa' has its own projections and gates: call nsaAttention (src/model/attention/nsa.ts) through the model",
      );
    default:
      throw new Error(`unknown attention kernel "${String(kernel)}"; valid: plain, fused, sparse`);
  }
}
