/**
 * Plain, serialisable configuration types shared by every layer. A model config plus a
 * train config plus a data config and a seed determine a run's numbers (with the backend).
 * Validation uses zod so that bad input says what was wrong, where, and what was expected.
 */
import { z } from 'zod';
import { ConfigError } from './config-error.js';
import { MODEL_SWITCHES } from './innovations.js';

export { ConfigError };

export const NORMS = ['none', 'layernorm', 'rmsnorm'] as const;
export const POSITIONS = ['learned', 'rope'] as const;
export const ATTN_KERNELS = ['plain', 'fused', 'sparse', 'nsa'] as const;
export const MLPS = ['gelu', 'swiglu', 'moe'] as const;
/** where a block's norms sit: before each sublayer (pre-LN, GPT-2) or after each residual add (post-LN, Vaswani et al.) */
export const NORM_PLACEMENTS = ['pre', 'post'] as const;
/** learning-rate schedules: nanoGPT's cosine, or warmup-stable-decay (constant, then a linear cooldown) */
export const SCHEDULES = ['cosine', 'wsd'] as const;
/** fixed: the same validation batches at every evaluation (ours); random: fresh ones each time (the paper's) */
export const EVAL_PROTOCOLS = ['fixed', 'random'] as const;
/** numerics: MoE implementation (src/model/mlp.ts): 'auto' = 'dense' on webgpu, 'gather' elsewhere */
export const MOE_IMPLS = ['gather', 'dense', 'auto'] as const;
/** numerics: where sparse attention picks its blocks (src/model/attention/sparse.ts): 'auto' = 'device' on webgpu, 'host' elsewhere */
export const SPARSE_SELECTS = ['host', 'device', 'auto'] as const;

export const SparseConfigSchema = z
  .object({
    /** tokens per block (the paper: 64) */
    blockSize: z.number().int().positive(),
    /** number of most recent blocks every query block always attends (its own block included) */
    localBlocks: z.number().int().positive(),
    /** number of further blocks selected per query block by importance (the paper: 16) */
    selectedBlocks: z.number().int().nonnegative(),
  })
  .strict();
export type SparseConfig = z.infer<typeof SparseConfigSchema>;

/**
 * Native Sparse Attention (NSA, Yuan et al. 2025) as fla-org/native-sparse-attention's
 * `NativeSparseAttention` layer, the paper's `sparse` innovation (docs/attention.md). It has
 * its own head layout: `heads` query heads of size nEmbd/heads sharing `kvHeads` K/V heads.
 */
export const NsaConfigSchema = z
  .object({
    /** query heads (the paper: 16); head size = nEmbd / heads */
    heads: z.number().int().positive(),
    /** key/value heads, shared by groups of heads/kvHeads query heads (the paper: 1) */
    kvHeads: z.number().int().positive(),
    /** tokens per compression / selection block (the paper: 64) */
    blockSize: z.number().int().positive(),
    /** blocks selected per query, the query's own block included (the paper: 16) */
    blockCounts: z.number().int().positive(),
    /** sliding-window branch width in tokens; 0 = off (the paper: 0) */
    windowSize: z.number().int().nonnegative(),
  })
  .strict();
export type NsaConfig = z.infer<typeof NsaConfigSchema>;

export const MoEConfigSchema = z
  .object({
    /** number of experts E */
    experts: z.number().int().min(2),
    /** experts used per token k */
    topK: z.number().int().positive(),
    /** weight of the load-balancing auxiliary loss added to the training loss */
    auxLossWeight: z.number().nonnegative(),
  })
  .strict();

