/**
 * Scaling fits L(C) = E + A·C^(−α) with a robust Huber loss on log-loss residuals
 * (r = log L_pred − log L_obs, Huber delta 1e-3, as Hoffmann et al. 2022 and Besiroglu
 * et al. 2024), from a grid of starting points; and the CEG curve between two fits.
 *
 * Optimiser: `ml-levenberg-marquardt` (mljs, maintained, typed, analytic Jacobian). It
 * minimises squared error only, so the Huber objective is minimised by iteratively
 * reweighted least squares (IRLS): each round solves a weighted least-squares problem
 * with weights w = min(1, delta/|r|) from the previous residuals, which is the standard
 * majorise–minimise scheme for Huber M-estimation. The weights are applied by scaling the
 * residuals by sqrt(w) ourselves (the package's own `weights` option scales its error and
 * its step differently). Parametrisation keeps the constraints: E = exp(u) >= 0,
 * A = exp(a) > 0, α = exp(b) > 0; compute is normalised by C0 = geometric mean of the C's
 * inside the fit (A is reported in the original units: A = A'·C0^α).
 */
import { levenbergMarquardt } from 'ml-levenberg-marquardt';
import { CegError } from './types.js';

export interface ScalingPoint {
  /** compute (any axis, > 0) */
  C: number;
  /** validation loss (> 0) */
  L: number;
}

export interface ScalingFit {
  E: number;
  A: number;
  alpha: number;
  /** Huber objective at the solution: sum over points of huber(log L_pred − log L_obs) */
  loss: number;
  /** IRLS settled (parameter change below tolerance) before the round limit, all finite */
  converged: boolean;
  /** measured compute range of the points fitted */
  range: [number, number];
}

export interface FitOptions {
  /** Huber delta on log-loss residuals (default 1e-3) */
  delta?: number;
  /** starting exponents (default 0.05, 0.15, 0.3, 0.6, 1.0) */
  alphaGrid?: number[];
  /** starting E as fractions of the smallest observed loss (default 0, 0.25, 0.5, 0.75, 0.9) */
  eFractions?: number[];
  /** IRLS rounds (default 60) */
  maxRounds?: number;
  /** LM iterations per round (default 100) */
  lmIterations?: number;
}

/** Huber loss of one residual. */
export function huber(r: number, delta: number): number {
  const a = Math.abs(r);
  return a <= delta ? 0.5 * r * r : delta * (a - 0.5 * delta);
}

/** L(C) = E + A·C^(−α). */
export function predictLoss(fit: Pick<ScalingFit, 'E' | 'A' | 'alpha'>, C: number): number {
  return fit.E + fit.A * Math.pow(C, -fit.alpha);
}

/** Inverse of a fit: the compute at which it reaches loss L; Infinity when L <= E (never). */
export function computeForLoss(fit: Pick<ScalingFit, 'E' | 'A' | 'alpha'>, L: number): number {
  if (!(L > fit.E)) return Infinity;
  return Math.pow(fit.A / (L - fit.E), 1 / fit.alpha);
}

const MIN_LOG = -60; // exp(-60) ≈ 1e-26: E this small is 0 in practice

