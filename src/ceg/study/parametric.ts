/**
 * The parametric check: L = E + A·C^−α for the baseline and the variant with ONE shared E
 * (fitSharedE in ../fit.ts: Huber loss on log residuals, IRLS, a grid of starting points),
 * fitted to each one's seed-averaged frontier without plateau points.
 *
 * With a shared E the CEG is a pure power law in C:
 *   L_v(C) − E = A_v C^−α_v  ⇒  C_b(L_v(C)) = (A_b / (A_v C^−α_v))^(1/α_b)
 *   ⇒ CEG(C) = C_b/C ∝ C^(α_v/α_b − 1),
 * so the slope of log CEG on log C is exactly α_v/α_b − 1 (per decade of compute, CEG
 * multiplies by 10^slope) and no fitted floor difference can fake a compute dependence.
 *
 * Interval: percentile bootstrap over seeds (each group's seeds resampled with replacement,
 * the frontiers re-averaged, the fit redone warm-started from the full-data solution). A
 * group with fewer than 2 seeds gives an unbounded interval; below 4 seeds a group the
 * interval is marked weak.
 *
 * CEG(C) from the fits (parametricCegAt) is given only up to half a decade (×√10) beyond
 * the range both groups were measured on; past that it is refused, never extrapolated.
 */
import { CegError } from '../types.js';
import { fitSharedE, computeForLoss, predictLoss, MAX_EXTRAPOLATION, type FitOptions } from '../fit.js';
import { mulberry32, quantile } from '../random.js';
import { baselineFrontier, seedsOf } from './frontier.js';
import { WEAK_SEEDS } from './stats.js';
import type { Interval, ParametricCeg, ParametricCegAt, StudyOptions, StudyRun } from './types.js';

export interface ParametricOptions extends StudyOptions {
  baseline: string;
  variant: string;
  /** bootstrap over seeds: resamples (default 200) and seed (default 0) */
  bootstrap?: { resamples?: number; seed?: number };
  /** options of the full-data fit (grid of starts etc.) */
  fit?: FitOptions;
}

function frontierPoints(runs: readonly StudyRun[], id: string, opts: StudyOptions, seeds?: readonly number[]) {
  return baselineFrontier(runs, id, opts, seeds).map((p) => ({ C: p.flops, L: p.loss }));
}

function bootstrapInterval(
  values: number[],
  level: number,
  nSeeds: Record<string, number>,
  failed: number,
  resamples: number,
): Interval {
  const weak = Object.values(nSeeds).some((n) => n < WEAK_SEEDS);
  const seedsTxt = Object.entries(nSeeds)
    .map(([g, n]) => `${n} ${g} seed${n === 1 ? '' : 's'}`)
    .join(', ');
  const pct = Math.round(level * 100);
  const single = Object.entries(nSeeds)
    .filter(([, n]) => n < 2)
    .map(([g]) => g);
  if (single.length || values.length === 0)
    return {
      lo: -Infinity,
      hi: Infinity,
      level,
      method: 'bootstrap',
      nSeeds,
      weak: true,
      note: `${pct}% bootstrap over seeds (${seedsTxt}): unbounded, ${single.length ? `${single.join(', ')} has one seed` : 'every refit failed'}`,
    };
  return {
    lo: quantile(values, (1 - level) / 2),
    hi: quantile(values, (1 + level) / 2),
    level,
    method: 'bootstrap',
    nSeeds,
    weak,
    note:
      `${pct}% percentile bootstrap over seeds (${seedsTxt}; ${resamples} resamples${failed ? `, ${failed} failed refits dropped` : ''})` +
      (weak ? `: weak, fewer than ${WEAK_SEEDS} seeds in a group` : ''),
  };
}

