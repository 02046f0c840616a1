/**
 * The lab in one import, for notebooks and scripts: train-or-load runs, CEG tables, scaling
 * fits, verdicts, figures and small demonstrations. Thin glue over src/train, src/runs,
 * src/ceg, src/report and src/model; no logic of its own beyond converting between them.
 *
 *   const lab = await import('../src/lab.ts');
 *   const runs = await lab.ensureRuns({ scale: 'micro', innovations: ['baseline', 'rope'], seeds: [1, 2, 3] });
 *   lab.showTable(lab.cegTable(runs));
 */
import path from 'node:path';
import * as aq from 'arquero';
import { tf, initEngine, requestedBackend, type EngineInfo, type BackendName } from './engine/index.js';
import { INNOVATIONS, STUDY_SET, getInnovation, innovationChange } from './innovations.js';
import { ladderOf, scaleNames, type LadderRung } from './scales.js';
import type { ModelConfig } from './config.js';
import { ConfigError } from './config.js';
import { RunStore } from './runs/index.js';
import { ensureRuns as sweep, runSpec, resolveScale, type RunRecord } from './train/sweep.js';
import * as ceg from './ceg/index.js';
import * as figures from './report/figures.js';
import { show as showFigure, showHtml } from './report/notebook.js';
import type { CegRow, Figure, PaperVsOursRow, RunCurve, ScalingSeries, CegCurve, LossAxis } from './report/types.js';
import { paramCount as countOf } from './model/params.js';
import { stepFlops } from './model/flops.js';
import { layerNorm, rmsNorm } from './model/norms.js';
import { applyRope } from './model/rope.js';
import { attend, sparseMask, type AttendOptions } from './model/attention/index.js';

export { STUDY_SET, INNOVATIONS };
export type { RunRecord };
type Table = ReturnType<typeof aq.from>;

// ---------------------------------------------------------------- setup

/** The scale notebooks use: CEG_SCALE, default 'micro'. */
export function scaleFromEnv(): string {
  const s = process.env.CEG_SCALE ?? 'micro';
  resolveScale(s);
  return s;
}

/** Seeds for a scale: CEG_SEEDS (e.g. "1,2,3"), else 3 for micro (the stored runs), 1 otherwise. */
export function seedsFor(scale: string): number[] {
  const env = process.env.CEG_SEEDS;
  if (env) {
    const seeds = env.split(',').map((s) => Number(s.trim()));
    if (seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new ConfigError(`CEG_SEEDS="${env}": expected comma-separated non-negative integers`);
    return seeds;
  }
  return scale === 'micro' ? [1, 2, 3] : [1];
}

/** The run store: CEG_RUNS or data/runs (relative to the project root, wherever the notebook runs). */
export function store(): RunStore {
  return new RunStore(process.env.CEG_RUNS ?? path.join(projectRoot(), 'data', 'runs'));
}

function projectRoot(): string {
  return path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
}

export function backend(): BackendName {
  return requestedBackend();
}

/** Start the engine (CEG_BACKEND, default wasm) and print which backend runs. */
export async function start(): Promise<EngineInfo> {
  const info = await initEngine({ backend: backend() });
  const flags = Object.entries(info.flags).map(([k, v]) => `${k}=${v}`).join(' ');
  console.log(`backend ${info.backend}${flags ? ` (${flags})` : ''}, tfjs ${info.tfjsVersion}`);
  return info;
}

// ---------------------------------------------------------------- runs

export interface EnsureOptions {
  scale: string;
  innovations: readonly string[];
  seeds: readonly number[];
  /** print progress (default true) */
  progress?: boolean;
}

/** Train what the store lacks, then return every requested run's metrics. */
export async function ensureRuns(o: EnsureOptions): Promise<RunRecord[]> {
  return sweep({
    scale: o.scale, innovations: o.innovations, seeds: o.seeds, backend: backend(), store: store(),
    stream: o.progress === false ? null : process.stdout,
  });
}

/** The scaling ladder of a scale, for each innovation and seed. */
export async function ensureLadder(o: EnsureOptions): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  for (const rung of ladderOf(o.scale)) out.push(...(await ensureRuns({ ...o, scale: rung.name })));
  return out;
}

export function modelConfig(scale: string, innovation: string): ModelConfig {
  return runSpec(innovation, scale, 1, backend()).model;
}

