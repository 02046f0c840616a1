/**
 * Typed inputs and outputs of the study analysis (issue #13): frontier CEG at equal loss,
 * the shared-E parametric check, slopes, LR transfer, the plateau rule, noise and verdicts.
 * Pure data: no training, no run store. The study runner (src/cli, src/report) turns its
 * runs into these shapes and calls the functions of src/ceg/study/.
 */
import type { SharedEResult } from '../fit.js';

/** One point on a run's loss-vs-compute frontier, e.g. the end of one cooldown fork. */
export interface FrontierPoint {
  /** training FLOPs spent to reach this point (whole model, embedding and head included) */
  flops: number;
  /** validation loss at this point (nats per token) */
  loss: number;
  /** training tokens (optional, carried through for reports) */
  tokens?: number;
  /** optimizer step (optional, carried through for reports) */
  step?: number;
  /**
   * Names the point within its rung so that seeds can be matched (e.g. "tpp20" for the fork
   * that cools down at 20 tokens per parameter). Default: the point's FLOPs. Seeds of one
   * variant and rung share fork labels (and FLOPs): their losses are averaged per label.
   */
  fork?: string;
}

/** One run of the study (a trunk with its forks) as the analysis sees it. */
export interface StudyRun {
  /** variant id (an innovation id, or e.g. "baseline", "baseline-fair") */
  variant: string;
  seed: number;
  /** rung name of the plan (a model size) */
  rung: string;
  /** peak learning rate the run used */
  lr: number;
  /** parameter count (whole model); optional, used by reports */
  params?: number;
  /** frontier points of the run (its cooldown forks), any order */
  points: FrontierPoint[];
}

/**
 * A confidence interval that says what it rests on. `method` 'welch-t' is a t-interval on
 * the log scale whose variance adds one term per group of seeds (baseline, variant, ...),
 * with Welch–Satterthwaite degrees of freedom; 'bootstrap' is a percentile bootstrap over
 * seeds. `weak` is true when some group has fewer than 4 seeds: such an interval is a
 * rough guide (with 2 seeds a t-interval has 1 degree of freedom: t = 12.7).
 */
export interface Interval {
  lo: number;
  hi: number;
  /** confidence level, e.g. 0.95 */
  level: number;
  method: 'welch-t' | 'bootstrap';
  /** seeds per group the interval rests on, e.g. { baseline: 3, layernorm: 2 } */
  nSeeds: Record<string, number>;
  /** degrees of freedom (welch-t only) */
  df?: number;
  weak: boolean;
  /** one line for a reader: method, seeds, and why it is weak or unbounded */
  note: string;
}

/**
 * Why a point has no CEG: 'plateau' — the variant's loss is within the plateau margin of
 * the unigram entropy (excluded); 'above-range' — the variant's loss is above every
 * non-plateau loss of the baseline frontier; 'below-range' — below the baseline's best
 * (the baseline never gets there inside the measured range: `bound` is a lower bound).
 */
export type PointFlag = 'plateau' | 'above-range' | 'below-range';

/** One variant frontier point with its CEG at equal loss against the baseline frontier. */
export interface FrontierCegPoint {
  rung: string;
  /** the point's label within the rung (fork, or its FLOPs as a string) */
  fork: string;
  flops: number;
  /** seed-averaged variant loss at this point */
  loss: number;
  /** C_base(loss) / flops; null when flagged */
  ceg: number | null;
  interval: Interval | null;
  flag: PointFlag | null;
  /** for 'below-range': CEG >= value (the baseline's largest compute / the variant's) */
  bound: { kind: 'lower'; value: number } | null;
}

/** Least-squares slope of log10 CEG on log10 C (CEG multiplies by 10^slope per decade). */
export interface SlopeEstimate {
  slope: number;
  interval: Interval;
  /** number of (C, CEG) points the slope is fitted to */
  nPoints: number;
  /** compute range covered by those points */
  range: [number, number];
}

/** The non-parametric frontier CEG of one variant against one baseline. */
export interface FrontierCeg {
  variant: string;
  baseline: string;
  points: FrontierCegPoint[];
  /** null when fewer than 2 points have a CEG */
  slope: SlopeEstimate | null;
  /** the baseline frontier's measured compute and loss ranges (plateau points excluded) */
  baselineRange: { flops: [number, number]; loss: [number, number] } | null;
  /** seed-averaged baseline points left out of its frontier by the plateau rule */
  baselinePlateau: { rung: string; fork: string; flops: number; loss: number }[];
}

/** Options shared by the study analyses. */
export interface StudyOptions {
  /** unigram entropy of the corpus in nats (the plateau); null/undefined disables the plateau rule */
  unigramEntropy?: number | null;
  /** points with loss >= unigramEntropy − plateauMargin are plateau points (default 0.3 nats) */
  plateauMargin?: number;
  /** confidence level of every interval (default 0.95) */
  level?: number;
}

/** A shared-E fit (L_g = E + A_g·C^−α_g, one E): the result of fitSharedE in ../fit.ts. */
export type SharedEFit = SharedEResult;