/** Shared-E fit of baseline and variant, its CEG slope α_v/α_b − 1 and a seed bootstrap (see the module doc). */
export function parametricCeg(runs: readonly StudyRun[], opts: ParametricOptions): ParametricCeg {
  const { baseline, variant } = opts;
  if (baseline === variant) throw new CegError(`parametricCeg: the variant and the baseline are both "${variant}"`);
  const level = opts.level ?? 0.95;
  const resamples = opts.bootstrap?.resamples ?? 200;
  if (!(Number.isInteger(resamples) && resamples >= 0))
    throw new CegError(`bootstrap resamples must be an integer >= 0, got ${resamples}`);
  const bSeeds = seedsOf(runs, baseline);
  const vSeeds = seedsOf(runs, variant);
  const bPts = frontierPoints(runs, baseline, opts);
  const vPts = frontierPoints(runs, variant, opts);
  for (const [id, pts] of [
    [baseline, bPts],
    [variant, vPts],
  ] as const)
    if (pts.length < 2)
      throw new CegError(
        `parametricCeg: "${id}" has ${pts.length} frontier point(s) off the plateau; the shared-E fit needs at least 2 per group`,
      );
  const fit = fitSharedE(
    [
      { id: baseline, points: bPts },
      { id: variant, points: vPts },
    ],
    opts.fit,
  );
  const [fb, fv] = fit.groups;
  const slope = fv.alpha / fb.alpha - 1;
  const range: [number, number] = [Math.max(fb.range[0], fv.range[0]), Math.min(fb.range[1], fv.range[1])];

  const rand = mulberry32(opts.bootstrap?.seed ?? 0);
  const draw = (seeds: number[]) => seeds.map(() => seeds[Math.floor(rand() * seeds.length)]);
  const samples: ParametricCeg['samples'] = [];
  let failed = 0;
  const start = { E: fit.E, groups: fit.groups.map((g) => ({ A: g.A, alpha: g.alpha })) };
  // with few seeds most resamples repeat a multiset of seeds (3 + 2 seeds: 30 distinct pairs):
  // refit each distinct one once; the percentiles still count every draw
  const cache = new Map<string, ParametricCeg['samples'][number] | null>();
  for (let b = 0; b < resamples; b++) {
    const bs = draw(bSeeds);
    const vs = draw(vSeeds);
    const key = `${[...bs].sort((x, y) => x - y).join(',')}|${[...vs].sort((x, y) => x - y).join(',')}`;
    if (cache.has(key)) {
      const hit = cache.get(key)!;
      if (hit) samples.push(hit);
      else failed++;
      continue;
    }
    cache.set(key, null);
    try {
      const pb = frontierPoints(runs, baseline, opts, bs);
      const pv = frontierPoints(runs, variant, opts, vs);
      const r = fitSharedE(
        [
          { id: baseline, points: pb },
          { id: variant, points: pv },
        ],
        {
          ...opts.fit,
          alphaGrid: [],
          eFractions: [],
          starts: [start],
        },
      );
      const s = { E: r.E, Ab: r.groups[0].A, alphab: r.groups[0].alpha, Av: r.groups[1].A, alphav: r.groups[1].alpha };
      if (Object.values(s).every(Number.isFinite)) {
        samples.push(s);
        cache.set(key, s);
      } else failed++;
    } catch {
      failed++;
    }
  }
  const nSeeds = { [baseline]: bSeeds.length, [variant]: vSeeds.length };
  const slopeInterval = bootstrapInterval(
    samples.map((s) => s.alphav / s.alphab - 1),
    level,
    nSeeds,
    failed,
    resamples,
  );
  return { variant, baseline, fit, slope, slopeInterval, range, samples, failed };
}

function cegFrom(E: number, Ab: number, alphab: number, Av: number, alphav: number, C: number): number {
  return computeForLoss({ E, A: Ab, alpha: alphab }, predictLoss({ E, A: Av, alpha: alphav }, C)) / C;
}

/**
 * CEG(C) = C_b(L_v(C))/C from a parametric check, with its bootstrap interval; refused
 * (ceg null, refused true) when C lies more than half a decade outside the measured range.
 */
export function parametricCegAt(pc: ParametricCeg, C: number, level = 0.95): ParametricCegAt {
  if (!(C > 0 && Number.isFinite(C))) throw new CegError(`parametricCegAt: compute must be finite and > 0, got ${C}`);
  const [lo, hi] = pc.range;
  const tol = 1e-9;
  if (C > hi * MAX_EXTRAPOLATION * (1 + tol) || C < (lo / MAX_EXTRAPOLATION) * (1 - tol))
    return {
      C,
      ceg: null,
      interval: null,
      extrapolated: true,
      refused: true,
      reason: `C = ${C.toExponential(2)} is more than half a decade outside the measured range [${lo.toExponential(2)}, ${hi.toExponential(2)}]`,
    };
  const [fb, fv] = pc.fit.groups;
  const ceg = cegFrom(pc.fit.E, fb.A, fb.alpha, fv.A, fv.alpha, C);
  const values = pc.samples
    .map((s) => Math.log10(cegFrom(s.E, s.Ab, s.alphab, s.Av, s.alphav, C)))
    .filter(Number.isFinite);
  const nSeeds = pc.slopeInterval.nSeeds;
  const iv = bootstrapInterval(values, level, nSeeds, pc.failed, pc.samples.length + pc.failed);
  return {
    C,
    ceg,
    interval: { ...iv, lo: 10 ** iv.lo, hi: 10 ** iv.hi },
    extrapolated: C > hi * (1 + tol) || C < lo * (1 - tol),
    refused: false,
    reason: null,
  };
}
