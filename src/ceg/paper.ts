/**
 * The paper's CEG method, exactly as its results notebook computes it ("steps only").
 * (Sanderson et al. 2025, results.ipynb of jcksanderson/llm-algorithmic-progress.)
 *
 * 1. Smooth each validation-loss curve with an 8-point trailing moving average. Their code
 *    averages the points available for the first 7 evaluations (window min(i+1, 8)); this
 *    is our default `smoothing: 'partial'`. `smoothing: 'strict'` gives pandas
 *    rolling(8): NaN for the first 7 points, which then never count as reaching a target.
 *    Each window's mean is `np.mean(window)`, i.e. numpy's pairwise summation divided by
 *    the count (`numpySum` below): for a full window of 8 that is
 *    ((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7)), not a left-to-right sum, so exact ties between
 *    curves (same values, other order) resolve as in their notebook, to the last bit.
 * 2. target = the baseline's FINAL smoothed loss (or, with `target: 'min'`, its minimum,
 *    their `minimum=True` option).
 * 3. evals to reach = 1-based position of the first smoothed point <= target in the list
 *    of evaluations (step 0 is position 1, as in their `np.argmax(mask) + 1`).
 *    CEG = baseline evals / variant evals.
 * 4. DNR (the variant never reaches the target): auxiliary CEG with target = the variant's
 *    best (minimum) smoothed loss; variant evals = position of its first minimum; baseline
 *    evals = position where the baseline first reaches it. If the baseline never reaches
 *    it either, the auxiliary CEG is null (their notebook prints a note instead).
 * 5. Optional, `asPublished` (`gap`): after smoothing, the notebook adds |LayerNorm − baseline|
 *    (the smoothed LayerNorm curve's distance to the smoothed baseline, point by point) to
 *    the full-scale RoPE and MQA curves before their CEGs, although those runs have
 *    LayerNorm off. The published full-scale RoPE (1.350) and MQA (0.931) CEGs rest on it
 *    (AS_PUBLISHED_ADJUSTED in published.ts). Off by default; `gap` supplies the LayerNorm
 *    curve to apply it with.
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
  /**
   * The as-published adjustment (module doc, step 5): the LayerNorm run's curve, smoothed
   * like the others; |LayerNorm − baseline| is added point by point to the smoothed variant
   * curve (over the points both have) before the CEG. Default: none.
   */
  gap?: MetricRow[] | number[];
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
  if (!Number.isInteger(window) || window < 1)
    throw new CegError(`moving-average window must be a positive integer, got ${window}`);
  if (!SMOOTHINGS.includes(smoothing))
    throw new CegError(`unknown smoothing "${smoothing}"; valid: ${SMOOTHINGS.join(', ')}`);
  const out: number[] = new Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const n = Math.min(i + 1, window);
    // summed afresh per window (not a running sum): an infinite value leaves no NaN behind
    out[i] = smoothing === 'strict' && n < window ? NaN : numpyMean(values, i - n + 1, n);
  }
  return out;
}

/**
 * numpy's sum of a float64 run a[start .. start+n), bit for bit: `DOUBLE_pairwise_sum` of
 * numpy/_core/src/umath/loops_utils.h.src (PW_BLOCKSIZE 128). Below 8 elements a
 * left-to-right loop from -0.0; 8 to 128 elements eight accumulators r[j] = a[j] + a[j+8] +
 * ... over the largest multiple of 8, combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then
 * the remainder added left to right; above 128 the two halves (the first rounded down to a
 * multiple of 8) summed recursively and added.
 */
export function numpySum(a: ArrayLike<number>, start = 0, n = a.length - start): number {
  if (n < 8) {
    let res = -0;
    for (let i = 0; i < n; i++) res += a[start + i];
    return res;
  }
  if (n <= 128) {
    let r0 = a[start],
      r1 = a[start + 1],
      r2 = a[start + 2],
      r3 = a[start + 3];
    let r4 = a[start + 4],
      r5 = a[start + 5],
      r6 = a[start + 6],
      r7 = a[start + 7];
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      const k = start + i;
      r0 += a[k];
      r1 += a[k + 1];
      r2 += a[k + 2];
      r3 += a[k + 3];
      r4 += a[k + 4];
      r5 += a[k + 5];
      r6 += a[k + 6];
      r7 += a[k + 7];
    }
    let res = r0 + r1 + (r2 + r3) + (r4 + r5 + (r6 + r7));
    for (; i < n; i++) res += a[start + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return numpySum(a, start, n2) + numpySum(a, start + n2, n - n2);
}

/**
 * `np.mean` of a float64 run: the add-reduction starts from the identity 0.0 and adds the
 * pairwise sum, then divides by the count.
 */
export function numpyMean(a: ArrayLike<number>, start = 0, n = a.length - start): number {
  if (n < 1) throw new CegError('mean of an empty window');
  return (0 + numpySum(a, start, n)) / n;
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
  for (let i = 0; i < values.length; i++)
    if (values[i] < best) {
      best = values[i];
      at = i;
    }
  if (at < 0) throw new CegError('the curve has no finite smoothed value');
  return { value: best, evals: at + 1 };
}

function valLosses(curve: MetricRow[] | number[], what: string): number[] {
  if (!Array.isArray(curve) || curve.length === 0) throw new CegError(`${what}: empty curve`);
  const v =
    typeof curve[0] === 'number' ? (curve as number[]) : evalRows(curve as MetricRow[], what).map((r) => r.valLoss);
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
    for (const [what, c] of [
      ['baseline', bRaw],
      ['variant', vRaw],
    ] as const)
      if (c.length < window)
        throw new CegError(`${what} has ${c.length} evaluations, fewer than the strict window ${window}`);
  const b = movingAverage(bRaw, window, smoothing);
  const v = movingAverage(vRaw, window, smoothing);
  if (opts.gap !== undefined) {
    // the notebook: differences over min(len(ln), len(nf)); added to the variant where it has points
    const g = movingAverage(valLosses(opts.gap, 'gap (LayerNorm) curve'), window, smoothing);
    const n = Math.min(g.length, b.length, v.length);
    for (let i = 0; i < n; i++) v[i] += Math.abs(g[i] - b[i]);
  }
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
