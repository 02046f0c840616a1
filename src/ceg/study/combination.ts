/**
 * Combination vs product of parts: does FA+RoPE+LN gain what FA, RoPE and LN gain
 * separately, multiplied? At each frontier point of the combination that has a CEG, the
 * parts' log10 CEGs are interpolated in log C along their own frontier-CEG curves (inside
 * their measured ranges only) and summed; ratio = measured / product (1: the parts
 * multiply; > 1: they help each other; < 1: they overlap). Interval: the seed-group
 * t-interval on log10 ratio with one group per variant involved (baseline, combination,
 * each part).
 */
import { CegError } from '../types.js';
import { averagedPoints, baselineFrontier, interpolateLogC, log10CegCurve, seedsOf } from './frontier.js';
import { seedGroupInterval, type GroupValues } from './stats.js';
import type { CombinationCheck, CombinationPoint, StudyOptions, StudyRun } from './types.js';

export function combinationVsProduct(
  runs: readonly StudyRun[],
  opts: StudyOptions & { baseline: string; combination: string; parts: string[] },
): CombinationCheck {
  const { baseline, combination, parts } = opts;
  if (parts.length === 0) throw new CegError(`combination ${combination}: no parts given`);
  const ids = [baseline, combination, ...parts];
  if (new Set(ids).size !== ids.length)
    throw new CegError(`combination check: baseline, combination and parts must be distinct, got ${ids.join(', ')}`);
  const seeds = new Map(ids.map((id) => [id, seedsOf(runs, id)]));
  for (const [id, s] of seeds) if (s.length === 0) throw new CegError(`combination check: no runs of "${id}"`);
  const level = opts.level ?? 0.95;

  // log10 ratio at compute C with each id averaged over `sel(id)` seeds
  const curves = (sel: (id: string) => readonly number[]) => {
    const base = baselineFrontier(runs, baseline, opts, sel(baseline));
    const curveOf = (id: string) => log10CegCurve(base, averagedPoints(runs, id, sel(id)), opts);
    return { combo: curveOf(combination), parts: parts.map(curveOf) };
  };
  const ratioAt = (
    c: { combo: { flops: number; y: number }[]; parts: { flops: number; y: number }[][] },
    C: number,
  ) => {
    const m = interpolateLogC(c.combo, C);
    const p = c.parts.reduce((s, pc) => s + interpolateLogC(pc, C), 0);
    return { m, p, r: m - p };
  };
  const all = (id: string) => seeds.get(id)!;
  const full = curves(all);
  const perSeed = ids.map((g) => seeds.get(g)!.map((s) => curves((id) => (id === g ? [s] : all(id)))));

  const points: CombinationPoint[] = [];
  for (const { flops } of full.combo) {
    const { m, p, r } = ratioAt(full, flops);
    if (!Number.isFinite(r)) continue; // a part has no CEG at this compute (outside its range)
    const groups: GroupValues[] = ids.map((g, k) => ({
      group: g,
      nSeeds: seeds.get(g)!.length,
      values: perSeed[k].map((c) => ratioAt(c, flops).r),
    }));
    const iv = seedGroupInterval(r, groups, level);
    points.push({
      flops,
      measured: 10 ** m,
      product: 10 ** p,
      ratio: 10 ** r,
      interval: { ...iv, lo: 10 ** iv.lo, hi: 10 ** iv.hi },
    });
  }
  return { combination, parts, points };
}
