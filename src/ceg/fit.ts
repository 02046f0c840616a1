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
  if (points.length < 3)
    throw new CegError(`a scaling fit needs at least 3 points (3 parameters), got ${points.length}`);
  const r = fitGroups([points], opts);
  return { E: r.E, A: r.A[0], alpha: r.alpha[0], loss: r.loss, converged: r.converged, range: r.range[0] };
}

/** One group of a shared-E fit: its id and its (C, L) points. */
export interface SharedEGroup {
  id: string;
  points: ScalingPoint[];
}

/** A start of a shared-E fit: E and one (A, α) per group, in the original units. */
export interface SharedEStart {
  E: number;
  groups: { A: number; alpha: number }[];
}

export interface SharedEResult {
  E: number;
  groups: { id: string; A: number; alpha: number; range: [number, number]; n: number }[];
  /** Huber objective at the solution, summed over every group's points */
  loss: number;
  converged: boolean;
}

/**
 * Fit L_g(C) = E + A_g·C^(−α_g) to several groups at once with ONE E shared by all groups
 * (the irreducible loss belongs to the data, not to the architecture), by the same
 * Huber-IRLS as fitScaling (which is this fit with one group). Starts: the grid of
 * FitOptions (every group starting from the same α) plus `starts` (e.g. a previous
 * solution, to warm-start bootstrap refits; pass alphaGrid: [] to use only those).
 * Each group needs at least 2 points and all groups together at least 1 + 2·groups.
 * Defaults: maxRounds 200 IRLS rounds of lmIterations 10 LM steps (same optimum as
 * fitScaling's 60 × 100 on the tests' data, in a tenth of the time: bootstraps refit often).
 */
export function fitSharedE(groups: SharedEGroup[], opts: FitOptions & { starts?: SharedEStart[] } = {}): SharedEResult {
  if (groups.length === 0) throw new CegError('a shared-E fit needs at least one group');
  const ids = new Set<string>();
  for (const g of groups) {
    if (ids.has(g.id)) throw new CegError(`shared-E fit: group "${g.id}" appears twice`);
    ids.add(g.id);
    if (g.points.length < 2)
      throw new CegError(`shared-E fit: group "${g.id}" has ${g.points.length} point(s); each group needs at least 2`);
  }
  const total = groups.reduce((s, g) => s + g.points.length, 0);
  if (total < 1 + 2 * groups.length)
    throw new CegError(`shared-E fit: ${total} points for ${1 + 2 * groups.length} parameters`);
  // many short LM runs between reweightings reach the same optimum ~10x faster than fitScaling's 60 x 100
  const r = fitGroups(
    groups.map((g) => g.points),
    { maxRounds: 200, lmIterations: 10, ...opts },
    opts.starts,
  );
  return {
    E: r.E,
    groups: groups.map((g, k) => ({ id: g.id, A: r.A[k], alpha: r.alpha[k], range: r.range[k], n: g.points.length })),
    loss: r.loss,
    converged: r.converged,
  };
}

/**
 * The Huber-IRLS core shared by fitScaling and fitSharedE: θ = [u, a_1, b_1, …, a_k, b_k],
 * E = exp(u), A_g' = exp(a_g), α_g = exp(b_g), compute normalised by the geometric mean of
 * every group's C.
 */
