/**
 * Study plans (issue #13): plain data, like src/scales.ts. A plan names model sizes (rungs)
 * sized by tokens per parameter, the cooldown forks of each trunk, the learning-rate grid and
 * where it is swept, the variants with their seeds, and the comparisons the report makes.
 * src/train/study.ts turns a plan into the plain list of runs it needs, stage by stage.
 *
 * Counting: N is the WHOLE parameter count of the rung's baseline model (embeddings and the
 * tied head included, src/model/params.ts paramCount), and every variant at a rung trains on
 * the same tokens (tokens per parameter x N), so forks end at the same step for every
 * variant. FLOPs are the whole model's too (src/model/flops.ts: every matmul, the head
 * included, attention counted causally).
 */
import type { DataConfig } from './config.js';
import { ConfigError } from './config.js';

export interface PlanRung {
  /** global name (plans that share a rung share its runs): 'n20k' */
  name: string;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  /** sequences per optimizer step */
  batchSize: number;
}

export interface PlanVariant {
  /** innovation id (src/innovations.ts) */
  id: string;
  /** seeds 1..seeds of every frontier run */
  seeds: number;
}

/** A CEG the report computes: `variant` measured against `reference`. */
export interface PlanComparison {
  variant: string;
  reference: string;
  /** how to read it: add an innovation to the paper's baseline, remove it from the modern stack, the placebo, ... */
  kind: 'add' | 'remove' | 'placebo' | 'baseline';
}

export interface StudyPlan {
  name: string;
  description: string;
  data: DataConfig;
  /** context length T */
  blockSize: number;
  /** character vocabulary, padded */
  vocabSize: number;
  rungs: PlanRung[];
  /**
   * Tokens per parameter at the END of each cooldown fork (cooldown included), ascending. The
   * trunk runs at constant LR to the last fork's start and keeps a checkpoint at every fork start.
   */
  forks: number[];
  /** a fork's cooldown as a fraction of its whole length (Hägele et al.: 10-20%) */
  cooldownFraction: number;
  /** warmup as a fraction of the longest fork (shared by the trunk and its forks) */
  warmupFraction: number;
  /** extra fork (tokens per parameter) for the baselines at the top rung: keeps the top variant points inside the baseline frontier */
  baselineExtraFork?: number;
  /** peak learning rates swept at the first `lrSweepRungs` rungs for every variant (seed 1) */
  lrGrid: number[];
  lrSweepRungs: number;
  /**
   * the variants whose sweeps fit the shared LR-transfer exponent (default: every variant). A
   * variant added to a plan after its larger rungs trained goes outside this list: it takes the
   * exponent with its own level, so adding it does not move every other variant's LR (and retrain
   * every larger rung)
   */
  lrExponentVariants?: string[];
  /** ±½-decade check of the transferred LR at one larger rung for some variants (seed 1) */
  spotCheck?: { rung: string; variants: string[]; factors: number[] };
  variants: PlanVariant[];
  comparisons: PlanComparison[];
  /** evaluation points per trunk (about) and validation batches per evaluation */
  evalsPerTrunk: number;
  evalBatches: number;
  /** the rest of the recipe: AdamW and clipping as every scale */
  weightDecay: number;
  beta1: number;
  beta2: number;
  gradClip: number;
  /** LR at the end of the cooldown (Hägele et al.: 0) */
  minLr: number;
}

const CHAR_SOTU: DataConfig = { corpus: 'sotu', tokenizer: 'char' };
const HALF_DECADE = Math.sqrt(10);
/** 10^(h/2) for h = h0 .. h0+n-1: a grid half a decade apart (rounded to 3 significant digits, so equal LRs are equal numbers in every plan) */
function halfDecades(h0: number, n: number): number[] {
  return Array.from({ length: n }, (_, k) => Number((10 ** ((h0 + k) / 2)).toPrecision(3)));
}

const recipe = { weightDecay: 0.1, beta1: 0.9, beta2: 0.95, gradClip: 1.0, minLr: 0 } as const;

/**
 * The comparisons of the study: every variant against the paper's baseline and against the
 * fairly initialised one; the placebo; Gundlach et al.'s pairs in both directions.
 */
