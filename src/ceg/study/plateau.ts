/**
 * The plateau rule. A character-level model that has learned only the unigram distribution
 * sits at loss ≈ H(unigram), the entropy of the character frequencies. A baseline that
 * lingers there (no LayerNorm, poorly scaled init) makes any variant that leaves it earlier
 * look like a large, falling CEG that measures the plateau's length, not the innovation.
 * So: frontier points with loss >= H − margin (default margin 0.3 nats) are flagged and
 * left out of the frontier and the fits; and per run, the step at which the validation loss
 * first drops below H − 0.1 is reported as a diagnostic.
 */
import { CegError, evalRows, type MetricRow } from '../types.js';

/** Default plateau margin (nats below the unigram entropy). */
export const PLATEAU_MARGIN = 0.3;
/** Default escape margin of the diagnostic (nats below the unigram entropy). */
export const ESCAPE_MARGIN = 0.1;

/** Entropy in nats of a distribution given by counts (zeros ignored). */
export function unigramEntropy(counts: readonly number[]): number {
  let total = 0;
  for (const c of counts) {
    if (!(c >= 0 && Number.isFinite(c))) throw new CegError(`unigram counts must be finite and >= 0, got ${c}`);
    total += c;
  }
  if (!(total > 0)) throw new CegError('unigram counts sum to 0');
  let h = 0;
  for (const c of counts) if (c > 0) h -= (c / total) * Math.log(c / total);
  return h;
}

/** True when a loss is on the plateau: loss >= unigramEntropy − margin. */
export function onPlateau(loss: number, unigramEntropy: number | null | undefined, margin = PLATEAU_MARGIN): boolean {
  if (unigramEntropy === null || unigramEntropy === undefined) return false;
  if (!Number.isFinite(unigramEntropy)) throw new CegError(`unigram entropy must be finite, got ${unigramEntropy}`);
  if (!(margin >= 0)) throw new CegError(`plateau margin must be >= 0, got ${margin}`);
  return !(loss < unigramEntropy - margin);
}

export interface PlateauEscape {
  /** the loss threshold: unigramEntropy − margin */
  threshold: number;
  /** first evaluated step with validation loss < threshold; null if the run never gets there */
  step: number | null;
  /** tokens and FLOPs at that step (null if never) */
  tokens: number | null;
  flops: number | null;
  /** the run's last evaluated step (so "never" can be read against the run's length) */
  lastStep: number;
}

/**
 * Plateau diagnostic of one run: the first evaluation whose validation loss is below
 * unigramEntropy − margin (default 0.1 nats). Pure function over the run's metric rows.
 */
export function plateauEscape(rows: MetricRow[], unigramEntropy: number, margin = ESCAPE_MARGIN): PlateauEscape {
  if (!Number.isFinite(unigramEntropy)) throw new CegError(`unigram entropy must be finite, got ${unigramEntropy}`);
  const ev = evalRows(rows, 'plateauEscape');
  const threshold = unigramEntropy - margin;
  const hit = ev.find((r) => r.valLoss < threshold);
  return {
    threshold,
    step: hit ? hit.step : null,
    tokens: hit ? hit.tokens : null,
    flops: hit ? hit.flops : null,
    lastStep: ev[ev.length - 1].step,
  };
}
