/**
 * Small statistics for the study analysis: Student's t quantile (any real df > 0) and the
 * seed-group t-interval every study interval uses.
 *
 * The seed-group interval: a statistic S depends on several groups of seeds (the baseline's,
 * the variant's, ...), each group entering through a seed average. Its variance is estimated
 * one group at a time: recompute S with that group reduced to one seed (all other groups
 * averaged over all their seeds), take the sample variance s_g² of those n_g values, and add
 * s_g²/n_g (the variance of a mean of n_g seeds). This is the delta method with the per-seed
 * spread measured, not assumed. Degrees of freedom by Welch–Satterthwaite:
 * df = (Σ s_g²/n_g)² / Σ (s_g²/n_g)²/(n_g − 1). Interval: S ± t_df · se. A group with one
 * seed has no measured spread: the interval is then unbounded (±∞), and says so.
 */
import { CegError } from '../types.js';
import type { Interval } from './types.js';

/** log Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; ~1e-15 relative). */
export function logGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the regularized incomplete beta (Lentz's method). */
function betaCf(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 500; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** Regularized incomplete beta I_x(a, b), 0 <= x <= 1. */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const lbt = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x);
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(lbt) * betaCf(a, b, x)) / a;
  return 1 - (Math.exp(lbt) * betaCf(b, a, 1 - x)) / b;
}

/** Student's t CDF with 0 < df < ∞ degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0 && Number.isFinite(df))) throw new CegError(`t distribution: df must be finite and > 0, got ${df}`);
  const x = df / (df + t * t);
  const tail = 0.5 * incompleteBeta(x, df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** Quantile of Student's t: the t with CDF(t) = p, 0 < p < 1 (bisection to 1e-12 relative). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new CegError(`t quantile: p must be in (0, 1), got ${p}`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) {
    hi *= 2;
    if (hi > 1e12) return Infinity;
  }
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = 0.5 * (lo + hi);
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/** Sample variance (n − 1 denominator); NaN with fewer than 2 values. */
export function sampleVariance(values: number[]): number {
  const n = values.length;
  if (n < 2) return NaN;
  let m = 0;
  for (const v of values) m += v;
  m /= n;
  let s = 0;
  for (const v of values) s += (v - m) ** 2;
  return s / (n - 1);
}

/** Per-seed values of a statistic for one group of seeds (see the module doc). */
export interface GroupValues {
  /** group name, e.g. the variant id */
  group: string;
  /** the statistic recomputed with this group reduced to each one of its seeds (non-finite values are dropped) */
  values: number[];
  /** seeds in the group (values.length may be smaller when a one-seed value was not defined) */
  nSeeds: number;
}

/** Groups with fewer seeds than this make an interval `weak`. */
export const WEAK_SEEDS = 4;

/**
 * t-interval of `estimate` (on whatever scale it is given: the callers pass log10 CEG or a
 * slope) from per-seed values per group (see the module doc).
 */
export function seedGroupInterval(estimate: number, groups: GroupValues[], level = 0.95): Interval {
  if (!(level > 0 && level < 1)) throw new CegError(`confidence level must be in (0, 1), got ${level}`);
  const nSeeds: Record<string, number> = {};
  for (const g of groups) nSeeds[g.group] = g.nSeeds;
  const seedsTxt = groups.map((g) => `${g.nSeeds} ${g.group} seed${g.nSeeds === 1 ? '' : 's'}`).join(', ');
  const weak = groups.some((g) => g.nSeeds < WEAK_SEEDS);
  let v = 0;
  let dfDen = 0;
  const single: string[] = [];
  for (const g of groups) {
    const vals = g.values.filter(Number.isFinite);
    if (vals.length < 2) {
      single.push(g.group);
      continue;
    }
    const term = sampleVariance(vals) / vals.length;
    v += term;
    dfDen += (term * term) / (vals.length - 1);
  }
  const pct = Math.round(level * 100);
  if (single.length > 0 || !Number.isFinite(estimate))
    return {
      lo: -Infinity,
      hi: Infinity,
      level,
      method: 'welch-t',
      nSeeds,
      weak: true,
      note: `${pct}% t-interval over seeds (${seedsTxt}): unbounded, ${single.length ? `${single.join(', ')} has fewer than 2 seeds with a value` : 'no estimate'}`,
    };
  const se = Math.sqrt(v);
  const df = dfDen > 0 ? (v * v) / dfDen : Infinity;
  const t = se > 0 ? studentTQuantile((1 + level) / 2, df) : 0;
  return {
    lo: estimate - t * se,
    hi: estimate + t * se,
    level,
    method: 'welch-t',
    nSeeds,
    df,
    weak,
    note:
      `${pct}% t-interval over seeds (${seedsTxt}; df ${Number.isFinite(df) ? df.toFixed(1) : '∞'})` +
      (weak ? `: weak, fewer than ${WEAK_SEEDS} seeds in a group` : ''),
  };
}