function comparisonsFor(ids: readonly string[]): PlanComparison[] {
  const has = (id: string) => ids.includes(id);
  const out: PlanComparison[] = [];
  const add = (variant: string, reference: string, kind: PlanComparison['kind']) => {
    if (has(variant) && has(reference)) out.push({ variant, reference, kind });
  };
  add('baseline_fair', 'baseline', 'baseline');
  add('fused', 'baseline', 'placebo');
  add('fused_fair', 'baseline_fair', 'placebo');
  for (const v of ids) {
    if (['baseline', 'baseline_fair', 'fused', 'fused_fair', 'modern'].includes(v) || v.startsWith('modern_')) continue;
    add(v, 'baseline', 'add');
    add(v, 'baseline_fair', 'add');
  }
  // post-LN -> pre-LN (Gundlach et al.), RMSNorm vs LayerNorm
  add('layernorm', 'postln', 'add');
  add('rmsnorm', 'layernorm', 'add');
  add('modern', 'baseline', 'add');
  // removal from the modern stack: the modern stack measured against it without each part
  for (const r of ['modern_nonorm', 'modern_postnorm', 'modern_learned', 'modern_gelu', 'modern_layernorm'])
    add('modern', r, 'remove');
  return out;
}

const cpuRungs: PlanRung[] = [
  { name: 'n11k', nLayer: 2, nHead: 4, nEmbd: 16, batchSize: 8 },
  { name: 'n33k', nLayer: 2, nHead: 4, nEmbd: 32, batchSize: 8 },
  { name: 'n96k', nLayer: 3, nHead: 4, nEmbd: 48, batchSize: 8 },
  { name: 'n270k', nLayer: 4, nHead: 4, nEmbd: 72, batchSize: 16 },
];

// The paper's baseline and its placebo have 5 seeds. With 3 each, one point of the placebo's CEG (n270k,
// 10 tokens per parameter) excluded 1; `npx tsx scripts/placebo-diagnosis.ts` retrains the crossed runs
// that explain it (docs/study-analysis.md, "When the placebo is not consistent"): the runs' spread at
// that rung is larger than 3 tightly clustered baseline seeds said, and more seeds measure it.
const cpuVariants: PlanVariant[] = [
  { id: 'baseline', seeds: 5 },
  { id: 'baseline_fair', seeds: 3 },
  { id: 'fused', seeds: 5 },
  { id: 'fused_fair', seeds: 3 },
  { id: 'layernorm', seeds: 2 },
  { id: 'rope', seeds: 2 },
  { id: 'fa_rope_ln', seeds: 2 },
  { id: 'postln', seeds: 2 },
  { id: 'modern', seeds: 2 },
  { id: 'modern_nonorm', seeds: 2 },
  { id: 'modern_learned', seeds: 2 },
  { id: 'modern_gelu', seeds: 2 },
  { id: 'modern_layernorm', seeds: 2 },
  { id: 'modern_postnorm', seeds: 2 },
  { id: 'rmsnorm', seeds: 2 },
  { id: 'swiglu', seeds: 2 },
  { id: 'mqa', seeds: 2 },
  { id: 'gqa', seeds: 2 },
  { id: 'sparse', seeds: 2 },
  { id: 'moe', seeds: 2 },
];

/**
 * The variants whose sweeps fit the LR-transfer exponent: the study set as its larger rungs were
 * first trained. fused_fair (the fair baseline's placebo) came later and takes the exponent with its
 * own level: pooled with it, the exponent moved and every LR at n96k and n270k changed.
 */
const cpuLrExponentVariants = cpuVariants.map((v) => v.id).filter((id) => id !== 'fused_fair');

const cpu: StudyPlan = {
  name: 'cpu',
  description:
    'the CPU study: character-level SOTU, context 128, 4 compute-optimal rungs (20k-330k parameters, ' +
    '2.4 decades of training FLOPs), cooldown forks at 5/10/20 tokens per parameter, LR swept per variant',
  data: CHAR_SOTU,
  blockSize: 128,
  vocabSize: 128,
  rungs: cpuRungs,
  forks: [5, 10, 20],
  cooldownFraction: 0.2,
  warmupFraction: 0.05,
  baselineExtraFork: 30,
  // 3.16e-4 .. 3.16e-2: the sweep's first trunks put the baseline's best LR at 1e-2, the old top
  // of the grid; a vertex needs a point above it
  lrGrid: halfDecades(-7, 5),
  lrSweepRungs: 2,
  lrExponentVariants: cpuLrExponentVariants,
  spotCheck: { rung: 'n96k', variants: ['baseline', 'layernorm'], factors: [1 / HALF_DECADE, HALF_DECADE] },
  variants: cpuVariants,
  comparisons: comparisonsFor(cpuVariants.map((v) => v.id)),
  evalsPerTrunk: 20,
  evalBatches: 16,
  ...recipe,
};

