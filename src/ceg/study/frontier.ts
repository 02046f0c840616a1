/**
 * Frontier CEG at equal loss, non-parametric.
 *
 * A variant's frontier: its runs' points (cooldown forks at every rung) averaged over seeds
 * per (rung, fork), then the lower envelope of loss against compute (a point stays only if
 * its loss is below that of every point with less compute). The baseline frontier is built
 * the same way from the baseline's seeds, without its plateau points.
 *
 * CEG at a variant frontier point (C_v, L_v) = C_base(L_v) / C_v, with C_base interpolated
 * linearly in log C between the two baseline frontier points that bracket L_v. Only inside
 * the measured range: a loss above the baseline's highest non-plateau frontier loss gives
 * no CEG ('above-range'); a loss below its best gives no CEG but a lower bound
 * ('below-range': CEG >= C_base,max / C_v); a variant point on the plateau gives none
 * ('plateau'). Nothing is extrapolated.
 *
 * Intervals: seed-group t-intervals on log10 CEG (stats.ts), one group for the baseline's
 * seeds and one for the variant's; they say how many seeds they rest on and are `weak` below
 * 4 seeds a group. The slope of log10 CEG on log10 C over the points that have a CEG gets
 * its interval the same way (the slope recomputed per seed of each group).
 */
import { CegError } from '../types.js';
import { lsSlope } from '../classify.js';
import { onPlateau, PLATEAU_MARGIN } from './plateau.js';
import { seedGroupInterval, type GroupValues } from './stats.js';
import type {
  FrontierCeg,
  FrontierCegPoint,
  FrontierPoint,
  Interval,
  SlopeEstimate,
  StudyOptions,
  StudyRun,
} from './types.js';

/** A seed-averaged point of a variant, identified by rung and fork. */
export interface AveragedPoint {
  rung: string;
  fork: string;
  flops: number;
  loss: number;
  /** seeds averaged at this point */
  n: number;
}

const keyOf = (rung: string, fork: string) => `${rung}\u0000${fork}`;
const forkOf = (p: FrontierPoint) => p.fork ?? String(p.flops);

function checkRuns(runs: readonly StudyRun[]): void {
  for (const r of runs) {
    if (!Array.isArray(r.points))
      throw new CegError(`run ${r.variant} seed ${r.seed} rung ${r.rung}: points must be an array`);
    for (const p of r.points)
      if (!(p.flops > 0 && Number.isFinite(p.flops) && Number.isFinite(p.loss) && p.loss > 0))
        throw new CegError(
          `run ${r.variant} seed ${r.seed} rung ${r.rung}: frontier points need finite flops > 0 and loss > 0, got flops=${p.flops}, loss=${p.loss}`,
        );
  }
}

/** The seeds of a variant present in the runs, ascending. */
export function seedsOf(runs: readonly StudyRun[], variant: string): number[] {
  return [...new Set(runs.filter((r) => r.variant === variant).map((r) => r.seed))].sort((a, b) => a - b);
}

/**
 * Seed-averaged points of one variant: per (rung, fork), the mean loss (and FLOPs) over the
 * given seeds that have that point (default: all seeds). A seed listed twice counts twice
 * (a bootstrap resample). A seed with two runs at one rung, or two points with one fork
 * label in a run, is an error.
 */
export function averagedPoints(runs: readonly StudyRun[], variant: string, seeds?: readonly number[]): AveragedPoint[] {
  checkRuns(runs);
  let weight: Map<number, number> | null = null;
  if (seeds) {
    weight = new Map();
    for (const sd of seeds) weight.set(sd, (weight.get(sd) ?? 0) + 1);
  }
  const acc = new Map<string, { rung: string; fork: string; flops: number; loss: number; n: number }>();
  const seen = new Set<string>();
  for (const r of runs) {
    if (r.variant !== variant) continue;
    const w = weight ? (weight.get(r.seed) ?? 0) : 1;
    if (w === 0) continue;
    const runKey = `${r.seed}\u0000${r.rung}`;
    if (seen.has(runKey)) throw new CegError(`variant ${variant} has two runs for seed ${r.seed} at rung ${r.rung}`);
    seen.add(runKey);
    const forks = new Set<string>();
    for (const p of r.points) {
      const fork = forkOf(p);
      if (forks.has(fork))
        throw new CegError(`run ${variant} seed ${r.seed} rung ${r.rung}: fork "${fork}" appears twice`);
      forks.add(fork);
      const k = keyOf(r.rung, fork);
      const a = acc.get(k) ?? { rung: r.rung, fork, flops: 0, loss: 0, n: 0 };
      a.flops += w * p.flops;
      a.loss += w * p.loss;
      a.n += w;
      acc.set(k, a);
    }
  }
  return [...acc.values()].map((a) => ({
    rung: a.rung,
    fork: a.fork,
    flops: a.flops / a.n,
    loss: a.loss / a.n,
    n: a.n,
  }));
}