export function paramCount(cfg: ModelConfig): number {
  return countOf(cfg);
}

// ---------------------------------------------------------------- tables

export function innovationTable(): Table {
  return aq.from(
    INNOVATIONS.map((i) => ({
      id: i.id, label: i.label, paper_category: i.category, in_paper: i.inPaper,
      change: JSON.stringify(innovationChange(i.id)), explanation: i.explanation,
    })),
  );
}

export function runTable(runs: RunRecord[]): Table {
  return aq.from(
    runs.map((r) => {
      const last = r.metrics[r.metrics.length - 1];
      const vals = r.metrics.map((m) => m.valLoss).filter((v): v is number => typeof v === 'number');
      return {
        run: r.id, innovation: r.innovation, scale: r.scale, seed: r.seed, steps: last?.step,
        tokens: last?.tokens, gflops: last ? last.flops / 1e9 : null, seconds: last?.seconds,
        final_val_loss: last?.valLoss, best_val_loss: vals.length ? Math.min(...vals) : null,
      };
    }),
  );
}

/** Where a variant's FLOPs per step go (forward + backward), by part. */
export function flopBreakdown(cfg: ModelConfig, scale: string): Table {
  const s = resolveScale(scale);
  const tokens = s.train.batchSize * s.train.gradAccum * cfg.blockSize;
  const f = stepFlops(cfg, tokens);
  const rows = Object.entries(f.breakdown).map(([part, fwd]) => ({ part, gflop_per_step: (3 * fwd) / 1e9, share: fwd / f.forward }));
  return aq.from([...rows, { part: 'total', gflop_per_step: f.total / 1e9, share: 1 }]);
}

/** Our CEG (every axis) beside the paper's method, one row per innovation. */
export function cegTable(runs: RunRecord[], opts: ceg.CegTableOptions = {}): Table {
  return ceg.cegTable(runs, opts);
}

/** The paper's published compact-scale numbers beside ours. */
export function paperVsOurs(table: Table, scale: 'compact' | 'full' = 'compact'): Table {
  return ceg.paperVsOurs(table, scale);
}

/** Is CEG multiplicative? The product of the parts' CEG against the combination's, per axis. */
export function multiplicativity(table: Table, parts: string[], combo: string, axes: string[] = ['steps', 'flops', 'seconds']): Table {
  const rows = table.objects() as Record<string, unknown>[];
  const get = (id: string) => rows.find((r) => r.innovation === id);
  return aq.from(
    axes.map((axis) => {
      const vals = parts.map((p) => get(p)?.[`ceg_${axis}`] as number | null | undefined);
      const product = vals.every((v) => typeof v === 'number') ? (vals as number[]).reduce((a, b) => a * b, 1) : null;
      const measured = (get(combo)?.[`ceg_${axis}`] as number | null | undefined) ?? null;
      return { axis, parts: parts.join(' x '), product_of_parts: product, combination: measured, ratio: product && measured ? measured / product : null };
    }),
  );
}

/** Bytes of K/V cache per token for MHA, GQA and MQA at a scale (fp32). */
export function kvCacheTable(scale: string): Table {
  return aq.from(
    ['baseline', 'gqa', 'mqa'].map((id) => {
      const c = modelConfig(scale, id);
      const hs = c.nEmbd / c.nHead;
      return { innovation: id, kv_heads: c.nKvHead, query_heads: c.nHead, kv_bytes_per_token: 2 * c.nLayer * c.nKvHead * hs * 4, params: paramCount(c) };
    }),
  );
}

// ---------------------------------------------------------------- scaling

export interface ScalingResult {
  innovation: string;
  points: ceg.ScalingPoint[];
  fit: ceg.ScalingFit;
  /** per-seed fits (for the verdict's bootstrap) */
  seedFits: { seed: number; fit: ceg.ScalingFit }[];
}

/** (C, L) per ladder run: C = training FLOPs, L = the run's best validation loss. */
function ladderPoints(runs: RunRecord[]): Map<string, Map<number, ceg.ScalingPoint[]>> {
  const by = new Map<string, Map<number, ceg.ScalingPoint[]>>();
  for (const r of runs) {
    const last = r.metrics[r.metrics.length - 1];
    const vals = r.metrics.map((m) => m.valLoss).filter((v): v is number => typeof v === 'number');
    if (!last || vals.length === 0) continue;
    const seeds = by.get(r.innovation) ?? new Map<number, ceg.ScalingPoint[]>();
    seeds.set(r.seed, [...(seeds.get(r.seed) ?? []), { C: last.flops, L: Math.min(...vals) }]);
    by.set(r.innovation, seeds);
  }
  return by;
}

