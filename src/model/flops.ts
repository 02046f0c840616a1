/**
 * Model FLOPs per optimizer step, counted from the variant's actual matmul shapes.
 *
 * Rules (see docs/model.md):
 *  - A matmul [m, k]·[k, n] costs 2·m·n·k FLOPs. Only matmuls are counted: norms, softmax,
 *    GELU, RoPE rotations, dropout, residual adds, embedding lookups and the loss are not.
 *  - Sequences are full length T = cfg.blockSize, so tokens / T sequences per step.
 *  - Attention (scores q·kᵀ and the weighted sum att·v) is counted causally: per head,
 *    T(T+1)/2 query-key pairs, 2·hs FLOPs each for scores and again for the sum. This is the
 *    algorithmically needed work and the same for the 'plain' and 'fused' kernels (the fused
 *    kernel's gain is wall-clock and memory, not FLOPs).
 *  - Sparse attention: per query block b (0-based, block size S), the key blocks used are
 *    u_b = min(b + 1, localBlocks + selectedBlocks): the diagonal block counts S(S+1)/2 pairs,
 *    each other used block S² pairs. With u_b = b + 1 this equals the dense causal count.
 *    The block-importance scoring that chooses the blocks is not counted.
 *  - NSA (attnKernel 'nsa', the paper's sparse attention; H = nsa.heads query heads of
 *    D = C/H, Hkv = nsa.kvHeads, blocks of BS): projections q C→H·D, k and v C→Hkv·D (qkv),
 *    g_proj C→3H (attn.gates), o_proj H·D→C (attn.proj). Per query head and query t, 2·D
 *    FLOPs per key for the scores and again for the weighted sum, over the keys of each
 *    branch (nsaKeys): compressed, floor((t+1)/BS) complete blocks; selected, the tokens j <= t
 *    of min(blockCounts, t//BS + 1) blocks (the own block partly, the others whole); sliding,
 *    min(windowSize, t + 1) tokens. Mean pooling, gates, the top-k ranking and the group sum
 *    of the compressed scores are not matmuls and are not counted. This is the algorithm's
 *    work (the paper's kernel's); our tf implementation computes the selected branch densely
 *    under a mask (src/model/attention/nsa.ts).
 *  - MQA/GQA shrink the K/V part of c_attn to 2·nKvHead·hs outputs; attention itself is per query head.
 *  - MoE: router C·E plus topK active experts per token (the implementation computes only
 *    the chosen experts' work as well).
 *  - Backward = 2 × forward, so total = 3 × forward.
 */
import type { ModelConfig } from '../config.js';
import { nsaOf, swigluHidden } from './params.js';

export interface StepFlops {
  forward: number;
  /** forward + backward = 3·forward */
  total: number;
  /** forward FLOPs per part, summed over layers: qkv, attention.scores, attention.values, attn.proj, mlp, (mlp.router), lm_head */
  breakdown: Record<string, number>;
}

/** Causal query-key pairs of one head over one sequence, for the configured kernel. */
export function attentionPairs(cfg: ModelConfig): number {
  const T = cfg.blockSize;
  if (cfg.attnKernel !== 'sparse') return (T * (T + 1)) / 2;
  const S = cfg.sparse.blockSize;
  const nb = Math.ceil(T / S);
  const cap = cfg.sparse.localBlocks + cfg.sparse.selectedBlocks;
  let pairs = 0;
  for (let b = 0; b < nb; b++) {
    const used = Math.min(b + 1, cap);
    pairs += (S * (S + 1)) / 2 + (used - 1) * S * S;
  }
  return pairs;
}

/** NSA keys per query head over one sequence of T = cfg.blockSize tokens, per branch (summed over queries t). */
export function nsaKeys(cfg: ModelConfig): { compressed: number; selected: number; sliding: number } {
  const n = nsaOf(cfg);
  const T = cfg.blockSize;
  const BS = n.blockSize;
  let compressed = 0;
  let selected = 0;
  let sliding = 0;
  for (let t = 0; t < T; t++) {
    compressed += Math.floor((t + 1) / BS);
    const blocks = Math.min(n.blockCounts, Math.floor(t / BS) + 1);
    selected += (blocks - 1) * BS + (t % BS) + 1;
    sliding += Math.min(n.windowSize, t + 1);
  }
  return { compressed, selected, sliding };
}

/** FLOPs of one optimizer step that processes `tokens` tokens (B·T·gradAccum). */
export function stepFlops(cfg: ModelConfig, tokens: number): StepFlops {
  if (!(tokens > 0) || tokens % cfg.blockSize !== 0)
    throw new Error(`tokens ${tokens} must be a positive multiple of blockSize ${cfg.blockSize}`);
  const N = tokens;
  const L = cfg.nLayer;
  const C = cfg.nEmbd;
  const hs = C / cfg.nHead;
  const seqs = N / cfg.blockSize;
  const mm = (m: number, k: number, n: number) => 2 * m * k * n;

  const b: Record<string, number> = {};
  if (cfg.attnKernel === 'nsa') {
    const n = nsaOf(cfg);
    const D = C / n.heads;
    const keys = nsaKeys(cfg);
    b.qkv = L * mm(N, C, n.heads * D + 2 * n.kvHeads * D);
    b['attn.gates'] = L * mm(N, C, 3 * n.heads);
    // scores (2·D per key) + weighted sum (2·D per key), every query head of every sequence
    const branch = (k: number) => L * seqs * n.heads * 4 * D * k;
    b['attention.compressed'] = branch(keys.compressed);
    b['attention.selected'] = branch(keys.selected);
    if (n.windowSize > 0) b['attention.sliding'] = branch(keys.sliding);
    b['attn.proj'] = L * mm(N, n.heads * D, C);
  } else {
    b.qkv = L * mm(N, C, C + 2 * cfg.nKvHead * hs);
    const pairsAll = seqs * cfg.nHead * attentionPairs(cfg);
    b['attention.scores'] = L * 2 * hs * pairsAll;
    b['attention.values'] = L * 2 * hs * pairsAll;
    b['attn.proj'] = L * mm(N, C, C);
  }
  switch (cfg.mlp) {
    case 'gelu':
      b.mlp = L * 2 * mm(N, C, cfg.mlpHidden);
      break;
    case 'swiglu':
      b.mlp = L * 3 * mm(N, C, swigluHidden(cfg));
      break;
    case 'moe':
      b['mlp.router'] = L * mm(N, C, cfg.moe.experts);
      b.mlp = L * cfg.moe.topK * 2 * mm(N, C, cfg.mlpHidden);
      break;
  }
  b.lm_head = mm(N, C, cfg.vocabSize);
  const forward = Object.values(b).reduce((a, x) => a + x, 0);
  return { forward, total: 3 * forward, breakdown: b };
}
