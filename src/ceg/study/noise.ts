/**
 * Noise: the run-to-run spread of the final loss per rung (from seeds), and the study's
 * noise floor measured on a placebo (fused attention: the same math as the baseline, so
 * its true CEG is 1 at every compute and its true slope 0).
 */
import { frontierCeg } from './frontier.js';
import type { LossSpread, NoiseFloor, StudyOptions, StudyRun } from './types.js';
import { sampleVariance } from './stats.js';

/**
 * Per (variant, rung): mean and sample standard deviation over seeds of the final loss
 * (the loss at the run's largest-compute point, i.e. its last fork).
 */
export function lossSpread(runs: readonly StudyRun[]): LossSpread[] {
  const by = new Map<string, { variant: string; rung: string; losses: number[] }>();
  for (const r of runs) {
    if (r.points.length === 0) continue;
    const last = r.points.reduce((a, b) => (b.flops > a.flops ? b : a));
    const k = `${r.variant}\u0000${r.rung}`;
    const a = by.get(k) ?? { variant: r.variant, rung: r.rung, losses: [] };
    a.losses.push(last.loss);
    by.set(k, a);
  }
  return [...by.values()].map(({ variant, rung, losses }) => {
    const v = sampleVariance(losses);
    return {
      variant,
      rung,
      n: losses.length,
      mean: losses.reduce((s, x) => s + x, 0) / losses.length,
      sd: Number.isFinite(v) ? Math.sqrt(v) : null,
    };
  });
}

/** Default smallest flat band on a slope (per decade): CEG drifting by at most ×1.12 per decade. */
export const MIN_SLOPE_FLOOR = 0.05;

/**
 * The noise floor from the placebo's frontier CEG against the baseline: the flat band for
 * slopes is the largest |bound| of its slope interval (at least minFloor), and the CEG floor
 * the largest |log10 CEG| bound over its points. `consistent` is false when the placebo's
 * slope interval excludes 0 or a point's CEG interval excludes 1: then the study has a
 * problem (find out why before reading any verdict).
 */
export function noiseFloor(
  runs: readonly StudyRun[],
  opts: StudyOptions & { baseline: string; placebo: string; minFloor?: number },
): NoiseFloor {
  const minFloor = opts.minFloor ?? MIN_SLOPE_FLOOR;
  const frontier = frontierCeg(runs, { ...opts, variant: opts.placebo });
  const iv = frontier.slope?.interval ?? null;
  let slopeFloor = minFloor;
  let note: string;
  const measured = !!iv && Number.isFinite(iv.lo) && Number.isFinite(iv.hi);
  if (!iv) note = `the placebo has fewer than 2 frontier points with a CEG: no slope, the band is not measured`;
  else if (!measured) note = `the placebo's slope interval is unbounded (${iv.note}): the band is not measured`;
  else {
    const m = Math.max(Math.abs(iv.lo), Math.abs(iv.hi));
    slopeFloor = Math.max(minFloor, m);
    note =
      m > minFloor
        ? `flat band = the placebo's largest slope bound ${m.toFixed(3)} per decade (${iv.note})`
        : `the placebo's slope bound ${m.toFixed(3)} is below the minimum band ${minFloor}`;
  }
  let log10CegFloor: number | null = null;
  let consistent = iv ? iv.lo <= 0 && iv.hi >= 0 : true;
  for (const p of frontier.points) {
    if (!p.interval) continue;
    const b = Math.max(Math.abs(Math.log10(p.interval.lo)), Math.abs(Math.log10(p.interval.hi)));
    if (Number.isFinite(b)) log10CegFloor = Math.max(log10CegFloor ?? 0, b);
    if (!(p.interval.lo <= 1 && p.interval.hi >= 1)) consistent = false;
  }
  return {
    placebo: opts.placebo,
    measuredAgainst: opts.baseline,
    slopeFloor,
    log10CegFloor,
    consistent,
    measured,
    note,
    frontier,
  };
}
