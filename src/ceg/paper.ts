/**
 * The paper's CEG method, exactly as its results notebook computes it ("steps only").
 * (Sanderson et al. 2025, results.ipynb of jcksanderson/llm-algorithmic-progress.)
 *
 * 1. Smooth each validation-loss curve with an 8-point trailing moving average. Their code
 *    averages the points available for the first 7 evaluations (window min(i+1, 8)); this
 *    is our default `smoothing: 'partial'`. `smoothing: 'strict'` gives pandas
 *    rolling(8): NaN for the first 7 points, which then never count as reaching a target.
 * 2. target = the baseline's FINAL smoothed loss (or, with `target: 'min'`, its minimum,
 *    their `minimum=True` option).
 * 3. evals to reach = 1-based position of the first smoothed point <= target in the list
 *    of evaluations (step 0 is position 1, as in their `np.argmax(mask) + 1`).
 *    CEG = baseline evals / variant evals.
 * 4. DNR (the variant never reaches the target): auxiliary CEG with target = the variant's
 *    best (minimum) smoothed loss; variant evals = position of its first minimum; baseline
 *    evals = position where the baseline first reaches it. If the baseline never reaches
 *    it either, the auxiliary CEG is null (their notebook prints a note instead).
 * Not reproduced: the notebook's manual offset added to two full-scale curves.
 */
import { CegError, evalRows, type MetricRow } from './types.js';

export type Smoothing = 'partial' | 'strict';
export const SMOOTHINGS: readonly Smoothing[] = ['partial', 'strict'];

export interface PaperCegOptions {
  /** moving-average window in evaluations (default 8) */
  window?: number;
  /** what the first window-1 points are (default 'partial', the paper's code) */
  smoothing?: Smoothing;
  /** baseline's final smoothed loss (default, the paper's table) or its minimum */
  target?: 'final' | 'min';
}

export interface PaperCegResult {
  /** baseline evals / variant evals; null when the variant did not reach the target */
  ceg: number | null;
  /** the variant never reached the target */
  dnr: boolean;
  /** DNR only: auxiliary CEG at the variant's best smoothed loss (null if the baseline never gets there) */
  auxCeg?: number | null;
  /** DNR only: the auxiliary target (the variant's best smoothed loss) */
  auxTarget?: number;
  auxBaselineEvals?: number | null;
  auxVariantEvals?: number;
  /** the target smoothed validation loss */
  target: number;
  /** 1-based position of the baseline's first smoothed point <= target */
  baselineEvals: number;
  /** 1-based position of the variant's first smoothed point <= target; null if DNR */
  variantEvals: number | null;
  /** minimum smoothed validation loss of each curve (the paper's "best loss" column) */
  baselineBest: number;
  variantBest: number;
}

/**
 * Trailing moving average. out[i] = mean(values[i-window+1 .. i]).
 * 'partial': for i < window-1 the mean of the i+1 points available (the paper's code).
 * 'strict': NaN for i < window-1 (pandas rolling(window) with its default min_periods).
 */
export function movingAverage(values: number[], window = 8, smoothing: Smoothing = 'partial'): number[] {
  if (!Number.isInteger(window) || window < 1) throw new CegError(`moving-average window must be a positive integer, got ${window}`);
  if (!SMOOTHINGS.includes(smoothing))
    throw new CegError(`unknown smoothing "${smoothing}"; valid: ${SMOOTHINGS.join(', ')}`);
  const out: number[] = new Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const n = Math.min(i + 1, window);
    // summed afresh per window (not a running sum): an infinite value leaves no NaN behind
    let sum = 0;
    for (let j = i - n + 1; j <= i; j++) sum += values[j];
    out[i] = smoothing === 'strict' && n < window ? NaN : sum / n;
  }
  return out;
}

/** 1-based position of the first value <= target (NaN never qualifies), or null. */
export function firstReach(values: number[], target: number): number | null {
  for (let i = 0; i < values.length; i++) if (values[i] <= target) return i + 1;
  return null;
}

/** Minimum ignoring NaN, and the 1-based position of its first occurrence. */
function firstMin(values: number[]): { value: number; evals: number } {
  let best = Infinity;
  let at = -1;
  for (let i = 0; i < values.length; i++) if (values[i] < best) { best = values[i]; at = i; }
  if (at < 0) throw new CegError('the curve has no finite smoothed value');
  return { value: best, evals: at + 1 };
}

function valLosses(curve: MetricRow[] | number[], what: string): number[] {
  if (!Array.isArray(curve) || curve.length === 0) throw new CegError(`${what}: empty curve`);
  const v =
    typeof curve[0] === 'number'
      ? (curve as number[])
      : evalRows(curve as MetricRow[], what).map((r) => r.valLoss);
  // a diverged evaluation (NaN or infinite loss) reaches no target
  return v.map((x) => (Number.isFinite(x) ? x : Infinity));
}

/**
 * The paper's CEG of a variant against the baseline, on evaluation counts ("steps only").
 * Curves are metric rows (rows with a valLoss are the evaluations) or plain validation-loss
 * arrays, one value per evaluation, step 0 first, both evaluated at the same interval.
 */
export function paperCeg(
  baseline: MetricRow[] | number[],
  variant: MetricRow[] | number[],
  opts: PaperCegOptions = {},
): PaperCegResult {
  const window = opts.window ?? 8;
  const smoothing = opts.smoothing ?? 'partial';
  const targetKind = opts.target ?? 'final';
  if (targetKind !== 'final' && targetKind !== 'min')
    throw new CegError(`unknown paper target "${String(targetKind)}"; valid: final, min`);
  const bRaw = valLosses(baseline, 'baseline');
  const vRaw = valLosses(variant, 'variant');
  if (smoothing === 'strict')
    for (const [what, c] of [['baseline', bRaw], ['variant', vRaw]] as const)
      if (c.length < window)
        throw new CegError(`${what} has ${c.length} evaluations, fewer than the strict window ${window}`);
  const b = movingAverage(bRaw, window, smoothing);
  const v = movingAverage(vRaw, window, smoothing);
  const bMin = firstMin(b);
  const vMin = firstMin(v);
  const target = targetKind === 'final' ? b[b.length - 1] : bMin.value;
  const baselineEvals = firstReach(b, target);
  if (baselineEvals === null) throw new CegError('internal: the baseline does not reach its own target');
  const variantEvals = firstReach(v, target);
  const base = { target, baselineEvals, baselineBest: bMin.value, variantBest: vMin.value };
  if (variantEvals !== null) return { ...base, ceg: baselineEvals / variantEvals, dnr: false, variantEvals };
  const auxBaselineEvals = firstReach(b, vMin.value);
  return {
    ...base,
    ceg: null,
    dnr: true,
    variantEvals: null,
    auxTarget: vMin.value,
    auxVariantEvals: vMin.evals,
    auxBaselineEvals,
    auxCeg: auxBaselineEvals === null ? null : auxBaselineEvals / vMin.evals,
  };
}