/** the GPU plan trains the same study set (issue #15 asks the CPU plan for all of it) */
const gpuVariants: PlanVariant[] = cpuVariants;

export const PLANS: Record<string, StudyPlan> = {
  /** tests and CI: a minute or two; numbers mean nothing */
  smoke: {
    name: 'smoke',
    description: 'CI only (about a minute): two tiny rungs plus one transferred, numbers mean nothing',
    data: CHAR_SOTU,
    blockSize: 32,
    vocabSize: 128,
    rungs: [
      { name: 'smoke-a', nLayer: 1, nHead: 2, nEmbd: 8, batchSize: 4 },
      { name: 'smoke-b', nLayer: 1, nHead: 2, nEmbd: 16, batchSize: 4 },
      { name: 'smoke-c', nLayer: 2, nHead: 2, nEmbd: 16, batchSize: 4 },
    ],
    forks: [0.4, 0.8],
    cooldownFraction: 0.25,
    warmupFraction: 0.05,
    baselineExtraFork: 1.2,
    lrGrid: halfDecades(-6, 3), // 1e-3, 3.16e-3, 1e-2
    lrSweepRungs: 2,
    spotCheck: { rung: 'smoke-c', variants: ['baseline'], factors: [1 / HALF_DECADE, HALF_DECADE] },
    variants: [
      { id: 'baseline', seeds: 2 },
      { id: 'baseline_fair', seeds: 1 },
      { id: 'fused', seeds: 1 },
      { id: 'layernorm', seeds: 1 },
      // so that every report path (combination, post-LN -> pre-LN, removal from the modern stack) has data at smoke
      { id: 'rope', seeds: 1 },
      { id: 'postln', seeds: 1 },
      { id: 'modern', seeds: 1 },
      { id: 'modern_learned', seeds: 1 },
    ],
    comparisons: comparisonsFor([
      'baseline',
      'baseline_fair',
      'fused',
      'layernorm',
      'rope',
      'postln',
      'modern',
      'modern_learned',
    ]),
    evalsPerTrunk: 4,
    evalBatches: 2,
    ...recipe,
  },
  cpu,
  /** the same study on a GPU: the CPU plan's rungs (same runs) plus larger ones, and every variant */
  gpu: {
    ...cpu,
    name: 'gpu',
    description:
      "the CPU plan's rungs plus three larger ones (to ~4.8 M parameters, ~5 decades of FLOPs) and every variant",
    rungs: [
      ...cpuRungs,
      { name: 'n826k', nLayer: 4, nHead: 4, nEmbd: 128, batchSize: 32 },
      { name: 'n2.7m', nLayer: 6, nHead: 6, nEmbd: 192, batchSize: 64 },
      { name: 'n4.8m', nLayer: 6, nHead: 8, nEmbd: 256, batchSize: 64 },
    ],
    lrGrid: halfDecades(-8, 6), // 1e-4 .. 3.16e-2
    variants: gpuVariants,
    comparisons: comparisonsFor(gpuVariants.map((v) => v.id)),
  },
};

export function planNames(): string[] {
  return Object.keys(PLANS);
}

export function getPlan(name: string): StudyPlan {
  const p = PLANS[name];
  if (!p) throw new ConfigError(`unknown study plan "${name}"; valid: ${planNames().join(', ')}`);
  return structuredClone(p);
}

/** A placebo: a variant with the same math as the baseline it replicates, `of`. */
export interface StudyPlacebo {
  placebo: string;
  of: string;
}

/** The plan's placebos: each `placebo` comparison, as the placebo and the baseline it replicates. */
export function studyPlacebos(plan: Pick<StudyPlan, 'comparisons'>): StudyPlacebo[] {
  return plan.comparisons.filter((c) => c.kind === 'placebo').map((c) => ({ placebo: c.variant, of: c.reference }));
}

/** The variants that fit the plan's shared LR-transfer exponent: `lrExponentVariants`, else all. */
export function lrExponentVariants(plan: Pick<StudyPlan, 'variants' | 'lrExponentVariants'>): string[] {
  return plan.lrExponentVariants ?? plan.variants.map((v) => v.id);
}
