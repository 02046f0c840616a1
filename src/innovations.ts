/**
 * The single registry of innovations. The CLI, sweeps, notebooks and CEG tables read it;
 * nothing else lists innovations. An innovation is a plain, serialisable change to the
 * baseline model config (see src/config.ts); a combination is the merge of its parts.
 * Adding one touches this file and the model code only: docs/add-an-innovation.md.
 */
import { z } from 'zod';
import type { ModelConfig } from './config.js';
import { ConfigError } from './config-error.js';

/**
 * An on/off model-config switch declared by an innovation. Absent means off, and `false` is
 * stored as absent, so a run's id (a hash of its config) changes only when the switch is on:
 * every run made before the switch existed keeps its id.
 */
export const modelSwitch = () =>
  z
    .boolean()
    .optional()
    .transform((on) => (on ? (true as const) : undefined));

/**
 * Model-config fields that innovations add, declared here beside the registry entry that turns
 * them on (src/config.ts merges them into ModelConfigSchema, so `--config` overrides, run specs
 * and their validation know them). The model code reads them as `cfg.<field>`. Each is
 * optional and absent by default (modelSwitch, or `.optional()` for a valued setting).
 */
export const MODEL_SWITCHES = {
  /** qknorm: RMSNorm (learned gain per channel of a head) of every head's queries and keys before attention */
  qkNorm: modelSwitch(),
} satisfies Record<string, z.ZodTypeAny>;

export type PaperCategory = 'baseline' | 'compute-independent' | 'compute-dependent' | 'not in paper';

export interface Innovation {
  id: string;
  label: string;
  /** the change to the baseline config (merged shallowly; kvHeads resolved against nHead) */
  change: InnovationChange;
  /** ids this one combines (a combination's change is the merge of its parts') */
  parts?: string[];
  /** what the paper (or the related literature, if not in the paper) claims */
  category: PaperCategory;
  /** in the paper's own experiment set (PAPER.md's results table) */
  inPaper: boolean;
  explanation: string;
  reference: string;
  /**
   * Its FLOPs per step (src/model/flops.ts, which counts matrix products only) equal the
   * baseline's: same math or only non-matmul work (norms, rotations, gates). Declared so that
   * test/every-innovation.test.ts can check it: an innovation either changes the FLOP count
   * or says here that it does not.
   */
  flopsUnchanged?: true;
}

/** A change is a partial model config; `nKvHead` may be 'one' (MQA) or a group count (GQA). */
export type InnovationChange = Partial<Omit<ModelConfig, 'nKvHead'>> & { nKvHead?: number | 'one' };

/** Block-input gain of baseline_fair: 1/RMS of wte[idx] + wpe at GPT-2 init (std 0.02 each), the factor pre-LN applies there. */
export const FAIR_EMBED_SCALE = 1 / (0.02 * Math.SQRT2);

