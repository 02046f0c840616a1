/**
 * Learning-rate transfer. Every variant is tuned: at the smallest rungs a sweep of learning
 * rates (≥4, half a decade apart) gives loss against LR; LR* per rung is the vertex of the
 * parabola in log LR through the best swept point and its two neighbours (losses at one LR
 * are averaged first). A best point at the sweep's edge means LR* lies outside the sweep:
 * it is flagged and left out of the transfer fit. The transfer: least squares of
 * log LR* = log c + e·log N over the rungs with an interior optimum; LR*(N) = c·N^e. The study
 * pools e over the variants (`pooledLrTransfer`) and keeps a level c per variant.
 */
import { CegError } from '../types.js';
import { studentTQuantile } from './stats.js';
import type { LrOptimum, LrSweepPoint, LrTransfer, PooledLrTransfer } from './types.js';

/** LR* at one rung from its sweep points ({lr, loss}, any order; repeated LRs averaged). */
export function lrOptimum(points: readonly { lr: number; loss: number }[]): {
  lrStar: number;
  flag: LrOptimum['flag'];
  nLr: number;
} {
  const by = new Map<number, { s: number; n: number }>();
  for (const p of points) {
    if (!(p.lr > 0 && Number.isFinite(p.lr)))
      throw new CegError(`LR sweep: learning rates must be finite and > 0, got ${p.lr}`);
    if (!Number.isFinite(p.loss)) continue; // a diverged run: no loss at this LR
    const a = by.get(p.lr) ?? { s: 0, n: 0 };
    a.s += p.loss;
    a.n += 1;
    by.set(p.lr, a);
  }
  const xs = [...by.keys()].sort((a, b) => a - b);
  if (xs.length < 3)
    throw new CegError(`LR sweep: ${xs.length} learning rate(s) with a finite loss; LR* needs at least 3`);
  const ys = xs.map((x) => by.get(x)!.s / by.get(x)!.n);
  let i = 0;
  for (let k = 1; k < ys.length; k++) if (ys[k] < ys[i]) i = k;
  if (i === 0) return { lrStar: xs[0], flag: 'edge-low', nLr: xs.length };
  if (i === xs.length - 1) return { lrStar: xs[i], flag: 'edge-high', nLr: xs.length };
  const [x0, x1, x2] = [Math.log(xs[i - 1]), Math.log(xs[i]), Math.log(xs[i + 1])];
  const [y0, y1, y2] = [ys[i - 1], ys[i], ys[i + 1]];
  // vertex of the parabola through three points
  const num = (x1 - x0) ** 2 * (y1 - y2) - (x1 - x2) ** 2 * (y1 - y0);
  const den = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0);
  const xv = den === 0 ? x1 : x1 - 0.5 * (num / den);
  return { lrStar: Math.exp(xv), flag: 'interior', nLr: xs.length };
}

/** LR* at each of a variant's rungs (sorted by size), with a note per edge optimum. */
function variantOptima(points: readonly LrSweepPoint[], variant: string): { optima: LrOptimum[]; notes: string[] } {
  const mine = points.filter((p) => p.variant === variant);
  if (mine.length === 0) throw new CegError(`LR transfer: no sweep points for "${variant}"`);
  const rungs = new Map<string, LrSweepPoint[]>();
  for (const p of mine) {
    if (!(p.params > 0 && Number.isFinite(p.params)))
      throw new CegError(`LR sweep: params must be finite and > 0, got ${p.params} at rung ${p.rung}`);
    const r = rungs.get(p.rung) ?? [];
    if (r.length && r[0].params !== p.params)
      throw new CegError(`LR sweep: rung ${p.rung} has two parameter counts (${r[0].params}, ${p.params})`);
    r.push(p);
    rungs.set(p.rung, r);
  }
  const optima: LrOptimum[] = [...rungs].map(([rung, pts]) => ({ rung, params: pts[0].params, ...lrOptimum(pts) }));
  optima.sort((a, b) => a.params - b.params);
  const notes: string[] = [];
  for (const o of optima)
    if (o.flag !== 'interior')
      notes.push(
        `${variant} rung ${o.rung}: the best LR ${o.lrStar.toExponential(2)} is at the sweep's ${o.flag === 'edge-low' ? 'low' : 'high'} edge; LR* lies outside the sweep (left out of the transfer fit; widen the grid)`,
      );
  return { optima, notes };
}

/** LR* per rung and the power law LR* = c·N^e for one variant (see the module doc). */
export function lrTransfer(points: readonly LrSweepPoint[], variant: string): LrTransfer {
  const { optima, notes } = variantOptima(points, variant);
  const used = optima.filter((o) => o.flag === 'interior');
  if (new Set(used.map((o) => o.params)).size < 2)
    throw new CegError(
      `LR transfer for "${variant}": needs LR* inside the sweep at 2 or more rungs of different size, got ${used.length}${notes.length ? ` (${notes.join('; ')})` : ''}`,
    );
  if (used.length === 2)
    notes.push(`${variant}: the transfer exponent rests on 2 rungs (an exact line, no residual to judge it by)`);
  // the pooled fit over one variant is this variant's own least-squares line
  return { ...pooledLrTransfer(points, [variant]).transfers.get(variant)!, notes };
}