function fitGroups(
  groupPoints: ScalingPoint[][],
  opts: FitOptions,
  extraStarts: SharedEStart[] = [],
): { E: number; A: number[]; alpha: number[]; loss: number; converged: boolean; range: [number, number][] } {
  for (const pts of groupPoints)
    for (const p of pts)
      if (!(p.C > 0 && Number.isFinite(p.C) && p.L > 0 && Number.isFinite(p.L)))
        throw new CegError(`scaling points need finite C > 0 and L > 0, got C=${p.C}, L=${p.L}`);
  const delta = opts.delta ?? 1e-3;
  const alphaGrid = opts.alphaGrid ?? [0.05, 0.15, 0.3, 0.6, 1.0];
  const eFractions = opts.eFractions ?? [0, 0.25, 0.5, 0.75, 0.9];
  const maxRounds = opts.maxRounds ?? 60;
  const lmIterations = opts.lmIterations ?? 100;
  const K = groupPoints.length;

  const points = groupPoints.flat();
  const grp = groupPoints.flatMap((pts, g) => pts.map(() => g));
  const logC = points.map((p) => Math.log(p.C));
  const logC0 = logC.reduce((s, x) => s + x, 0) / logC.length;
  const lc = logC.map((x) => x - logC0); // log(C/C0)
  const y = points.map((p) => Math.log(p.L));
  const Lmin = Math.min(...points.map((p) => p.L));
  const n = points.length;
  const idx = points.map((_, i) => i);

  // model in log space at point i for θ: log(exp(u) + exp(a_g)·exp(−exp(b_g)·lc_i)), g = group of i
  const parts = (th: number[], i: number) => {
    const g = grp[i];
    const E = Math.exp(th[0]);
    const alpha = Math.exp(th[2 + 2 * g]);
    const P = Math.exp(th[1 + 2 * g] - alpha * lc[i]);
    return { E, P, alpha, S: E + P, g };
  };
  const f = (th: number[], i: number) => Math.log(parts(th, i).S);
  const objective = (th: number[]) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += huber(f(th, i) - y[i], delta);
    return s;
  };
  const minValues = [MIN_LOG];
  const maxValues = [Math.log(10 * Lmin)];
  for (let g = 0; g < K; g++) {
    minValues.push(-200, Math.log(1e-4));
    maxValues.push(200, Math.log(10));
  }
  const clamp = (th: number[]) => th.map((v, k) => Math.min(maxValues[k], Math.max(minValues[k], v)));

  const starts: number[][] = [];
  for (const a0 of alphaGrid) {
    for (const ef of eFractions) {
      const E0 = ef * Lmin;
      const th = [Math.log(Math.max(E0, Math.exp(MIN_LOG)))];
      for (let g = 0; g < K; g++) {
        // A' from the mean of log(L − E0) + α·lc (least squares in log space for fixed E0, α)
        let sa = 0;
        let m = 0;
        for (let i = 0; i < n; i++)
          if (grp[i] === g) {
            sa += Math.log(Math.max(points[i].L - E0, 1e-6 * Lmin)) + a0 * lc[i];
            m++;
          }
        th.push(sa / m, Math.log(a0));
      }
      starts.push(th);
    }
  }
  for (const s of extraStarts) {
    if (s.groups.length !== K) throw new CegError(`shared-E fit: a start has ${s.groups.length} groups, the fit ${K}`);
    const th = [Math.log(Math.max(s.E, Math.exp(MIN_LOG)))];
    for (const g of s.groups) th.push(Math.log(g.A) - g.alpha * logC0, Math.log(g.alpha));
    if (th.every(Number.isFinite)) starts.push(clamp(th));
  }
  if (starts.length === 0) throw new CegError('the scaling fit has no starting point (empty grid and no starts)');

  let best: { th: number[]; loss: number; converged: boolean } | null = null;
  for (let th of starts) {
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
          minValues,
          maxValues,
          jacobianFunction: (p: number[]) => (i: number) => {
            const { E, P, alpha, S, g } = parts(p, i);
            const row = new Array<number>(1 + 2 * K).fill(0);
            row[0] = (sw[i] * E) / S;
            row[1 + 2 * g] = (sw[i] * P) / S;
            row[2 + 2 * g] = (-sw[i] * alpha * lc[i] * P) / S;
            return row;
          },
        },
      );
      const next = res.parameterValues;
      const change = Math.max(...next.map((v, k) => Math.abs(v - th[k])));
      th = next;
      if (!next.every(Number.isFinite)) break;
      if (change < 1e-9) {
        converged = true;
        break;
      }
    }
    const loss = objective(th);
    if (!Number.isFinite(loss)) continue;
    if (!best || loss < best.loss) best = { th, loss, converged };
  }
  if (!best) throw new CegError('the scaling fit failed from every starting point (non-finite objective)');
  const th = best.th;
  const E = th[0] <= MIN_LOG + 1e-9 ? 0 : Math.exp(th[0]);
  const alpha = groupPoints.map((_, g) => Math.exp(th[2 + 2 * g]));
  return {
    E,
    A: groupPoints.map((_, g) => Math.exp(th[1 + 2 * g] + alpha[g] * logC0)),
    alpha,
    loss: best.loss,
    converged: best.converged,
    range: groupPoints.map(
      (pts) => [Math.min(...pts.map((p) => p.C)), Math.max(...pts.map((p) => p.C))] as [number, number],
    ),
  };
}

/**
 * How far past the measured compute range a CEG may be read from fits: half a decade (×√10).
 * Beyond it a fitted CEG is an extrapolation of two extrapolations (issue #13: a CEG of
 * 0.25× for a change that costs no FLOPs); cegCurve and parametricCegAt refuse it.
 */
export const MAX_EXTRAPOLATION = Math.sqrt(10);

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
  /** also evaluate beyond the measured range up to this compute (flagged extrapolated; at most half a decade past it) */
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
  const tol = 1e-9;
  if (hi > measured[1] * MAX_EXTRAPOLATION * (1 + tol) || lo < (measured[0] / MAX_EXTRAPOLATION) * (1 - tol))
    throw new CegError(
      `cegCurve: [${lo.toExponential(2)}, ${hi.toExponential(2)}] reaches more than half a decade past the measured range ` +
        `[${measured[0].toExponential(2)}, ${measured[1].toExponential(2)}]; a CEG is never extrapolated that far`,
    );
  const out: CegCurvePoint[] = [];
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