export const ModelConfigSchema = z
  .object({
    /** vocabulary size after padding to a multiple of 64 (GPT-2: 50257 -> 50304) */
    vocabSize: z.number().int().positive(),
    /** context length T */
    blockSize: z.number().int().positive(),
    nLayer: z.number().int().positive(),
    nHead: z.number().int().positive(),
    nEmbd: z.number().int().positive(),
    /** key/value heads: nHead = MHA, 1 = MQA, 1 < k < nHead = GQA (must divide nHead) */
    nKvHead: z.number().int().positive(),
    dropout: z.number().min(0).max(1),
    /** biases in Linear layers and norms, as nanoGPT's `bias` */
    bias: z.boolean(),
    /** norm inside each block (pre-norm). The final norm is always present: LayerNorm, or RMSNorm when norm = rmsnorm */
    norm: z.enum(NORMS),
    positions: z.enum(POSITIONS),
    ropeBase: z.number().positive(),
    attnKernel: z.enum(ATTN_KERNELS),
    sparse: SparseConfigSchema,
    /** NSA settings, used by attnKernel 'nsa' (optional so that run specs stored before NSA existed stay valid) */
    nsa: NsaConfigSchema.optional(),
    mlp: z.enum(MLPS),
    /** hidden width of the MLP (GELU: 4·nEmbd; SwiGLU keeps parameters equal with 2/3 of that, rounded to a multiple of 8) */
    mlpHidden: z.number().int().positive(),
    moe: MoEConfigSchema,
    /**
     * Norm placement inside blocks (absent = 'pre'). 'post': x = norm(x + sublayer(x)), the
     * original Transformer's; needs a norm. Optional so that configs without it hash as before.
     */
    normPlacement: z.enum(NORM_PLACEMENTS).optional(),
    /**
     * Multiplier of the input embeddings (token + position) before the first block (absent = 1).
     * The fairly initialised no-LayerNorm baseline sets it so block inputs start at RMS ~1, as
     * pre-LN's normalised inputs do (see src/innovations.ts, baseline_fair).
     */
    embedScale: z.number().positive().finite().optional(),
    /**
     * With norm 'none': each sublayer reads s·x instead of x (absent = 1), i.e. pre-LN with its
     * normalising factor frozen at a constant. baseline_fair sets s = 1/RMS of the block input
     * at initialisation, so blocks start as they would behind a pre-LN norm (src/innovations.ts).
     */
    blockInputScale: z.number().positive().finite().optional(),
    /**
     * Numerics options (same math, different rounding and work): part of the run's identity.
     * Absent means 'auto' (runSpec drops an explicit 'auto', so old run ids stay valid).
     */
    moeImpl: z.enum(MOE_IMPLS).optional(),
    sparseSelect: z.enum(SPARSE_SELECTS).optional(),
    /** switches that innovations declare beside their registry entry (src/innovations.ts); all optional, absent = off */
    ...MODEL_SWITCHES,
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.blockInputScale !== undefined && c.norm !== 'none')
      ctx.addIssue({
        code: 'custom',
        path: ['blockInputScale'],
        message: "blockInputScale replaces a norm: it needs norm 'none'",
      });
    if (c.normPlacement === 'post' && c.norm === 'none')
      ctx.addIssue({
        code: 'custom',
        path: ['normPlacement'],
        message: "post-norm placement needs a norm (norm is 'none')",
      });
    if (c.nEmbd % c.nHead !== 0)
      ctx.addIssue({
        code: 'custom',
        path: ['nEmbd'],
        message: `nEmbd ${c.nEmbd} must be divisible by nHead ${c.nHead}`,
      });
    if (c.nHead % c.nKvHead !== 0)
      ctx.addIssue({ code: 'custom', path: ['nKvHead'], message: `nKvHead ${c.nKvHead} must divide nHead ${c.nHead}` });
    if (c.positions === 'rope' && (c.nEmbd / c.nHead) % 2 !== 0)
      ctx.addIssue({ code: 'custom', path: ['positions'], message: 'RoPE needs an even head size' });
    if (c.moe.topK > c.moe.experts)
      ctx.addIssue({
        code: 'custom',
        path: ['moe', 'topK'],
        message: `topK ${c.moe.topK} exceeds experts ${c.moe.experts}`,
      });
    if (c.attnKernel === 'sparse' && c.blockSize % c.sparse.blockSize !== 0)
      ctx.addIssue({
        code: 'custom',
        path: ['sparse', 'blockSize'],
        message: `context ${c.blockSize} must be a multiple of the sparse block size ${c.sparse.blockSize}`,
      });
    if (c.attnKernel === 'nsa') {
      const n = c.nsa;
      if (!n)
        ctx.addIssue({
          code: 'custom',
          path: ['nsa'],
          message: "attnKernel 'nsa' needs the nsa settings {heads, kvHeads, blockSize, blockCounts, windowSize}",
        });
      else {
        if (c.nEmbd % n.heads !== 0)
          ctx.addIssue({
            code: 'custom',
            path: ['nsa', 'heads'],
            message: `nEmbd ${c.nEmbd} must be divisible by nsa.heads ${n.heads}`,
          });
        if (n.heads % n.kvHeads !== 0)
          ctx.addIssue({
            code: 'custom',
            path: ['nsa', 'kvHeads'],
            message: `nsa.kvHeads ${n.kvHeads} must divide nsa.heads ${n.heads}`,
          });
        if (c.blockSize % n.blockSize !== 0)
          ctx.addIssue({
            code: 'custom',
            path: ['nsa', 'blockSize'],
            message: `context ${c.blockSize} must be a multiple of the NSA block size ${n.blockSize}`,
          });
        if (c.positions === 'rope')
          ctx.addIssue({
            code: 'custom',
            path: ['positions'],
            message:
              "NSA as the paper ran it has no rotary embedding (its rotary is the identity); use positions 'learned'",
          });
      }
    }
  });
