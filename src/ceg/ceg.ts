/**
 * Our CEG: compute the baseline needs to reach a target validation loss divided by the
 * compute the variant needs, on any axis (steps, tokens, FLOPs, seconds; default FLOPs).
 *
 * - Each curve becomes its best-so-far (running minimum) validation loss: "has reached
 *   loss L by compute C" is then monotone, so the compute to reach a target is unique.
 * - Compute to reach a target is interpolated linearly in log-compute between the two
 *   evaluations that bracket the first crossing (loss-vs-log-compute is close to linear
 *   on a power-law curve, so this is exact for equal shapes on matching sample points).
 * - Step 0 / compute 0: log 0 is undefined, so no interpolation reaches below the first
 *   positive evaluation. A crossing between the point at compute 0 and the first positive
 *   point is reported at that first positive point (an upper bound on the true compute).
 *   A target met already at compute 0 (at initialisation) gives compute 0.
 * - "Reached" allows float tolerance: a loss within REACH_RTOL (relative, 1e-6) above the
 *   target counts as reaching it, at the evaluation where it first does (no interpolation
 *   past it). Validation losses are float32 means; two kernels doing the same math in
 *   another summation order (fused attention) differ by a few float32 ulps (2^-23 relative
 *   each, ~3e-7 nats at loss 2.5), and a seed 7e-7 nats above the baseline's final loss is
 *   not a real "did not reach". 1e-6 relative is ~8 float32 ulps: 2.6e-6 nats at micro's
 *   2.57, 3.8e-6 at the paper's compact 3.8, far below any difference the tables report
 *   (3 decimals). The paper's method (paper.ts) keeps its exact `<=`, as numpy does.
 * - DNR: the variant never reaches the target. `ceg` is null and `bound` is the censored
 *   upper bound baseline compute / variant's final compute (the variant would need more
 *   than its final compute, so its CEG is below that). Symmetrically, if the baseline never
 *   reaches an explicit target but the variant does, `ceg` is null, `baselineDnr` is true
 *   and `bound` is the lower bound baseline final compute / variant compute.
 * - Several seeds: seeds are paired by equal seed (same initialisation and data order
 *   seed, so common noise cancels in the ratio); each pair gives one CEG; the summary is
 *   the geometric mean over the pairs that reached, with a percentile bootstrap CI over
 *   pairs (seeded). DNR pairs are counted (`nDnr`) and left out of the mean.
 */
import { axisValue, checkAxis, evalRows, CegError, type Axis, type MetricRow } from './types.js';
import { movingAverage } from './paper.js';
import { bootstrapCi, geometricMean, type BootstrapOptions } from './random.js';

export type CegTarget = { kind: 'baseline-final' } | { kind: 'baseline-best' } | { kind: 'value'; loss: number };

export interface CegOptions {
  /** compute axis (default 'flops') */
  axis?: Axis;
  /**
   * target loss (default baseline-final: the baseline's last raw validation loss, which is
   * above its best when it over-fits late). baseline-best: the baseline's lowest validation
   * loss. value: an explicit loss.
   */
  target?: CegTarget;
  /** trailing moving-average window applied to validation loss before the running minimum (default 1: none) */
  smoothWindow?: number;
}

export interface CegResult {
  axis: Axis;
  target: number;
  /** baseline compute / variant compute; null when either side did not reach the target */
  ceg: number | null;
  /** the variant never reached the target */
  dnr: boolean;
  /** the baseline never reached the target (only possible with an explicit value target) */
  baselineDnr: boolean;
  baselineCompute: number | null;
  variantCompute: number | null;
  /** censored bound when ceg is null: 'upper' for a variant DNR, 'lower' for a baseline DNR */
  bound: { kind: 'upper' | 'lower'; value: number } | null;
}

/**
 * Relative float tolerance of "reached the target" in our CEG (module doc): a loss at most
 * target·(1 + 1e-6) has reached it.
 */
export const REACH_RTOL = 1e-6;

/** Running minimum: out[i] = min(values[0..i]). */
export function bestSoFar(values: number[]): number[] {
  const out: number[] = new Array(values.length);
  let m = Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i] < m) m = values[i];
    out[i] = m;
  }
  return out;
}

/**
 * Compute at which a curve first reaches loss <= target, interpolating linearly in
 * log-compute between bracketing evaluations (rules for compute 0 in the module doc).
 * xs: compute per evaluation, non-negative and non-decreasing. losses: raw per evaluation
 * (the running minimum is taken here). Returns null when the target is never reached.
 */
export function computeToReach(xs: number[], losses: number[], target: number, rtol = REACH_RTOL): number | null {
  if (xs.length !== losses.length)
    throw new CegError(`computeToReach: ${xs.length} compute values for ${losses.length} losses`);
  if (!(rtol >= 0)) throw new CegError(`reach tolerance must be >= 0, got ${rtol}`);
  const m = bestSoFar(losses);
  const within = target + rtol * Math.abs(target);
  const i = m.findIndex((l) => l <= within);
  if (i < 0) return null;
  if (xs[i] <= 0) return 0;
  if (i === 0 || xs[i - 1] <= 0 || xs[i - 1] === xs[i]) return xs[i];
  // in (0, 1]; reached only within the tolerance (m[i] > target) counts at xs[i], not beyond
  const t = (m[i - 1] - target) / (m[i - 1] - m[i]);
  if (t >= 1) return xs[i];
  const lx = Math.log(xs[i - 1]) + t * (Math.log(xs[i]) - Math.log(xs[i - 1]));
  return Math.exp(lx);
}