/** Fit L(C) = E + A·C^(−α) per innovation (all seeds pooled) and per seed. */
export function scalingFits(runs: RunRecord[]): ScalingResult[] {
  return [...ladderPoints(runs)].map(([innovation, seeds]) => {
    const points = [...seeds.values()].flat();
    return {
      innovation,
      points,
      fit: ceg.fitScaling(points),
      seedFits: [...seeds].filter(([, p]) => p.length >= 3).map(([seed, p]) => ({ seed, fit: ceg.fitScaling(p) })),
    };
  });
}

/** Compute-dependence verdict per innovation from per-seed fits against the baseline's. */
export function verdicts(runs: RunRecord[], opts: ceg.ClassifyOptions = {}): Table {
  const fits = scalingFits(runs);
  const base = fits.find((f) => f.innovation === 'baseline');
  if (!base) throw new ConfigError('verdicts need baseline runs on the ladder');
  return aq.from(
    fits
      .filter((f) => f.innovation !== 'baseline')
      .map((f) => {
        const pairs = f.seedFits
          .map((s) => ({ seed: s.seed, variant: s.fit, baseline: base.seedFits.find((b) => b.seed === s.seed)?.fit }))
          .filter((p): p is ceg.SeedFits => p.baseline !== undefined);
        let c: ceg.Classification | null = null;
        let error: string | null = null;
        try {
          c = ceg.classifyFromFits(pairs, opts);
        } catch (e) {
          error = (e as Error).message;
        }
        return {
          innovation: f.innovation, paper_category: getInnovation(f.innovation).category, seeds: pairs.length,
          slope: c?.slope ?? null, ci_low: c?.ci[0] ?? null, ci_high: c?.ci[1] ?? null,
          ceg_at_smallest: c?.cegAtSmallest ?? null, verdict: c?.verdict ?? 'undetermined', reason: c?.reason ?? error,
        };
      }),
  );
}

// ---------------------------------------------------------------- figures

function curves(runs: RunRecord[]): RunCurve[] {
  return runs.map((r) => ({
    innovation: r.innovation,
    seed: r.seed,
    points: r.metrics
      .filter((m) => typeof m.valLoss === 'number')
      .map((m) => ({ step: m.step, tokens: m.tokens, flops: m.flops, seconds: m.seconds, valLoss: m.valLoss as number })),
  }));
}

/** CEG rows of one axis for the bar chart (DNR rows carry the paper method's auxiliary CEG). */
export function cegRows(table: Table, axis: LossAxis = 'flops'): CegRow[] {
  return (table.objects() as Record<string, unknown>[])
    .filter((r) => r.innovation !== 'baseline')
    .map((r) => {
      const dnr = Boolean(r[`dnr_${axis}`]);
      const value = dnr ? (r.paper_aux_ceg as number | null) : (r[`ceg_${axis}`] as number | null);
      return {
        innovation: r.innovation as string, label: r.label as string, category: r.category as CegRow['category'],
        ceg: value ?? NaN, ci_low: (r[`ci_low_${axis}`] as number | null) ?? undefined,
        ci_high: (r[`ci_high_${axis}`] as number | null) ?? undefined, dnr,
      };
    })
    .filter((r) => Number.isFinite(r.ceg));
}

export function paperVsOursRows(pvo: Table): PaperVsOursRow[] {
  return (pvo.objects() as Record<string, unknown>[])
    .filter((r) => r.innovation !== 'baseline' && typeof r.ceg_flops === 'number')
    .map((r) => ({
      innovation: r.innovation as string, label: r.label as string,
      paperCeg: (r.published_dnr ? r.published_aux_ceg : r.published_ceg) as number | null,
      paperDnr: Boolean(r.published_dnr), ourCeg: r.ceg_flops as number,
      ci_low: (r.ci_low_flops as number | null) ?? undefined, ci_high: (r.ci_high_flops as number | null) ?? undefined,
    }));
}