/**
 * One transfer exponent shared by every variant, each with its own level: log LR* = log c_v +
 * e·log N, least squares with a free intercept per variant (the within-variant slope). A
 * variant's own exponent rests on a single seed's optimum at two or three rungs, where the loss
 * is flat in LR, so it is mostly noise (on the CPU plan's sweep the per-variant exponents ran
 * from −1.3 to +0.9, and transferring them 0.9 decades would have trained some variants at a
 * tenth of their neighbours' LR: a compute dependence made by the LR rule). Pooling assumes the
 * optimal LR moves with size alike for every variant and lets each keep its own level. The
 * exponent comes from the variants with interior optima at 2+ rungs of different size; a
 * variant's level from all its interior optima (one is enough). A variant without any interior
 * optimum gets no transfer (undefined in `transfers`). `exponentFrom` (default: all of
 * `variants`) limits the variants that fit the exponent; the others only take it, with a level of
 * their own, so adding one to a study does not move the rest.
 */
export function pooledLrTransfer(
  points: readonly LrSweepPoint[],
  variants: readonly string[],
  exponentFrom: readonly string[] = variants,
): PooledLrTransfer {
  const outside = exponentFrom.filter((v) => !variants.includes(v));
  if (outside.length)
    throw new CegError(`pooled LR transfer: exponent variants ${outside.join(', ')} are not among the variants`);
  const notes: string[] = [];
  const per = variants.map((v) => {
    try {
      return { variant: v, ...variantOptima(points, v) };
    } catch (e) {
      notes.push(`${v}: ${(e as Error).message}; no transfer`);
      return { variant: v, optima: [] as LrOptimum[], notes: [] as string[] };
    }
  });
  notes.push(...per.flatMap((p) => p.notes));
  let sxy = 0;
  let sxx = 0;
  const fitted: string[] = [];
  const centred: { x: number; y: number }[][] = [];
  for (const p of per) {
    const used = p.optima.filter((o) => o.flag === 'interior');
    if (!exponentFrom.includes(p.variant) || new Set(used.map((o) => o.params)).size < 2) continue;
    const lx = used.map((o) => Math.log(o.params));
    const ly = used.map((o) => Math.log(o.lrStar));
    const mx = lx.reduce((s, v) => s + v, 0) / lx.length;
    const my = ly.reduce((s, v) => s + v, 0) / ly.length;
    const c = lx.map((x, i) => ({ x: x - mx, y: ly[i] - my }));
    for (const q of c) {
      sxy += q.x * q.y;
      sxx += q.x * q.x;
    }
    centred.push(c);
    fitted.push(p.variant);
  }
  if (fitted.length === 0 || !(sxx > 0))
    throw new CegError(
      `pooled LR transfer: no variant has LR* inside the sweep at 2 or more rungs of different size${notes.length ? ` (${notes.join('; ')})` : ''}`,
    );
  const exponent = sxy / sxx;
  // residual SE of the shared slope: n points, one intercept per fitted variant, one slope
  const n = centred.reduce((s, c) => s + c.length, 0);
  const df = n - fitted.length - 1;
  let interval: [number, number] | null = null;
  if (df >= 1) {
    const rss = centred.flat().reduce((s, q) => s + (q.y - exponent * q.x) ** 2, 0);
    const se = Math.sqrt(rss / df / sxx);
    const t = studentTQuantile(0.975, df);
    interval = [exponent - t * se, exponent + t * se];
  } else notes.push('pooled LR transfer: one variant fits the exponent; no interval');
  const fittedParams = per
    .filter((p) => fitted.includes(p.variant))
    .flatMap((p) => p.optima.filter((o) => o.flag === 'interior').map((o) => o.params));
  const range: [number, number] = [Math.min(...fittedParams), Math.max(...fittedParams)];
  const transfers = new Map<string, LrTransfer>();
  for (const p of per) {
    const used = p.optima.filter((o) => o.flag === 'interior');
    if (used.length === 0) continue;
    const level = used.reduce((s, o) => s + Math.log(o.lrStar) - exponent * Math.log(o.params), 0) / used.length;
    transfers.set(p.variant, {
      variant: p.variant,
      optima: p.optima,
      exponent,
      coefficient: Math.exp(level),
      range,
      notes: p.notes,
    });
  }
  return { exponent, interval, fitted, transfers, notes };
}

/** LR*(N) from a transfer fit, and how many decades of N beyond the fitted rungs it reaches. */
export function predictLr(t: LrTransfer, params: number): { lr: number; extrapolationDecades: number } {
  if (!(params > 0 && Number.isFinite(params)))
    throw new CegError(`predictLr: params must be finite and > 0, got ${params}`);
  const beyond =
    params > t.range[1] ? Math.log10(params / t.range[1]) : params < t.range[0] ? Math.log10(t.range[0] / params) : 0;
  return { lr: t.coefficient * params ** t.exponent, extrapolationDecades: beyond };
}