const list: Innovation[] = [
  {
    id: 'baseline',
    label: 'Baseline',
    change: {},
    category: 'baseline',
    inPaper: true,
    explanation:
      "nanoGPT with the study's baseline choices: no LayerNorm inside blocks (the final LayerNorm is kept), " +
      'learned absolute position embeddings, plain masked-softmax attention, one key/value head per query head, GELU MLP.',
    reference: 'Radford et al. 2019 (GPT-2); Karpathy, nanoGPT',
    flopsUnchanged: true,
  },
  {
    id: 'layernorm',
    label: 'LayerNorm (LN)',
    change: { norm: 'layernorm' },
    category: 'compute-independent',
    inPaper: true,
    explanation:
      'Pre-norm LayerNorm before attention and before the MLP in every block: each token vector is centred and ' +
      'scaled to unit variance, then given a learned gain and bias. Keeps activations well-scaled so larger ' +
      'learning rates train stably.',
    reference: 'Ba, Kiros, Hinton 2016; Xiong et al. 2020 (pre-LN)',
    flopsUnchanged: true,
  },
  {
    id: 'rmsnorm',
    label: 'RMSNorm',
    change: { norm: 'rmsnorm' },
    category: 'not in paper',
    inPaper: false,
    explanation: 'LayerNorm without centring or bias: divide by the root-mean-square and apply a learned gain.',
    reference: 'Zhang & Sennrich 2019',
    flopsUnchanged: true,
  },
  {
    id: 'rope',
    label: 'Rotary embeddings (RoPE)',
    change: { positions: 'rope' },
    category: 'compute-independent',
    inPaper: true,
    explanation:
      'Rotate each pair of query/key channels by an angle proportional to the token position, so that the ' +
      'attention score depends only on the relative offset between tokens. The learned position table is removed.',
    reference: 'Su et al. 2021 (RoFormer)',
    flopsUnchanged: true,
  },
  {
    id: 'fused',
    label: 'Fused attention (FA)',
    change: { attnKernel: 'fused' },
    category: 'compute-independent',
    inPaper: true,
    explanation:
      'Exact attention computed block by block with an online softmax, never materialising the T×T score ' +
      'matrix (the FlashAttention algorithm). Same math, so the same loss per step; the gain is memory and time.',
    reference: 'Dao et al. 2022 (FlashAttention)',
    flopsUnchanged: true,
  },
  {
    id: 'mqa',
    label: 'Multi-query attention (MQA)',
    change: { nKvHead: 'one' },
    category: 'compute-dependent',
    inPaper: true,
    explanation:
      'All query heads share one key head and one value head: the K/V projections and the K/V cache shrink by ' +
      'the number of heads, at some cost in quality.',
    reference: 'Shazeer 2019',
  },
  {
    id: 'gqa',
    label: 'Grouped-query attention (GQA)',
    change: { nKvHead: 2 },
    category: 'not in paper',
    inPaper: false,
    explanation:
      'Between MHA and MQA: query heads are split into groups (2 here), each group sharing one key/value head.',
    reference: 'Ainslie et al. 2023',
  },
  {
    id: 'sparse',
    label: 'Sparse attention (SA, NSA)',
    change: { attnKernel: 'nsa' },
    category: 'compute-dependent',
    inPaper: true,
    explanation:
      'Native Sparse Attention as the paper ran it (fla-org/native-sparse-attention): its own q/k/v projections ' +
      'with many query heads sharing one K/V head, a compression branch (keys and values mean-pooled over blocks, ' +
      'causal attention over the completed blocks), a selection branch (token-level attention inside the top-k ' +
      "blocks ranked by the compressed attention scores, the query's own block always included), and per-head " +
      'sigmoid gates mixing the branches (the sliding-window branch is off, as in the paper). See docs/attention.md.',
    reference: 'Yuan et al. 2025 (NSA); fla-org/native-sparse-attention',
  },
  {
    id: 'blocksparse',
    label: 'Block-sparse attention (ours)',
    change: { attnKernel: 'sparse' },
    category: 'not in paper',
    inPaper: false,
    explanation:
      "Our own block-sparse kernel (not the paper's SA): the model's usual heads and projections, each query " +
      'block attends its most recent blocks plus a few earlier blocks chosen by a mean-pooled key score; no ' +
      'compression branch, no gates. At contexts where local + selected blocks cover the context it is the baseline.',
    reference: 'ours, in the spirit of Yuan et al. 2025 (NSA) block selection',
  },
  {
    id: 'moe',
    label: 'Mixture of experts (MoE)',
    change: { mlp: 'moe' },
    category: 'compute-dependent',
    inPaper: false,
    explanation:
      'The MLP is replaced by E expert MLPs and a router that sends each token to its top-k experts, weighted by ' +
      "the router's softmax; a load-balancing loss keeps experts evenly used. More parameters per FLOP. The " +
      'paper names MoE as compute-dependent but does not test it.',
    reference: 'Shazeer et al. 2017; Fedus et al. 2021 (Switch)',
  },
  {
    id: 'swiglu',
    label: 'SwiGLU MLP',
    change: { mlp: 'swiglu' },
    category: 'not in paper',
    inPaper: false,
    explanation:
      'A gated MLP: silu(x·W1) ⊙ (x·W3), then ·W2, with the hidden width cut to 2/3 to keep parameters equal.',
    reference: 'Shazeer 2020',
  },
  {
    id: 'qknorm',
    label: 'QK-norm',
    change: { qkNorm: true },
    category: 'not in paper',
    inPaper: false,
    explanation:
      "RMSNorm of each head's queries and keys (over the head's channels, with a learned gain shared by the heads) " +
      'before RoPE and the attention scores: the logits q·k/√d stay bounded however large the projections grow, ' +
      'which keeps attention from saturating and lets training take larger steps.',
    reference: 'Dehghani et al. 2023 (ViT-22B); OLMo 2 (2024); Jordan et al., modded-nanogpt',
    flopsUnchanged: true,
  },
  {
    id: 'fa_rope_ln',
    label: 'FA + RoPE + LN',
    change: {},
    parts: ['fused', 'rope', 'layernorm'],
    category: 'compute-independent',
    inPaper: true,
    explanation: 'The three compute-independent innovations together: is their gain the product of their gains?',
    reference: 'Sanderson et al. 2025',
    flopsUnchanged: true,
  },
  {
    id: 'baseline_fair',
    label: 'Baseline, fair init',
    change: { blockInputScale: FAIR_EMBED_SCALE },
    category: 'baseline',
    inPaper: false,
    explanation:
      "The paper's no-LayerNorm baseline, started as a pre-LN model starts: every attention and MLP reads its " +
      'input multiplied by the constant 1/(0.02·√2) ≈ 35.4, the factor a pre-LN norm applies at GPT-2 initialisation ' +
      '(block inputs of RMS ≈ 0.028 become RMS ≈ 1), while the residual stream itself is not scaled. Nothing is ' +
      'normalised during training and no parameter is added: it is pre-LN with its normalising factor frozen at the ' +
      'start. Without it the blocks start with inputs 35x too small and the model sits on the unigram plateau; ' +
      'comparing CEGs against both baselines shows how much of a gain is the plateau.',
    reference: 'Xiong et al. 2020 (why pre-LN trains); this project (issue #13)',
    flopsUnchanged: true,
  },
  {
    id: 'fused_fair',
    label: 'Fused attention, fair init',
    change: {},
    parts: ['baseline_fair', 'fused'],
    category: 'baseline',
    inPaper: false,
    explanation:
      'The fairly initialised baseline computed with the fused attention kernel: the same math as baseline_fair, ' +
      'so its CEG against it should be 1. It is the placebo of the fair baseline, as fused attention is the ' +
      "placebo of the paper's: the spread of its CEG over seeds and learning-rate sweeps is the noise floor of " +
      'every verdict against the fair baseline.',
    reference: 'this project (issue #15)',
    flopsUnchanged: true,
  },
  {
    id: 'postln',
    label: 'Post-LN',
    change: { norm: 'layernorm', normPlacement: 'post' },
    category: 'not in paper',
    inPaper: false,
    explanation:
      'LayerNorm after each residual add, x = LN(x + f(x)), as in the original Transformer: the reference of ' +
      "Gundlach et al.'s post-LN → pre-LN comparison (CEG of layernorm against postln).",
    reference: 'Vaswani et al. 2017; Xiong et al. 2020; Gundlach et al. 2025',
    flopsUnchanged: true,
  },
  {
    id: 'modern',
    label: 'Modern stack (pre-RMSNorm + RoPE + SwiGLU)',
    change: {},
    parts: ['rmsnorm', 'rope', 'swiglu'],
    category: 'not in paper',
    inPaper: false,
    explanation:
      'The LLaMA-style block: pre-norm RMSNorm, rotary positions and a SwiGLU MLP. The reference for measuring ' +
      'each innovation the other way round, by removing it from a modern stack (Gundlach et al. 2025).',
    reference: 'Touvron et al. 2023 (LLaMA); Gundlach et al. 2025',
  },
  ...modernRemovals(),
];