export type ModelConfig = z.infer<typeof ModelConfigSchema>;

export const TrainConfigSchema = z
  .object({
    /** optimizer steps (iterations) */
    steps: z.number().int().positive(),
    /** sequences per micro-batch */
    batchSize: z.number().int().positive(),
    /** micro-batches per optimizer step */
    gradAccum: z.number().int().positive(),
    lr: z.number().positive(),
    /** floor of the cosine schedule (nanoGPT: lr/10) */
    minLr: z.number().nonnegative(),
    warmupSteps: z.number().int().nonnegative(),
    /** cosine decays until this step, then stays at minLr (nanoGPT: lr_decay_iters) */
    decaySteps: z.number().int().positive(),
    weightDecay: z.number().nonnegative(),
    beta1: z.number().min(0).max(1),
    beta2: z.number().min(0).max(1),
    /** clip gradients to this global norm (0 = off) */
    gradClip: z.number().nonnegative(),
    /** evaluate every N steps (and at step 0 and the last step) */
    evalInterval: z.number().int().positive(),
    /** validation batches per evaluation (the same fixed batches every time) */
    evalBatches: z.number().int().positive(),
    /**
     * how each evaluation picks its validation batches (absent = 'fixed', ours: the same
     * evalBatches batches every time). 'random': the paper's (nanoGPT's estimate_loss with
     * eval_iters = evalBatches): fresh random batches at every evaluation, seeded by (run
     * seed, step) so a run and its resume are reproducible. Part of the run's identity.
     */
    evalProtocol: z.enum(EVAL_PROTOCOLS).optional(),
    /** checkpoint every N steps (0 = only at the end) */
    checkpointInterval: z.number().int().nonnegative(),
    /**
     * learning-rate schedule (absent = 'cosine', nanoGPT's). 'wsd': warmup, then constant lr,
     * then a linear cooldown to minLr over the last cooldownSteps steps (Hägele et al. 2024).
     * Optional (like the two fields below) so that configs without it hash as before.
     */
    schedule: z.enum(SCHEDULES).optional(),
    /** wsd: length of the final linear cooldown (absent = 0: constant lr to the end, a trunk) */
    cooldownSteps: z.number().int().nonnegative().optional(),
    /** steps whose checkpoints are kept for good (never pruned): the fork points of cooldown forks */
    keepSteps: z.array(z.number().int().positive()).optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.schedule !== 'wsd' && t.cooldownSteps !== undefined)
      ctx.addIssue({ code: 'custom', path: ['cooldownSteps'], message: "cooldownSteps needs schedule 'wsd'" });
    if (t.cooldownSteps !== undefined && t.cooldownSteps > t.steps - t.warmupSteps)
      ctx.addIssue({
        code: 'custom',
        path: ['cooldownSteps'],
        message: `cooldown ${t.cooldownSteps} is longer than the ${t.steps - t.warmupSteps} steps after warmup`,
      });
    for (const k of t.keepSteps ?? [])
      if (k > t.steps)
        ctx.addIssue({
          code: 'custom',
          path: ['keepSteps'],
          message: `keep step ${k} is beyond the last step ${t.steps}`,
        });
  });