/** A curve on an axis: compute per evaluation and the (optionally smoothed) validation loss. */
export function curveOnAxis(
  rows: MetricRow[],
  axis: Axis,
  smoothWindow = 1,
  what = 'curve',
): { x: number[]; loss: number[] } {
  rows = evalRows(rows, what);
  const x = rows.map((r) => axisValue(r, axis));
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i]) || x[i] < 0)
      throw new CegError(`${what}: ${axis} at step ${rows[i].step} is ${x[i]}; must be finite and >= 0`);
    if (i > 0 && x[i] < x[i - 1])
      throw new CegError(`${what}: ${axis} decreases at step ${rows[i].step}: ${x[i]} after ${x[i - 1]}`);
  }
  const raw = rows.map((r) => r.valLoss as number);
  return { x, loss: smoothWindow > 1 ? movingAverage(raw, smoothWindow, 'partial') : raw };
}

/** The target loss a CegTarget names, read from the baseline's (smoothed) curve. */
export function resolveTarget(baselineLoss: number[], target: CegTarget): number {
  switch (target.kind) {
    case 'baseline-final':
      return baselineLoss[baselineLoss.length - 1];
    case 'baseline-best':
      return Math.min(...baselineLoss);
    case 'value':
      if (!Number.isFinite(target.loss)) throw new CegError(`target loss must be finite, got ${target.loss}`);
      return target.loss;
    default:
      throw new CegError(
        `unknown target kind "${(target as { kind: string }).kind}"; valid: baseline-final, baseline-best, value`,
      );
  }
}

function ratio(b: number, v: number): number {
  if (v === 0) return b === 0 ? 1 : Infinity;
  return b / v;
}

/** Our CEG of one variant run against one baseline run (see the module doc). */
export function ceg(baseline: MetricRow[], variant: MetricRow[], opts: CegOptions = {}): CegResult {
  const axis = checkAxis(opts.axis ?? 'flops');
  const smooth = opts.smoothWindow ?? 1;
  const b = curveOnAxis(baseline, axis, smooth, 'baseline');
  const v = curveOnAxis(variant, axis, smooth, 'variant');
  const target = resolveTarget(b.loss, opts.target ?? { kind: 'baseline-final' });
  if (!Number.isFinite(target)) throw new CegError(`the target loss is ${target} (did the baseline diverge?)`);
  const baselineCompute = computeToReach(b.x, b.loss, target);
  const variantCompute = computeToReach(v.x, v.loss, target);
  const dnr = variantCompute === null;
  const baselineDnr = baselineCompute === null;
  let bound: CegResult['bound'] = null;
  if (dnr && !baselineDnr) bound = { kind: 'upper', value: ratio(baselineCompute, v.x[v.x.length - 1]) };
  if (baselineDnr && !dnr) bound = { kind: 'lower', value: ratio(b.x[b.x.length - 1], variantCompute) };
  return {
    axis,
    target,
    ceg: dnr || baselineDnr ? null : ratio(baselineCompute, variantCompute),
    dnr,
    baselineDnr,
    baselineCompute,
    variantCompute,
    bound,
  };
}

export interface SeedCurve {
  seed: number;
  metrics: MetricRow[];
}

export interface SeedCegResult extends CegResult {
  seed: number;
}

export interface CegSummary {
  axis: Axis;
  /** geometric mean of the per-seed CEGs that reached; null when none did */
  ceg: number | null;
  /** percentile bootstrap CI of that geometric mean over seed pairs; null with fewer than 2 reaching pairs */
  ci: [number, number] | null;
  /** no seed pair reached the target */
  dnr: boolean;
  nSeeds: number;
  nReached: number;
  nDnr: number;
  perSeed: SeedCegResult[];
  /** seeds present on one side only (left out) */
  unmatchedSeeds: number[];
}

/**
 * Our CEG over several seeds: pairs baseline and variant runs by equal seed, computes one
 * CEG per pair, and summarises them by the geometric mean and a bootstrap CI (default
 * 2000 resamples, seed 0, percentiles 2.5 / 97.5).
 */
export function cegSeeds(
  baselines: SeedCurve[],
  variants: SeedCurve[],
  opts: CegOptions & { bootstrap?: BootstrapOptions } = {},
): CegSummary {
  const axis = checkAxis(opts.axis ?? 'flops');
  const bySeed = new Map<number, SeedCurve>();
  for (const b of baselines) {
    if (bySeed.has(b.seed)) throw new CegError(`baseline seed ${b.seed} appears twice`);
    bySeed.set(b.seed, b);
  }
  const perSeed: SeedCegResult[] = [];
  const used = new Set<number>();
  const unmatched: number[] = [];
  for (const v of variants) {
    const b = bySeed.get(v.seed);
    if (!b) {
      unmatched.push(v.seed);
      continue;
    }
    if (used.has(v.seed)) throw new CegError(`variant seed ${v.seed} appears twice`);
    used.add(v.seed);
    perSeed.push({ seed: v.seed, ...ceg(b.metrics, v.metrics, { ...opts, axis }) });
  }
  for (const s of bySeed.keys()) if (!used.has(s)) unmatched.push(s);
  if (perSeed.length === 0)
    throw new CegError(
      `no seed is shared by baseline (seeds ${[...bySeed.keys()].join(', ') || 'none'}) and variant (seeds ${variants.map((v) => v.seed).join(', ') || 'none'})`,
    );
  const values = perSeed.map((r) => r.ceg).filter((c): c is number => c !== null && Number.isFinite(c) && c > 0);
  return {
    axis,
    ceg: values.length ? geometricMean(values) : null,
    ci: bootstrapCi(values, geometricMean, opts.bootstrap),
    dnr: values.length === 0,
    nSeeds: perSeed.length,
    nReached: values.length,
    nDnr: perSeed.filter((r) => r.dnr).length,
    perSeed,
    unmatchedSeeds: unmatched.sort((a, b) => a - b),
  };
}
