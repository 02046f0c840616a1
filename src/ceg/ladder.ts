/**
 * Scaling-ladder analysis: from runs of one innovation at several model sizes / budgets
 * (the ladder rungs of src/scales.ts) to fitted loss-vs-compute curves and the
 * compute-dependence verdict. Pure functions over metric rows; a run's `scale` names its
 * ladder rung (e.g. micro-r2).
 */
import * as aq from 'arquero';
import { getInnovation, type PaperCategory } from '../innovations.js';
import { fitScaling, type ScalingFit, type ScalingPoint } from './fit.js';
import { classifyFromFits, type Classification, type ClassifyOptions, type SeedFits } from './classify.js';
import type { RunCurve } from './types.js';

type Table = ReturnType<typeof aq.from>;

export interface ScalingResult {
  innovation: string;
  points: ScalingPoint[];
  fit: ScalingFit;
  /** per-seed fits (for the verdict's bootstrap) */
  seedFits: { seed: number; fit: ScalingFit }[];
}

/** (C, L) per ladder run: C = training FLOPs, L = the run's best validation loss. */
function ladderPoints(runs: readonly RunCurve[]): Map<string, Map<number, ScalingPoint[]>> {
  const by = new Map<string, Map<number, ScalingPoint[]>>();
  for (const r of runs) {
    const last = r.metrics[r.metrics.length - 1];
    const vals = r.metrics.map((m) => m.valLoss).filter((v): v is number => typeof v === 'number');
    if (!last || vals.length === 0) continue;
    const seeds = by.get(r.innovation) ?? new Map<number, ScalingPoint[]>();
    seeds.set(r.seed, [...(seeds.get(r.seed) ?? []), { C: last.flops, L: Math.min(...vals) }]);
    by.set(r.innovation, seeds);
  }
  return by;
}

export interface ScalingAnalysis {
  /** innovations whose pooled fit succeeded */
  fits: ScalingResult[];
  /** innovations left out, and why (fewer than 3 ladder rungs, a failed or non-finite fit) */
  skipped: { innovation: string; reason: string }[];
  /** warnings about fits that exist but should be read with care */
  notes: string[];
}

/**
 * Fit L(C) = E + A·C^(−α) per innovation (all seeds pooled) and per seed, never throwing:
 * an innovation whose fit cannot be made is listed in `skipped` with the reason.
 */
export function scalingAnalysis(runs: readonly RunCurve[]): ScalingAnalysis {
  const fits: ScalingResult[] = [];
  const skipped: { innovation: string; reason: string }[] = [];
  const notes: string[] = [];
  for (const [innovation, seeds] of ladderPoints(runs)) {
    const points = [...seeds.values()].flat();
    const distinct = new Set(runs.filter((r) => r.innovation === innovation).map((r) => r.scale)).size;
    if (distinct < 3) {
      skipped.push({ innovation, reason: `${distinct} ladder rung(s); a fit of E, A, α needs at least 3` });
      continue;
    }
    let fit: ScalingFit;
    try {
      fit = fitScaling(points);
    } catch (e) {
      skipped.push({ innovation, reason: `fit failed: ${(e as Error).message}` });
      continue;
    }
    if (![fit.E, fit.A, fit.alpha].every(Number.isFinite)) {
      skipped.push({ innovation, reason: `fit is not finite (E=${fit.E}, A=${fit.A}, α=${fit.alpha})` });
      continue;
    }
    if (!fit.converged) notes.push(`${innovation}: the fit did not converge; treat its curve as a rough guide`);
    if (distinct === 3 && seeds.size === 1)
      notes.push(
        `${innovation}: 3 points for 3 parameters: the curve passes through them exactly and has no residual to judge it by`,
      );
    const seedFits: { seed: number; fit: ScalingFit }[] = [];
    for (const [seed, p] of seeds) {
      if (p.length < 3) continue;
      try {
        seedFits.push({ seed, fit: fitScaling(p) });
      } catch (e) {
        notes.push(`${innovation} seed ${seed}: per-seed fit failed (${(e as Error).message})`);
      }
    }
    fits.push({ innovation, points, fit, seedFits });
  }
  return { fits, skipped, notes };
}

/** Fit L(C) = E + A·C^(−α) per innovation (all seeds pooled) and per seed; innovations that cannot be fitted are left out (see scalingAnalysis). */
export function scalingFits(runs: readonly RunCurve[]): ScalingResult[] {
  return scalingAnalysis(runs).fits;
}

/** One innovation's compute-dependence verdict (column names as the notebooks show them). */
export interface VerdictRow {
  innovation: string;
  paper_category: PaperCategory;
  /** seed pairs with both a baseline and a variant fit */
  seeds: number;
  /** slope of log CEG on log C, its bootstrap 95% interval; null when undetermined */
  slope: number | null;
  ci_low: number | null;
  ci_high: number | null;
  ceg_at_smallest: number | null;
  verdict: Classification['verdict'] | 'undetermined';
  reason: string;
}

/** verdictRows as an arquero table (notebooks). */
export function verdicts(runs: readonly RunCurve[], opts: ClassifyOptions = {}): Table {
  return aq.from(verdictRows(runs, opts));
}

/**
 * Compute-dependence verdict per innovation from per-seed fits against the baseline's. Never
 * throws on data: an innovation that cannot be judged gets verdict 'undetermined' and the reason.
 */
export function verdictRows(runs: readonly RunCurve[], opts: ClassifyOptions = {}): VerdictRow[] {
  const { fits, skipped } = scalingAnalysis(runs);
  const base = fits.find((f) => f.innovation === 'baseline');
  const baseSkip = skipped.find((x) => x.innovation === 'baseline');
  const ids = [...new Set(runs.map((r) => r.innovation))].filter((id) => id !== 'baseline');
  return ids.map((id): VerdictRow => {
    const f = fits.find((x) => x.innovation === id);
    let c: Classification | null = null;
    let error: string | null = null;
    let nPairs = 0;
    if (!base) error = `no baseline fit (${baseSkip?.reason ?? 'no baseline runs on the ladder'})`;
    else if (!f) error = skipped.find((x) => x.innovation === id)?.reason ?? 'no fit';
    else {
      const pairs = f.seedFits
        .map((s) => ({ seed: s.seed, variant: s.fit, baseline: base.seedFits.find((b) => b.seed === s.seed)?.fit }))
        .filter((p): p is SeedFits => p.baseline !== undefined);
      nPairs = pairs.length;
      if (pairs.length === 0) error = 'no seed has both a baseline and a variant fit';
      else
        try {
          c = classifyFromFits(pairs, opts);
        } catch (e) {
          error = (e as Error).message;
        }
    }
    const oneSeed =
      c && nPairs < 2 ? ' (one seed: the bootstrap over seeds cannot bound the slope; run more seeds)' : '';
    return {
      innovation: id,
      paper_category: getInnovation(id).category,
      seeds: nPairs,
      slope: c?.slope ?? null,
      ci_low: c?.ci[0] ?? null,
      ci_high: c?.ci[1] ?? null,
      ceg_at_smallest: c?.cegAtSmallest ?? null,
      verdict: c?.verdict ?? 'undetermined',
      reason: (c?.reason ?? error) + oneSeed,
    };
  });
}