function scalingSeries(fits: ScalingResult[]): ScalingSeries[] {
  return fits.map((f) => {
    const [lo, hi] = f.fit.range;
    const grid = Array.from({ length: 30 }, (_, i) => lo * Math.pow(hi / lo, i / 29));
    return { innovation: f.innovation, points: f.points, curve: grid.map((C) => ({ C, L: ceg.predictLoss(f.fit, C) })) };
  });
}

function cegCurves(fits: ScalingResult[]): CegCurve[] {
  const base = fits.find((f) => f.innovation === 'baseline');
  if (!base) return [];
  return fits
    .filter((f) => f.innovation !== 'baseline')
    .map((f) => {
      const pts = ceg.cegCurve(base.fit, f.fit, { extendTo: 10 * base.fit.range[1] }).filter((p) => Number.isFinite(p.ceg));
      const observed: [number, number] = [Math.max(base.fit.range[0], f.fit.range[0]), Math.min(base.fit.range[1], f.fit.range[1])];
      return { innovation: f.innovation, curve: pts.map((p) => ({ C: p.C, ceg: p.ceg })), observed };
    });
}

export const fig = {
  lossCurves: (runs: RunRecord[], opts: { axis: LossAxis; smooth?: number }) => figures.lossCurves(curves(runs), opts),
  cegBars: (table: Table, axis: LossAxis = 'flops') => figures.cegBars(cegRows(table, axis), { measure: axis }),
  paperVsOurs: (pvo: Table) => figures.paperVsOurs(paperVsOursRows(pvo), { scale: 'compact' }),
  scalingFits: (fits: ScalingResult[]) => figures.scalingFits(scalingSeries(fits)),
  cegVsCompute: (fits: ScalingResult[]) => figures.cegVsCompute(cegCurves(fits)),
  ropeRotation: () => figures.ropeRotation({ headDim: 8, positions: 16 }),
  attentionPattern: (panels: { title: string; mask: number[][] }[]) => figures.attentionPattern(panels),
  expertLoadHistogram: (counts: number[] | { name: string; counts: number[] }[]) => figures.expertLoadHistogram(counts),
};

/** Tokens per expert at the last evaluation of each MoE run (summed over layers). */
export function expertLoad(runs: RunRecord[]): { name: string; counts: number[] }[] {
  return runs
    .map((r) => ({ r, load: [...r.metrics].reverse().find((m) => Array.isArray(m.expertLoad))?.expertLoad as number[] | undefined }))
    .filter((x) => x.load)
    .map((x) => ({ name: `${x.r.innovation} seed ${x.r.seed}`, counts: x.load! }));
}

// ---------------------------------------------------------------- display

export async function show(figure: Figure): Promise<void> {
  await showFigure(figure);
}

/** An arquero table as HTML in a notebook, as aligned text elsewhere. */
export function showTable(table: Table, opts: { limit?: number } = {}): void {
  const limit = opts.limit ?? 50;
  if ((globalThis as Record<string, unknown>).__ceg_notebook_sink__ || (globalThis as { __tslab__?: unknown }).__tslab__) {
    showHtml(table.toHTML({ limit, format: numberFormats(table) }));
  } else {
    table.print({ limit });
  }
}

function numberFormats(table: Table): Record<string, (v: unknown) => string> {
  const out: Record<string, (v: unknown) => string> = {};
  for (const c of table.columnNames()) {
    out[c] = (v: unknown) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3 ? v.toExponential(3) : v.toFixed(4)) : v == null ? '—' : String(v));
  }
  return out;
}

// ---------------------------------------------------------------- demonstrations