/** Fit L(C) = E + A·C^(−α) by Huber-IRLS from every grid start; keep the lowest Huber objective. */
export function fitScaling(points: ScalingPoint[], opts: FitOptions = {}): ScalingFit {
  if (points.length < 3) throw new CegError(`a scaling fit needs at least 3 points (3 parameters), got ${points.length}`);
  for (const p of points)
    if (!(p.C > 0 && Number.isFinite(p.C) && p.L > 0 && Number.isFinite(p.L)))
      throw new CegError(`scaling points need finite C > 0 and L > 0, got C=${p.C}, L=${p.L}`);
  const delta = opts.delta ?? 1e-3;
  const alphaGrid = opts.alphaGrid ?? [0.05, 0.15, 0.3, 0.6, 1.0];
  const eFractions = opts.eFractions ?? [0, 0.25, 0.5, 0.75, 0.9];
  const maxRounds = opts.maxRounds ?? 60;
  const lmIterations = opts.lmIterations ?? 100;

  const logC = points.map((p) => Math.log(p.C));
  const logC0 = logC.reduce((s, x) => s + x, 0) / logC.length;
  const lc = logC.map((x) => x - logC0); // log(C/C0)
  const y = points.map((p) => Math.log(p.L));
  const Lmin = Math.min(...points.map((p) => p.L));
  const n = points.length;
  const idx = points.map((_, i) => i);

  // model in log space at point i for θ = [u, a, b]: log(exp(u) + exp(a)·exp(−exp(b)·lc_i))
  const parts = (th: number[], i: number) => {
    const E = Math.exp(th[0]);
    const alpha = Math.exp(th[2]);
    const P = Math.exp(th[1] - alpha * lc[i]);
    return { E, P, alpha, S: E + P };
  };
  const f = (th: number[], i: number) => Math.log(parts(th, i).S);
  const objective = (th: number[]) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += huber(f(th, i) - y[i], delta);
    return s;
  };

  let best: { th: number[]; loss: number; converged: boolean } | null = null;
  for (const a0 of alphaGrid) {
    for (const ef of eFractions) {
      const E0 = ef * Lmin;
      // A' from the mean of log(L − E0) + α·lc (least squares in log space for fixed E0, α)
      let sa = 0;
      for (let i = 0; i < n; i++) sa += Math.log(Math.max(points[i].L - E0, 1e-6 * Lmin)) + a0 * lc[i];
      let th = [Math.log(Math.max(E0, Math.exp(MIN_LOG))), sa / n, Math.log(a0)];
      let converged = false;
      for (let round = 0; round < maxRounds; round++) {
        const sw = idx.map((i) => {
          const r = Math.abs(f(th, i) - y[i]);
          return Math.sqrt(r <= delta ? 1 : delta / r);
        });
        const res = levenbergMarquardt(
          { x: idx, y: idx.map((i) => sw[i] * y[i]) },
          (p: number[]) => (i: number) => sw[i] * f(p, i),
          {
            initialValues: th,
            maxIterations: lmIterations,
            errorTolerance: 1e-30,
            minValues: [MIN_LOG, -200, Math.log(1e-4)],
            maxValues: [Math.log(10 * Lmin), 200, Math.log(10)],
            jacobianFunction: (p: number[]) => (i: number) => {
              const { E, P, alpha, S } = parts(p, i);
              return [(sw[i] * E) / S, (sw[i] * P) / S, (-sw[i] * alpha * lc[i] * P) / S];
            },
          },
        );
        const next = res.parameterValues;
        const change = Math.max(...next.map((v, k) => Math.abs(v - th[k])));
        th = next;
        if (!next.every(Number.isFinite)) break;
        if (change < 1e-9) { converged = true; break; }
      }
      const loss = objective(th);
      if (!Number.isFinite(loss)) continue;
      if (!best || loss < best.loss) best = { th, loss, converged };
    }
  }
  if (!best) throw new CegError('the scaling fit failed from every starting point (non-finite objective)');
  const alpha = Math.exp(best.th[2]);
  const E = best.th[0] <= MIN_LOG + 1e-9 ? 0 : Math.exp(best.th[0]);
  return {
    E,
    A: Math.exp(best.th[1] + alpha * logC0),
    alpha,
    loss: best.loss,
    converged: best.converged,
    range: [Math.min(...points.map((p) => p.C)), Math.max(...points.map((p) => p.C))],
  };
}

export interface CegCurvePoint {
  C: number;
  /** C_baseline(L_variant(C)) / C; Infinity when L_variant(C) <= E_baseline (the baseline never gets there) */
  ceg: number;
  lossVariant: number;
  /** C lies outside the range both fits were measured on */
  extrapolated: boolean;
}

export interface CegCurveOptions {
  /** compute range to evaluate (default: the intersection of the two fits' measured ranges) */
  range?: [number, number];
  /** log-spaced points over the range (default 25) */
  points?: number;
  /** also evaluate beyond the measured range up to this compute (flagged extrapolated) */
  extendTo?: number;
}

/** CEG(C) = C_baseline(L_variant(C)) / C from two fits, on a log-spaced grid of C. */
export function cegCurve(baseline: ScalingFit, variant: ScalingFit, opts: CegCurveOptions = {}): CegCurvePoint[] {
  const measured: [number, number] = [
    Math.max(baseline.range[0], variant.range[0]),
    Math.min(baseline.range[1], variant.range[1]),
  ];
  const [lo, hiMeasured] = opts.range ?? measured;
  const hi = Math.max(hiMeasured, opts.extendTo ?? hiMeasured);
  const k = opts.points ?? 25;
  if (!(lo > 0 && hi >= lo)) throw new CegError(`cegCurve: bad compute range [${lo}, ${hi}]`);
  if (!(Number.isInteger(k) && k >= 2)) throw new CegError(`cegCurve: points must be an integer >= 2, got ${k}`);
  const out: CegCurvePoint[] = [];
  const tol = 1e-9;
  for (let j = 0; j < k; j++) {
    const C = Math.exp(Math.log(lo) + (j / (k - 1)) * (Math.log(hi) - Math.log(lo)));
    const lossVariant = predictLoss(variant, C);
    out.push({
      C,
      ceg: computeForLoss(baseline, lossVariant) / C,
      lossVariant,
      extrapolated: C < measured[0] * (1 - tol) || C > measured[1] * (1 + tol),
    });
  }
  return out;
}