export type TrainConfig = z.infer<typeof TrainConfigSchema>;

export const CORPORA = ['sotu', 'moby-dick', 'tokens'] as const;
export const TOKENIZERS = ['char', 'gpt2'] as const;

export const DataConfigSchema = z
  .object({
    /** bundled corpus name, or 'tokens' for nanoGPT-format train.bin/val.bin in `dir` */
    corpus: z.enum(CORPORA),
    tokenizer: z.enum(TOKENIZERS),
    /** with corpus 'tokens': the folder holding train.bin and val.bin */
    dir: z.string().optional(),
  })
  .strict();
export type DataConfig = z.infer<typeof DataConfigSchema>;

/** Format a zod error as one line per problem: `where: what (expected ...)`. */
export function formatIssues(err: z.ZodError, root = 'config'): string {
  return err.issues.map((i) => `${[root, ...i.path].join('.')}: ${i.message}`).join('\n');
}

export function parseModelConfig(x: unknown): ModelConfig {
  const r = ModelConfigSchema.safeParse(x);
  if (!r.success) throw new ConfigError(formatIssues(r.error, 'model'));
  return r.data;
}
export function parseTrainConfig(x: unknown): TrainConfig {
  const r = TrainConfigSchema.safeParse(x);
  if (!r.success) throw new ConfigError(formatIssues(r.error, 'train'));
  return r.data;
}

/**
 * The shape of a `--config` overrides file: `{"model": {...}, "train": {...}}`. Checked here:
 * the top level and each section are objects (not `5`, `null` or an array) and every key is a
 * config field (unknown keys are errors). Values are checked when the merged configs are
 * validated in full (parseModelConfig / parseTrainConfig). `model.vocabSize` is refused: the
 * tokenizer sets it, so an override would be ignored.
 */
const keysOf = (shape: Record<string, unknown>) =>
  z
    .object(Object.fromEntries(Object.keys(shape).map((k) => [k, z.unknown()])))
    .partial()
    .strict();
export const ConfigOverridesSchema = z
  .object({ model: keysOf(ModelConfigSchema.innerType().shape), train: keysOf(TrainConfigSchema.innerType().shape) })
  .partial()
  .strict();
export interface ConfigOverrides {
  model?: Record<string, unknown>;
  train?: Record<string, unknown>;
}

/** Validate a `--config` overrides object (ConfigError naming every problem, one per line). */
export function parseConfigOverrides(x: unknown, where = 'config'): ConfigOverrides {
  if (x === null || typeof x !== 'object' || Array.isArray(x))
    throw new ConfigError(`${where}: expected an object {"model": {...}, "train": {...}}, got ${JSON.stringify(x)}`);
  const model = (x as { model?: unknown }).model;
  if (model !== null && typeof model === 'object' && 'vocabSize' in model)
    throw new ConfigError(
      `${where}.model.vocabSize: set by the tokenizer (--tokenizer), not by a config override; remove it`,
    );
  const r = ConfigOverridesSchema.safeParse(x);
  if (!r.success) throw new ConfigError(formatIssues(r.error, where).split('\n').join('; '));
  return r.data as ConfigOverrides;
}

/** Round a vocabulary up to a multiple of 64 as nanoGPT does (50257 -> 50304). */
export function padVocab(n: number, multiple = 64): number {
  return Math.ceil(n / multiple) * multiple;
}