export const demo = {
  /** LayerNorm of one vector with unit gain and zero bias. */
  layerNorm(v: number[]): number[] {
    return tf.tidy(() => Array.from(layerNorm(tf.tensor2d([v]), tf.ones([v.length]) as tf.Tensor1D, tf.zeros([v.length]) as tf.Tensor1D).dataSync()));
  },
  rmsNorm(v: number[]): number[] {
    return tf.tidy(() => Array.from(rmsNorm(tf.tensor2d([v]), tf.ones([v.length]) as tf.Tensor1D).dataSync()));
  },
  /** q·k after RoPE for the same q, k placed at (m, n) pairs with equal and different offsets. */
  ropeRelativeScores(): Table {
    const hs = 8;
    const q = Array.from({ length: hs }, (_, i) => Math.sin(i + 1));
    const k = Array.from({ length: hs }, (_, i) => Math.cos(2 * i + 1));
    const score = (m: number, n: number) =>
      tf.tidy(() => {
        const T = Math.max(m, n) + 1;
        const Q = tf.buffer([1, 1, T, hs]);
        const K = tf.buffer([1, 1, T, hs]);
        for (let i = 0; i < hs; i++) {
          Q.set(q[i], 0, 0, m, i);
          K.set(k[i], 0, 0, n, i);
        }
        const rq = applyRope(Q.toTensor() as tf.Tensor4D, 10000);
        const rk = applyRope(K.toTensor() as tf.Tensor4D, 10000);
        const a = tf.slice(rq, [0, 0, m, 0], [1, 1, 1, hs]);
        const b = tf.slice(rk, [0, 0, n, 0], [1, 1, 1, hs]);
        return tf.sum(tf.mul(a, b)).dataSync()[0];
      });
    const pairs: [number, number][] = [[3, 1], [7, 5], [12, 10], [5, 1], [9, 5]];
    return aq.from(pairs.map(([m, n]) => ({ query_pos: m, key_pos: n, offset: m - n, score: score(m, n) })));
  },
  /** Masks of causal and block-sparse attention for one head of a random input at a scale. */
  sparsePattern(scale: string): { title: string; mask: number[][] }[] {
    const cfg = modelConfig(scale, 'sparse');
    const T = Math.min(cfg.blockSize, 8 * cfg.sparse.blockSize);
    const hs = cfg.nEmbd / cfg.nHead;
    return tf.tidy(() => {
      const q = tf.randomNormal([1, 1, T, hs], 0, 1, 'float32', 7) as tf.Tensor4D;
      const k = tf.randomNormal([1, 1, T, hs], 0, 1, 'float32', 8) as tf.Tensor4D;
      const m = (sparseMask(q, k, cfg.sparse).arraySync() as unknown as number[][][][])[0][0].map((row) => row.map((x) => (x ? 1 : 0)));
      const causal = Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => (j <= i ? 1 : 0)));
      return [
        { title: `causal, T = ${T}`, mask: causal },
        { title: `block-sparse: block ${cfg.sparse.blockSize}, ${cfg.sparse.localBlocks} local + ${cfg.sparse.selectedBlocks} selected`, mask: m },
      ];
    });
  },
};

/** Time and peak memory of attention kernels, forward + backward, on the running backend. */
export function measureAttention(o: { T: number[]; kernels: ('plain' | 'fused' | 'sparse')[]; B?: number; H?: number; hs?: number; repeats?: number }): Table {
  const B = o.B ?? 4, H = o.H ?? 4, hs = o.hs ?? 32, repeats = o.repeats ?? 3;
  const rows: Record<string, unknown>[] = [];
  for (const T of o.T) {
    for (const kernel of o.kernels) {
      const opts: AttendOptions = { dropout: 0, training: false, seed: 0, sparse: { blockSize: Math.min(16, T), localBlocks: 2, selectedBlocks: 2 } };
      const q = tf.randomNormal([B, H, T, hs], 0, 1, 'float32', 1) as tf.Tensor4D;
      const k = tf.randomNormal([B, H, T, hs], 0, 1, 'float32', 2) as tf.Tensor4D;
      const v = tf.randomNormal([B, H, T, hs], 0, 1, 'float32', 3) as tf.Tensor4D;
      const f = (a: tf.Tensor4D, b: tf.Tensor4D, c: tf.Tensor4D) => tf.sum(attend(kernel, a, b, c, opts)) as tf.Scalar;
      const grad = tf.grads(f as (...xs: tf.Tensor[]) => tf.Scalar);
      const base = tf.memory().numBytes;
      let peak = 0;
      const times: number[] = [];
      for (let r = 0; r < repeats + 1; r++) {
        const t0 = performance.now();
        const gs = grad([q, k, v]);
        gs.forEach((g) => g.dataSync());
        if (r > 0) times.push(performance.now() - t0);
        peak = Math.max(peak, tf.memory().numBytes - base);
        gs.forEach((g) => g.dispose());
      }
      q.dispose(); k.dispose(); v.dispose();
      times.sort((a, b) => a - b);
      rows.push({ T, kernel, ms_fwd_bwd: times[Math.floor(times.length / 2)], live_mib_after_grad: peak / 2 ** 20 });
    }
  }
  return aq.from(rows);
}

export { scaleNames };
export type { LadderRung };