/** Lower envelope of loss against compute: ascending compute, strictly falling loss. */
export function paretoFrontier<T extends { flops: number; loss: number }>(points: readonly T[]): T[] {
  const sorted = [...points].sort((a, b) => a.flops - b.flops || a.loss - b.loss);
  const out: T[] = [];
  for (const p of sorted) if (out.length === 0 || p.loss < out[out.length - 1].loss) out.push(p);
  return out;
}

/**
 * Compute at which a frontier (ascending compute, strictly falling loss) reaches loss L,
 * linear in log C between the bracketing points; null outside [min loss, max loss].
 */
export function computeAtLoss(frontier: readonly { flops: number; loss: number }[], L: number): number | null {
  const n = frontier.length;
  if (n === 0 || !Number.isFinite(L)) return null;
  if (L > frontier[0].loss || L < frontier[n - 1].loss) return null;
  if (n === 1) return frontier[0].flops;
  for (let i = 0; i < n - 1; i++) {
    const a = frontier[i];
    const b = frontier[i + 1];
    if (L <= a.loss && L >= b.loss) {
      const t = (a.loss - L) / (a.loss - b.loss);
      return Math.exp(Math.log(a.flops) + t * (Math.log(b.flops) - Math.log(a.flops)));
    }
  }
  return null;
}

/** The baseline frontier used for interpolation: seed-averaged, plateau points removed, lower envelope. */
export function baselineFrontier(
  runs: readonly StudyRun[],
  baseline: string,
  opts: StudyOptions = {},
  seeds?: readonly number[],
): AveragedPoint[] {
  const margin = opts.plateauMargin ?? PLATEAU_MARGIN;
  return paretoFrontier(
    averagedPoints(runs, baseline, seeds).filter((p) => !onPlateau(p.loss, opts.unigramEntropy, margin)),
  );
}

function log10CegAt(base: readonly AveragedPoint[], loss: number, flops: number): number {
  const c = computeAtLoss(base, loss);
  return c === null ? NaN : Math.log10(c / flops);
}

function slopeOver(points: { flops: number; y: number }[]): number {
  const ok = points.filter((p) => Number.isFinite(p.y));
  if (ok.length < 2) return NaN;
  return lsSlope(
    ok.map((p) => Math.log10(p.flops)),
    ok.map((p) => p.y),
  );
}

const toCegScale = (iv: Interval): Interval => ({ ...iv, lo: 10 ** iv.lo, hi: 10 ** iv.hi });

/**
 * Frontier CEG of `variant` against `baseline` at equal loss (see the module doc). Throws
 * when either has no runs or they are the same id.
 */
