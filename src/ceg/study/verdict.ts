/**
 * Verdicts from a slope of log10 CEG on log10 C and its interval, against the flat band
 * ±floor (the study's noise floor, noise.ts):
 * 1. interval unbounded or wider than maxWidth (default 0.5 per decade) → inconclusive
 *    (too few seeds or too short a compute range to say);
 * 2. interval inside [−floor, floor]    → compute-independent (flat), unless the band is wider
 *    than ±maxFloor (default maxWidth / 2): a placebo that noisy cannot show a flat CEG, so
 *    inconclusive;
 * 3. interval above +floor              → compute-dependent (rising: the gain grows with compute);
 * 4. interval below −floor              → compute-dependent (falling: the gain fades);
 * 5. otherwise (it overlaps the band and reaches beyond it) → inconclusive.
 * An infinite floor (placebos that have not measured a band) is inconclusive at once.
 * Two estimates (non-parametric frontier, parametric fit) combine by agreement: the same
 * verdict and direction, else inconclusive.
 */
import { CegError } from '../types.js';
import { MIN_SLOPE_FLOOR } from './noise.js';
import type { Interval, VerdictResult } from './types.js';

/** Default widest slope interval (per decade) that can still give a verdict. */
export const MAX_SLOPE_WIDTH = 0.5;

const f3 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : String(v));

export function slopeVerdict(
  slope: number,
  interval: Pick<Interval, 'lo' | 'hi'>,
  opts: { floor?: number; maxWidth?: number; maxFloor?: number } = {},
): VerdictResult {
  const floor = opts.floor ?? MIN_SLOPE_FLOOR;
  const maxWidth = opts.maxWidth ?? MAX_SLOPE_WIDTH;
  const maxFloor = opts.maxFloor ?? maxWidth / 2;
  if (!(floor >= 0)) throw new CegError(`verdict floor must be >= 0, got ${floor}`);
  if (!(maxWidth > 0)) throw new CegError(`verdict maxWidth must be > 0, got ${maxWidth}`);
  const { lo, hi } = interval;
  const txt = `slope ${f3(slope)} per decade, interval [${f3(lo)}, ${f3(hi)}]`;
  if (floor === Number.POSITIVE_INFINITY)
    return {
      verdict: 'inconclusive',
      direction: 'unclear',
      floor,
      reason: `${txt}; no placebo has measured the noise band yet (their slope intervals are unbounded): no verdict`,
    };
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || !Number.isFinite(slope))
    return {
      verdict: 'inconclusive',
      direction: 'unclear',
      floor,
      reason: `${txt} is unbounded: too few seeds or points`,
    };
  if (hi - lo > maxWidth)
    return {
      verdict: 'inconclusive',
      direction: 'unclear',
      floor,
      reason: `${txt} is wider than ${maxWidth}: more seeds or a wider compute range needed`,
    };
  if (lo >= -floor && hi <= floor && floor > maxFloor)
    return {
      verdict: 'inconclusive',
      direction: 'unclear',
      floor,
      reason: `${txt} lies inside the flat band ±${f3(floor)}, but a band wider than ±${f3(maxFloor)} (the placebo's noise) cannot show a flat CEG`,
    };
  if (lo >= -floor && hi <= floor)
    return {
      verdict: 'compute-independent',
      direction: 'flat',
      floor,
      reason: `${txt} lies inside the flat band ±${f3(floor)}`,
    };
  if (lo > floor)
    return {
      verdict: 'compute-dependent',
      direction: 'rising',
      floor,
      reason: `${txt} lies above the flat band +${f3(floor)}: the gain grows with compute`,
    };
  if (hi < -floor)
    return {
      verdict: 'compute-dependent',
      direction: 'falling',
      floor,
      reason: `${txt} lies below the flat band −${f3(floor)}: the gain fades with compute`,
    };
  return {
    verdict: 'inconclusive',
    direction: 'unclear',
    floor,
    reason: `${txt} overlaps the flat band ±${f3(floor)} and reaches beyond it`,
  };
}

/** Combine two verdicts (non-parametric and parametric): agreement, else inconclusive. */
export function combineVerdicts(a: VerdictResult, b: VerdictResult): VerdictResult {
  if (a.verdict === b.verdict && a.direction === b.direction)
    return { ...a, reason: `both agree: ${a.reason}; ${b.reason}` };
  return {
    verdict: 'inconclusive',
    direction: 'unclear',
    floor: a.floor,
    reason: `the estimates disagree: frontier says ${a.verdict} (${a.reason}); fit says ${b.verdict} (${b.reason})`,
  };
}