/** The parametric check of one variant against one baseline: a shared-E fit and its bootstrap. */
export interface ParametricCeg {
  variant: string;
  baseline: string;
  fit: SharedEFit;
  /** slope of log10 CEG on log10 C from the fit: α_variant/α_baseline − 1 (exact with a shared E) */
  slope: number;
  slopeInterval: Interval;
  /** compute range where both groups were measured (CEG is evaluated only within half a decade of it) */
  range: [number, number];
  /** bootstrap refits (E, A_b, α_b, A_v, α_v), kept to give an interval for CEG at any allowed C */
  samples: { E: number; Ab: number; alphab: number; Av: number; alphav: number }[];
  /** number of bootstrap refits that failed (dropped) */
  failed: number;
}

/** CEG(C) from a parametric check, or a refusal beyond half a decade past the data. */
export interface ParametricCegAt {
  C: number;
  ceg: number | null;
  interval: Interval | null;
  /** C lies outside the measured range (but within half a decade of it) */
  extrapolated: boolean;
  /** C lies more than half a decade beyond the data: no CEG is given */
  refused: boolean;
  reason: string | null;
}

/** One point of a loss-vs-LR sweep. */
export interface LrSweepPoint {
  variant: string;
  rung: string;
  /** parameter count of the rung's model */
  params: number;
  lr: number;
  /** final validation loss (seed-averaged by the caller or several points per lr: averaged here) */
  loss: number;
}

/** LR* at one rung: vertex of a parabola in log LR through the best point and its neighbours. */
export interface LrOptimum {
  rung: string;
  params: number;
  lrStar: number;
  /** 'interior': vertex inside the sweep; 'edge-low'/'edge-high': best LR at the sweep's edge (LR* is outside; lrStar = that edge) */
  flag: 'interior' | 'edge-low' | 'edge-high';
  /** distinct learning rates swept at the rung */
  nLr: number;
}

/** log LR* = log c + exponent · log N, fitted over the rungs' optima. */
export interface LrTransfer {
  variant: string;
  optima: LrOptimum[];
  /** LR* ∝ N^exponent */
  exponent: number;
  /** LR* = coefficient · N^exponent */
  coefficient: number;
  /** parameter range of the rungs fitted */
  range: [number, number];
  /** warnings (edge optima, only 2 rungs, ...) */
  notes: string[];
}

/** A transfer exponent shared by every variant, each with its own level (`pooledLrTransfer`). */
export interface PooledLrTransfer {
  /** LR* ∝ N^exponent for every variant */
  exponent: number;
  /** 95% t interval of the exponent from the residuals (null with one fitted variant) */
  interval: [number, number] | null;
  /** variants whose optima fitted the exponent (among those asked to fit it: interior at 2+ rungs) */
  fitted: string[];
  /** per variant with at least one interior optimum: its LR*(N) = coefficient · N^exponent */
  transfers: Map<string, LrTransfer>;
  notes: string[];
}

/** Run-to-run spread of the final loss at one rung. */
export interface LossSpread {
  variant: string;
  rung: string;
  n: number;
  mean: number;
  /** sample standard deviation over seeds; null with one seed */
  sd: number | null;
}

export type StudyVerdict = 'compute-dependent' | 'compute-independent' | 'inconclusive';

export interface VerdictResult {
  verdict: StudyVerdict;
  direction: 'rising' | 'falling' | 'flat' | 'unclear';
  /** half-width of the flat band used (per decade) */
  floor: number;
  reason: string;
}

/** The study's noise floor, measured on the placebo (same math as the baseline). */
export interface NoiseFloor {
  placebo: string;
  /**
   * the baseline the placebo replicates, against which it was measured; a floor reported for
   * another baseline is borrowed from this one (the pipeline's noise), not measured there
   */
  measuredAgainst: string;
  /** flat band for slopes: max |bound| of the placebo's slope interval, at least minFloor */
  slopeFloor: number;
  /** largest |log10 CEG| bound over the placebo's frontier points (CEG differences below 10^this are noise) */
  log10CegFloor: number | null;
  /** the placebo's slope interval contains 0 and every CEG interval contains 1 */
  consistent: boolean;
  /**
   * the placebo's slope interval is bounded, so the band was measured; false (too few seeds or
   * points) leaves slopeFloor at the minimum, a band no verdict rests on: analyzeStudy borrows
   * another placebo's measured band or gives no verdict
   */
  measured: boolean;
  /** how the floor was set (e.g. the placebo's interval was unbounded, so no band was measured) */
  note: string;
  frontier: FrontierCeg;
}

/** Measured CEG of a combination against the product of its parts' CEGs at equal compute. */
export interface CombinationPoint {
  flops: number;
  measured: number;
  product: number;
  /** measured / product, with its interval (1 = the parts multiply) */
  ratio: number;
  interval: Interval | null;
}

export interface CombinationCheck {
  combination: string;
  parts: string[];
  points: CombinationPoint[];
}
