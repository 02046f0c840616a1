/**
 * Synthetic studies with a known truth, for the study-analysis tests (not a test file
 * itself). Every fork of every rung lies on a known compute frontier
 * L(C) = E + G·(k·C)^−α (k: a constant compute multiplier, so a variant with k reaches
 * every loss with k times less compute: CEG = k at every C; a different α: CEG ∝ C^(α_v/α_b − 1)).
 * A run is one model size N (a rung) with cooldown forks at 10, 20 and 40 tokens per
 * parameter, compute C = 6·N·D, plus a "stale" point past its last fork that is worse
 * than that fork (an over-trained model: off the frontier, the lower envelope must drop it).
 * Noise: a per-run offset (the forks share a trunk) plus a per-point term, both seeded.
 */
import { mulberry32, normalSampler } from '../src/ceg/random.js';
import type { StudyRun } from '../src/ceg/study/index.js';

export interface Law {
  E: number;
  G: number;
  alpha: number;
  /** constant compute multiplier (default 1) */
  k?: number;
}

export const BASE_LAW: Law = { E: 1.2, G: 55, alpha: 0.15 };
export const UNIGRAM = 3.0;
/** rung sizes: ~28 k to ~450 k parameters (≈ 2.4 decades of compute at 20 tokens/parameter) */
export const RUNG_PARAMS = [28e3, 56e3, 112e3, 225e3, 450e3];
export const FORK_TPP = [10, 20, 40];

export function lossAt(law: Law, C: number): number {
  return law.E + law.G * ((law.k ?? 1) * C) ** -law.alpha;
}

/** C_base(L_v(C)) / C between two laws with the same E, in closed form. */
export function trueCeg(base: Law, v: Law, C: number): number {
  const L = lossAt(v, C);
  return (base.G / (L - base.E)) ** (1 / base.alpha) / (base.k ?? 1) / C;
}

export interface SynthOptions {
  seeds: number[];
  /** per-run offset σ (default 0.004) and per-point σ (default 0.002) */
  runSigma?: number;
  pointSigma?: number;
  /** noise stream seed (default 1) */
  noiseSeed?: number;
  params?: number[];
  tpp?: number[];
  /** loss transform, e.g. a plateau: (loss, N, D) => loss' */
  transform?: (loss: number, N: number, D: number) => number;
}

export function synthRuns(variant: string, law: Law, o: SynthOptions): StudyRun[] {
  const g = normalSampler(mulberry32((o.noiseSeed ?? 1) * 7919 + hash(variant)));
  const runs: StudyRun[] = [];
  for (const seed of o.seeds)
    for (const [i, N] of (o.params ?? RUNG_PARAMS).entries()) {
      const off = (o.runSigma ?? 0.004) * g();
      const points = (o.tpp ?? FORK_TPP).map((tpp) => {
        const D = tpp * N;
        const clean = lossAt(law, 6 * N * D);
        const loss = (o.transform ? o.transform(clean, N, D) : clean) + off + (o.pointSigma ?? 0.002) * g();
        return { flops: 6 * N * D, loss, tokens: D, fork: `tpp${tpp}` };
      });
      const last = points[points.length - 1];
      points.push({ flops: last.flops * 1.5, loss: last.loss + 0.02, tokens: last.tokens * 1.5, fork: 'stale' });
      runs.push({ variant, seed, rung: `r${i}`, lr: 1e-3, params: N, points });
    }
  return runs;
}

function hash(s: string): number {
  let h = 0;
  for (const c of s) h = (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0;
  return h;
}
