/**
 * Classification of an innovation as compute-independent or compute-dependent from how
 * its CEG changes with compute.
 *
 * slope s = least-squares slope of log CEG against log C (same base on both sides), i.e.
 * CEG ∝ C^s: CEG multiplies by 10^s per decade of compute. With power-law fits that share
 * E = 0, s = α_variant/α_baseline − 1, so s is "how much steeper the variant's curve is".
 * The CI comes from a bootstrap over seeds: seeds are resampled with replacement (all of a
 * seed's points travel together), the slope is refitted, and percentiles are taken.
 *
 * Verdict (first rule that applies):
 * 1. CI inside [−flatTol, +flatTol]                → compute-independent (flat)
 * 2. CI above 0                                    → compute-dependent (rising with C)
 * 3. CI below 0                                    → compute-dependent (falling with C)
 * 4. CEG < 1 at the smallest C (its bootstrap CI entirely below 1) and slope > 0
 *                                                  → compute-dependent (hurts when small, rising:
 *                                                    the paper's signature)
 * 5. otherwise                                     → undetermined (the CI straddles the flat
 *                                                    band and beyond it: more seeds or a wider
 *                                                    compute range are needed)
 * Default flatTol = 0.05: a 5% difference in scaling exponent, i.e. CEG drifting by at most
 * ×1.12 per decade; below that a micro-scale ladder (1–1.5 decades, a few seeds) cannot
 * tell drift from noise, and over the paper's two scales (≈1 decade) it is smaller than
 * their reported run-to-run differences.
 */
import { bootstrapCi, geometricMean, type BootstrapOptions } from './random.js';
import { cegCurve, type ScalingFit } from './fit.js';
import { CegError } from './types.js';

export type Verdict = 'compute-independent' | 'compute-dependent' | 'undetermined';

export interface CegPoint {
  seed: number;
  /** compute */
  C: number;
  /** CEG at that compute (> 0) */
  ceg: number;
}

export interface ClassifyOptions {
  /** half-width of the flat band on the slope (default 0.05) */
  flatTol?: number;
  /** bootstrap over seeds (default 2000 resamples, seed 0, 95%) */
  bootstrap?: BootstrapOptions;
}

export interface Classification {
  slope: number;
  ci: [number, number];
  verdict: Verdict;
  reason: string;
  direction: 'flat' | 'rising' | 'falling' | 'unclear';
  /** geometric mean CEG at the smallest compute, and its bootstrap CI over seeds */
  cegAtSmallest: number;
  cegAtSmallestCi: [number, number];
  nSeeds: number;
}

/** Least-squares slope of y on x; NaN when x has no spread. */
export function lsSlope(x: number[], y: number[]): number {
  const n = x.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
  }
  return sxx > 0 ? sxy / sxx : NaN;
}

function slopeOf(points: CegPoint[]): number {
  return lsSlope(
    points.map((p) => Math.log10(p.C)),
    points.map((p) => Math.log10(p.ceg)),
  );
}

const fmt = (v: number) => (Math.abs(v) >= 0.01 || v === 0 ? v.toFixed(3) : v.toExponential(2));

/** Classify from per-seed (C, CEG) points (see the module doc for the rules). */
export function classifyCeg(points: CegPoint[], opts: ClassifyOptions = {}): Classification {
  const flatTol = opts.flatTol ?? 0.05;
  if (!(flatTol >= 0)) throw new CegError(`flatTol must be >= 0, got ${flatTol}`);
  for (const p of points)
    if (!(p.C > 0 && p.ceg > 0 && Number.isFinite(p.C) && Number.isFinite(p.ceg)))
      throw new CegError(
        `classification points need finite C > 0 and CEG > 0, got seed ${p.seed} C=${p.C} CEG=${p.ceg}`,
      );
  const seeds = [...new Set(points.map((p) => p.seed))].sort((a, b) => a - b);
  const bySeed = seeds.map((s) => points.filter((p) => p.seed === s));
  const distinctC = new Set(points.map((p) => p.C));
  if (distinctC.size < 2)
    throw new CegError(`classification needs CEG at 2 or more compute values, got ${distinctC.size}`);
  const slope = slopeOf(points);
  const ci =
    bootstrapCi(bySeed, (sample) => slopeOf(sample.flat()), opts.bootstrap) ??
    // one seed: no resampling over seeds is possible; the interval is unbounded
    ([-Infinity, Infinity] as [number, number]);

  // CEG at the smallest compute: geometric mean over seeds of each seed's CEG nearest the smallest C
  const cMin = Math.min(...points.map((p) => p.C));
  const atMin = bySeed.map(
    (ps) => ps.reduce((a, b) => (Math.abs(Math.log(b.C / cMin)) < Math.abs(Math.log(a.C / cMin)) ? b : a)).ceg,
  );
  const cegAtSmallest = geometricMean(atMin);
  const cegAtSmallestCi = bootstrapCi(atMin, geometricMean, opts.bootstrap) ?? ([0, Infinity] as [number, number]);

  const base = { slope, ci, cegAtSmallest, cegAtSmallestCi, nSeeds: seeds.length };
  const ciTxt = `slope ${fmt(slope)} per decade, CI [${fmt(ci[0])}, ${fmt(ci[1])}]`;
  if (ci[0] >= -flatTol && ci[1] <= flatTol)
    return {
      ...base,
      verdict: 'compute-independent',
      direction: 'flat',
      reason: `${ciTxt} lies within the flat band ±${flatTol}`,
    };
  if (ci[0] > 0)
    return {
      ...base,
      verdict: 'compute-dependent',
      direction: 'rising',
      reason: `${ciTxt} is above 0: CEG rises with compute`,
    };
  if (ci[1] < 0)
    return {
      ...base,
      verdict: 'compute-dependent',
      direction: 'falling',
      reason: `${ciTxt} is below 0: CEG falls with compute`,
    };
  if (cegAtSmallestCi[1] < 1 && slope > 0)
    return {
      ...base,
      verdict: 'compute-dependent',
      direction: 'rising',
      reason: `CEG ${fmt(cegAtSmallest)} < 1 at the smallest compute (CI [${fmt(cegAtSmallestCi[0])}, ${fmt(cegAtSmallestCi[1])}]) and ${ciTxt} is positive`,
    };
  return {
    ...base,
    verdict: 'undetermined',
    direction: 'unclear',
    reason: `${ciTxt} straddles the flat band ±${flatTol} and beyond it`,
  };
}

export interface SeedFits {
  seed: number;
  baseline: ScalingFit;
  variant: ScalingFit;
}

/**
 * Classify from per-seed scaling fits: each seed's CEG(C) curve (cegCurve) is sampled on a
 * log grid over the measured range (`points` per seed, default 9); points where the
 * baseline can never reach the variant's loss (CEG = Infinity) are dropped.
 */
export function classifyFromFits(
  fits: SeedFits[],
  opts: ClassifyOptions & { range?: [number, number]; points?: number } = {},
): Classification {
  const pts: CegPoint[] = [];
  for (const f of fits)
    for (const p of cegCurve(f.baseline, f.variant, { range: opts.range, points: opts.points ?? 9 }))
      if (Number.isFinite(p.ceg) && p.ceg > 0) pts.push({ seed: f.seed, C: p.C, ceg: p.ceg });
  if (pts.length === 0)
    throw new CegError('no finite CEG point from the fits (every variant loss is below the baseline floor E)');
  return classifyCeg(pts, opts);
}
