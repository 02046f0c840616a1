/**
 * The one run type: a run as the trainer returns it and the store's readers load it, and as
 * the CEG analysis, the report and the notebooks take it. Layers that need less use a narrow
 * Pick<> of it (src/ceg RunCurve and MetricRow, src/report LossCurve and MetricPoint); the
 * store's listing (RunSummary) shares its identity fields.
 */
import type { MetricRow } from './run.js';
import type { CurveAxis } from './import.js';

/** Why a run stopped as diverged (stored as status.divergence). */
export interface Divergence {
  /** optimizer step at which the loss was seen */
  step: number;
  /** the offending loss (NaN, Infinity or > limit) */
  loss: number;
  /** learning rate of that step */
  lr: number;
  /** the reference: validation loss at step 0 */
  initialLoss: number;
  /** the explosion threshold: DIVERGENCE_FACTOR x initialLoss */
  limit: number;
  /** which loss: 'train' (a step), 'val' (an evaluation) or 'weights' (non-finite parameters) */
  where: 'train' | 'val' | 'weights';
  /** last checkpoint kept (all finite), if any */
  checkpointStep: number | null;
}

/** A run: who it is (innovation at a scale, seed, backend), its metric rows, and how it was obtained. */
export interface RunRecord {
  id: string;
  innovation: string;
  scale: string;
  seed: number;
  backend: string;
  metrics: MetricRow[];
  /** served from the store, not trained by this call */
  cached: boolean;
  /** the current code no longer reproduces this stored run, and it was kept (allowStale) */
  stale?: boolean;
  /** machine and kernel set its per-run seconds were measured on (src/train/timing.ts runTimingKey) */
  timingKey?: string;
  /** the run diverged: its curve is not a result; CEG tables list it apart (never reached / not reached) */
  diverged?: Divergence;
  /** read from another trainer's log (ceg import), with the axes its rows carry */
  imported?: boolean;
  axes?: readonly CurveAxis[];
}
