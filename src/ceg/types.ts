/**
 * Shared types of the CEG analysis. A run's curve is its list of metric rows, one per
 * evaluation (step 0 included), as the run store writes them to metrics.jsonl.
 */

import type { MetricRow as StoredMetricRow, RunRecord } from '../runs/index.js';

/**
 * One logged point of a training run as the analysis reads it: the run store's MetricRow
 * (src/runs/run.ts) narrowed to the compute axes and the losses (trainLoss, lr optional).
 * Rows whose valLoss is null carry no evaluation and are skipped by the analysis; a NaN or
 * infinite valLoss (a diverged run) counts as an evaluation that reaches no target.
 */
export type MetricRow = Pick<StoredMetricRow, 'step' | 'tokens' | 'flops' | 'seconds' | 'valLoss'> &
  Partial<Pick<StoredMetricRow, 'trainLoss' | 'lr'>>;

/** The compute axes a CEG can be measured on. */
export const AXES = ['steps', 'tokens', 'flops', 'seconds'] as const;
export type Axis = (typeof AXES)[number];

/** A run as the analysis sees it (src/runs RunRecord, narrowed): innovation, scale, seed and its curve. */
export type RunCurve = Pick<RunRecord, 'innovation' | 'scale' | 'seed'> & { metrics: MetricRow[] };

export class CegError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CegError';
  }
}

/** The value of a metric row on an axis ('steps' reads `step`). */
export function axisValue(row: MetricRow, axis: Axis): number {
  switch (axis) {
    case 'steps':
      return row.step;
    case 'tokens':
      return row.tokens;
    case 'flops':
      return row.flops;
    case 'seconds':
      return row.seconds;
    default:
      throw new CegError(`unknown axis "${String(axis)}"; valid: ${AXES.join(', ')}`);
  }
}

export function checkAxis(axis: string): Axis {
  if (!(AXES as readonly string[]).includes(axis))
    throw new CegError(`unknown axis "${axis}"; valid: ${AXES.join(', ')}`);
  return axis as Axis;
}

/**
 * The evaluation rows of a curve: rows with a numeric valLoss (null = no evaluation),
 * non-finite losses replaced by +Infinity. Throws unless at least one remains and steps
 * increase strictly.
 */
export function evalRows(rows: MetricRow[], what: string): (MetricRow & { valLoss: number })[] {
  if (!Array.isArray(rows)) throw new CegError(`${what}: the curve must be an array of metric rows`);
  const out = rows
    .filter((r) => typeof r.valLoss === 'number')
    .map((r) => (Number.isFinite(r.valLoss) ? r : { ...r, valLoss: Infinity })) as (MetricRow & { valLoss: number })[];
  if (out.length === 0) throw new CegError(`${what}: the curve has no evaluation (no row with a valLoss)`);
  for (let i = 1; i < out.length; i++)
    if (!(out[i].step > out[i - 1].step))
      throw new CegError(`${what}: steps must increase strictly; step ${out[i].step} follows ${out[i - 1].step}`);
  return out;
}