export function frontierCeg(
  runs: readonly StudyRun[],
  opts: StudyOptions & { baseline: string; variant: string },
): FrontierCeg {
  const { baseline, variant } = opts;
  if (baseline === variant) throw new CegError(`frontierCeg: the variant and the baseline are both "${variant}"`);
  const level = opts.level ?? 0.95;
  const margin = opts.plateauMargin ?? PLATEAU_MARGIN;
  const bSeeds = seedsOf(runs, baseline);
  const vSeeds = seedsOf(runs, variant);
  if (bSeeds.length === 0) throw new CegError(`frontierCeg: no runs of the baseline "${baseline}"`);
  if (vSeeds.length === 0) throw new CegError(`frontierCeg: no runs of the variant "${variant}"`);

  const base = baselineFrontier(runs, baseline, opts);
  const baseBySeed = bSeeds.map((s) => baselineFrontier(runs, baseline, opts, [s]));
  const vFront = paretoFrontier(averagedPoints(runs, variant));
  const vBySeed = vSeeds.map((s) => new Map(averagedPoints(runs, variant, [s]).map((p) => [keyOf(p.rung, p.fork), p])));

  const points: FrontierCegPoint[] = [];
  const withCeg: { p: AveragedPoint; y: number }[] = [];
  const bMax = base.length ? base[0].loss : NaN;
  const bMin = base.length ? base[base.length - 1].loss : NaN;
  for (const p of vFront) {
    const common = { rung: p.rung, fork: p.fork, flops: p.flops, loss: p.loss };
    if (onPlateau(p.loss, opts.unigramEntropy, margin)) {
      points.push({ ...common, ceg: null, interval: null, flag: 'plateau', bound: null });
      continue;
    }
    if (base.length === 0 || p.loss > bMax) {
      points.push({ ...common, ceg: null, interval: null, flag: 'above-range', bound: null });
      continue;
    }
    if (p.loss < bMin) {
      points.push({
        ...common,
        ceg: null,
        interval: null,
        flag: 'below-range',
        bound: { kind: 'lower', value: base[base.length - 1].flops / p.flops },
      });
      continue;
    }
    const y = log10CegAt(base, p.loss, p.flops);
    const k = keyOf(p.rung, p.fork);
    const groups: GroupValues[] = [
      { group: baseline, nSeeds: bSeeds.length, values: baseBySeed.map((bf) => log10CegAt(bf, p.loss, p.flops)) },
      {
        group: variant,
        nSeeds: vSeeds.length,
        values: vBySeed.map((m) => {
          const q = m.get(k);
          return q ? log10CegAt(base, q.loss, q.flops) : NaN;
        }),
      },
    ];
    const interval = toCegScale(seedGroupInterval(y, groups, level));
    points.push({ ...common, ceg: 10 ** y, interval, flag: null, bound: null });
    withCeg.push({ p, y });
  }

  let slope: SlopeEstimate | null = null;
  if (withCeg.length >= 2) {
    const est = slopeOver(withCeg.map((w) => ({ flops: w.p.flops, y: w.y })));
    const groups: GroupValues[] = [
      {
        group: baseline,
        nSeeds: bSeeds.length,
        values: baseBySeed.map((bf) =>
          slopeOver(withCeg.map((w) => ({ flops: w.p.flops, y: log10CegAt(bf, w.p.loss, w.p.flops) }))),
        ),
      },
      {
        group: variant,
        nSeeds: vSeeds.length,
        values: vBySeed.map((m) =>
          slopeOver(
            withCeg.map((w) => {
              const q = m.get(keyOf(w.p.rung, w.p.fork));
              return { flops: w.p.flops, y: q ? log10CegAt(base, q.loss, q.flops) : NaN };
            }),
          ),
        ),
      },
    ];
    const fl = withCeg.map((w) => w.p.flops);
    slope = {
      slope: est,
      interval: seedGroupInterval(est, groups, level),
      nPoints: withCeg.length,
      range: [Math.min(...fl), Math.max(...fl)],
    };
  }
  return {
    variant,
    baseline,
    points,
    slope,
    baselineRange: base.length ? { flops: [base[0].flops, base[base.length - 1].flops], loss: [bMin, bMax] } : null,
    baselinePlateau: averagedPoints(runs, baseline)
      .filter((p) => onPlateau(p.loss, opts.unigramEntropy, margin))
      .map(({ rung, fork, flops, loss }) => ({ rung, fork, flops, loss })),
  };
}

/**
 * log10 CEG at each point of a variant's frontier (built from `variantPoints`, plateau points
 * dropped) that lies inside the baseline frontier's loss range: ascending compute.
 */
export function log10CegCurve(
  base: readonly AveragedPoint[],
  variantPoints: readonly AveragedPoint[],
  opts: StudyOptions = {},
): { flops: number; y: number }[] {
  const margin = opts.plateauMargin ?? PLATEAU_MARGIN;
  return paretoFrontier(variantPoints)
    .filter((p) => !onPlateau(p.loss, opts.unigramEntropy, margin))
    .map((p) => ({ flops: p.flops, y: log10CegAt(base, p.loss, p.flops) }))
    .filter((p) => Number.isFinite(p.y));
}

/** Linear interpolation of y in log C on an ascending curve; NaN outside its range (no extrapolation). */
export function interpolateLogC(curve: readonly { flops: number; y: number }[], C: number): number {
  const n = curve.length;
  if (n === 0 || !(C > 0)) return NaN;
  const tol = 1e-9;
  if (C < curve[0].flops * (1 - tol) || C > curve[n - 1].flops * (1 + tol)) return NaN;
  if (n === 1) return curve[0].y;
  for (let i = 0; i < n - 1; i++) {
    const a = curve[i];
    const b = curve[i + 1];
    if (C <= b.flops * (1 + tol)) {
      if (b.flops === a.flops) return b.y;
      const t = Math.min(1, Math.max(0, (Math.log(C) - Math.log(a.flops)) / (Math.log(b.flops) - Math.log(a.flops))));
      return a.y + t * (b.y - a.y);
    }
  }
  return curve[n - 1].y;
}