/** The modern stack with one innovation taken out ("remove it from the modern stack"). */
function modernRemovals(): Innovation[] {
  const rm = (
    id: string,
    what: string,
    change: InnovationChange,
    flops: Pick<Innovation, 'flopsUnchanged'> = {},
  ): Innovation => ({
    id,
    label: `Modern − ${what}`,
    change,
    parts: ['modern'],
    category: 'not in paper',
    inPaper: false,
    explanation: `The modern stack (pre-RMSNorm + RoPE + SwiGLU) with ${what}: its CEG against "modern" measures that innovation by removal.`,
    reference: 'Gundlach et al. 2025',
    ...flops,
  });
  return [
    rm('modern_nonorm', 'no norm in blocks (pre-RMSNorm removed)', { norm: 'none' }),
    rm('modern_postnorm', 'post-norm instead of pre-norm', { normPlacement: 'post' }),
    rm('modern_learned', 'learned positions instead of RoPE', { positions: 'learned' }),
    // RMSNorm + RoPE + GELU: the baseline's matrix products
    rm('modern_gelu', 'GELU MLP instead of SwiGLU', { mlp: 'gelu' }, { flopsUnchanged: true }),
    rm('modern_layernorm', 'LayerNorm instead of RMSNorm', { norm: 'layernorm' }),
  ];
}

export const INNOVATIONS: readonly Innovation[] = list;

/** The study's variant set, in the paper's table order. */
export const STUDY_SET = ['baseline', 'fused', 'rope', 'layernorm', 'fa_rope_ln', 'mqa', 'sparse'] as const;

export function innovationIds(): string[] {
  return INNOVATIONS.map((i) => i.id);
}

export function getInnovation(id: string): Innovation {
  const inn = INNOVATIONS.find((i) => i.id === id);
  if (!inn) throw new ConfigError(`unknown innovation "${id}"; valid: ${innovationIds().join(', ')}`);
  return inn;
}

/** The full change of an innovation: its own change merged over its parts' changes, in order. */
export function innovationChange(id: string): InnovationChange {
  const inn = getInnovation(id);
  const merged: InnovationChange = {};
  for (const p of inn.parts ?? []) Object.assign(merged, innovationChange(p));
  return Object.assign(merged, inn.change);
}

/** Apply one or more innovations to a baseline model config. */
export function applyInnovations(base: ModelConfig, ids: string[]): ModelConfig {
  const cfg: ModelConfig = structuredClone(base);
  for (const id of ids) {
    const { nKvHead, ...rest } = innovationChange(id);
    Object.assign(cfg, rest);
    if (nKvHead !== undefined) cfg.nKvHead = nKvHead === 'one' ? 1 : nKvHead;
  }
  return cfg;
}
