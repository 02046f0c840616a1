/**
 * The lab in one import, for notebooks and scripts: train-or-load runs, CEG tables, scaling
 * fits, verdicts, figures and small demonstrations. Thin glue over src/train, src/runs,
 * src/ceg, src/report and src/model; no logic of its own beyond converting between them.
 *
 *   const lab = await import('../src/lab.ts');
 *   const runs = await lab.ensureRuns({ scale: 'micro', innovations: ['baseline', 'rope'], seeds: [1, 2, 3] });
 *   lab.showTable(lab.cegTable(runs));
 */
import * as aq from 'arquero';
import { tf, initEngine, requestedBackend, type EngineInfo, type BackendName } from './engine/index.js';
import { INNOVATIONS, STUDY_SET, innovationChange } from './innovations.js';
import { ladderOf, scaleNames, type LadderRung } from './scales.js';
import type { ModelConfig } from './config.js';
import { ConfigError } from './config.js';
import { RunStore, type RunRecord } from './runs/index.js';
import { ensureRuns as sweep, runSpec, resolveScale } from './train/sweep.js';
import * as ceg from './ceg/index.js';
import { secondsTimingKey } from './train/timing.js';
import * as figures from './report/figures.js';
import { show as showFigure, showHtml, inNotebook } from './report/notebook.js';
import type { Figure, LossAxis } from './report/types.js';
import { cegBarRows, paperVsOursRows, scalingSeries, cegCurves, expertLoad, runCurves } from './report/from-runs.js';
import { noteFigure, attentionCostFigure, cegExplainedFigure, normDemoFigure } from './report/teaching.js';

export { noteFigure };
import type { ScalingResult } from './ceg/ladder.js';
import { paramCount as countOf } from './model/params.js';
import { stepFlops } from './model/flops.js';
import { layerNorm, rmsNorm } from './model/norms.js';
import { applyRope } from './model/rope.js';
import { attend, nsaSelection, sparseMask, type AttendOptions } from './model/attention/index.js';

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

/** Seeds of the scaling ladder: CEG_SEEDS, else 2 at micro (the stored ladder runs), 1 otherwise. */
export function ladderSeedsFor(scale: string): number[] {
  if (process.env.CEG_SEEDS) return seedsFor(scale);
  return scale === 'micro' ? [1, 2] : [1];
}

/** The run store: CEG_RUNS or <project>/data/runs, wherever the notebook runs. */
export function store(): RunStore {
  return new RunStore();
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
  /** train even where a run would repeat its corpus more than 4 epochs (compact/full on the bundled corpus) */
  allowSmallCorpus?: boolean;
}

/**
 * Train what the store lacks, then return every requested run's metrics. Progress goes to the
 * terminal (stderr); in a notebook one summary line per run is printed into the cell's output.
 */
export async function ensureRuns(o: EnsureOptions): Promise<RunRecord[]> {
  const runs = await sweep({
    scale: o.scale, innovations: o.innovations, seeds: o.seeds, backend: backend(), store: store(),
    // stdout: a notebook shows stderr as red error blocks, and progress is no error
    stream: o.progress === false ? null : process.stdout, allowSmallCorpus: o.allowSmallCorpus,
  });
  if (inNotebook() && o.progress !== false) for (const r of runs) console.log(runLine(r));
  return runs;
}

function runLine(r: RunRecord): string {
  const last = r.metrics[r.metrics.length - 1];
  const how = r.cached ? 'loaded from the run store' : `trained now (${last ? last.seconds.toFixed(1) : '?'} s)`;
  const loss = typeof last?.valLoss === 'number' ? last.valLoss.toFixed(4) : '—';
  return `${r.innovation} · ${r.scale} · seed ${r.seed}: ${how}, ${last?.step ?? 0} steps, final val loss ${loss}  [run ${r.id}]`;
}

/** One paragraph about a scale and its seeds (printed by the notebooks' setup cell). */
export function describeScale(scale: string, seeds: readonly number[]): string {
  const s = resolveScale(scale);
  const m = s.model;
  const t = s.train;
  const lines = [
    `scale ${scale}: ${s.description}`,
    `  model ${m.nLayer} layers × ${m.nHead} heads × width ${m.nEmbd}, context ${m.blockSize}, vocab ${m.vocabSize} (${s.data.tokenizer} tokens of ${s.data.corpus})`,
    `  training ${t.steps} steps × ${t.batchSize * t.gradAccum} sequences, validation every ${t.evalInterval} steps; seeds ${seeds.join(', ')}`,
  ];
  if (scale === 'smoke') lines.push('  (smoke is a plumbing check: its numbers mean nothing)');
  if (seeds.length < 2) lines.push('  (one seed: no error bars; CEG_SEEDS=1,2,3 adds seeds)');
  return lines.join('\n');
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

/**
 * What each variant changes at a scale: the config fields that differ from the baseline,
 * parameters, FLOPs per optimizer step (forward + backward), and both relative to the baseline.
 * A variant with fewer FLOPs per step can lose per step yet win per FLOP, and the reverse.
 */
export function variantTable(scale: string, ids: readonly string[]): Table {
  const s = resolveScale(scale);
  const base = modelConfig(scale, 'baseline');
  const tokens = s.train.batchSize * s.train.gradAccum * base.blockSize;
  const baseFlops = stepFlops(base, tokens).total;
  const baseParams = paramCount(base);
  return aq.from(
    ids.map((id) => {
      const c = modelConfig(scale, id);
      const diff = (Object.keys(c) as (keyof ModelConfig)[])
        .filter((k) => JSON.stringify(c[k]) !== JSON.stringify(base[k]))
        .map((k) => `${k}: ${JSON.stringify(base[k])} → ${JSON.stringify(c[k])}`);
      const flops = stepFlops(c, tokens).total;
      const params = paramCount(c);
      return {
        innovation: id, changes: diff.length ? diff.join('; ') : id === 'baseline' ? '—' : 'none at this scale (same model as the baseline)',
        params, params_vs_baseline: params / baseParams, gflop_per_step: flops / 1e9, flops_vs_baseline: flops / baseFlops,
      };
    }),
  );
}

/** The scaling ladder of a scale: one row per rung with its size, steps and training FLOPs. */
export function ladderTable(scale: string): Table {
  return aq.from(
    ladderOf(scale).map((r) => {
      const s = resolveScale(r.name);
      const tokens = s.train.batchSize * s.train.gradAccum * s.model.blockSize;
      return {
        rung: r.name, layers: r.nLayer, heads: r.nHead, width: r.nEmbd, steps: r.steps,
        params: paramCount(s.model), train_pflop: (stepFlops(s.model, tokens).total * r.steps) / 1e15,
      };
    }),
  );
}

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

/**
 * Largest |validation loss of b − validation loss of a| over the evaluations two runs share,
 * per seed: how far apart two variants' curves are step by step (e.g. plain vs fused attention,
 * which compute the same function).
 */
export function lossGap(runs: RunRecord[], a: string, b: string): Table {
  const rows = runs
    .filter((r) => r.innovation === b)
    .map((vb) => {
      const va = runs.find((r) => r.innovation === a && r.seed === vb.seed);
      const at = new Map((va?.metrics ?? []).filter((m) => typeof m.valLoss === 'number').map((m) => [m.step, m.valLoss as number]));
      const gaps = vb.metrics
        .filter((m) => typeof m.valLoss === 'number' && at.has(m.step))
        .map((m) => Math.abs((m.valLoss as number) - (at.get(m.step) as number)));
      return { seed: vb.seed, evaluations: gaps.length, max_abs_gap: gaps.length ? Math.max(...gaps) : null, mean_abs_gap: gaps.length ? gaps.reduce((x, y) => x + y, 0) / gaps.length : null };
    });
  return aq.from(rows);
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
  // per-run seconds of different machines or kernel sets are never divided into each other
  const sameTiming = secondsTimingKey(runs.map((r) => r.timingKey)) !== null;
  const axes = (opts.axes ?? [...ceg.AXES]).filter((a) => a !== 'seconds' || sameTiming);
  const result = ceg.cegTable(runs, { ...opts, axes });
  const table = ceg.cegFrame(result);
  behind.set(table, { result, runs });
  return table;
}

/** The typed CEG table behind a lab.cegTable frame, and the runs it was computed from (figures need them for DNR rows' auxiliary CEG). */
const behind = new WeakMap<object, { result: ceg.CegTable; runs: RunRecord[] }>();

/** A CEG table as lab functions take it: lab.cegTable's frame, or the typed table (src/ceg cegTable). */
export type CegTableLike = Table | ceg.CegTable;

function cegOf(table: CegTableLike): { result: ceg.CegTable; runs: RunRecord[] } {
  const b = behind.get(table);
  if (b) return b;
  if ('rows' in table && Array.isArray(table.rows)) return { result: table, runs: [] };
  throw new ceg.CegError('expected a table made by lab.cegTable(runs) or a typed CEG table');
}

/** The compute axes the notebooks plot and compare on. */
export const LOSS_AXES = ['steps', 'flops', 'seconds'] as const satisfies readonly LossAxis[];

const f3 = (v: number | null | undefined) => ceg.f3(v, '—');

/**
 * The CEG table in a readable form: one row per innovation, the paper's method, and our CEG on
 * each axis as "value [95% interval]" (interval over seeds; none with one seed).
 */
export function cegSummary(table: CegTableLike, axes: readonly LossAxis[] = LOSS_AXES): Table {
  return aq.from(
    cegOf(table).result.rows.map((r) => {
      const row: Record<string, unknown> = { innovation: r.label, paper_category: r.category, seeds: r.nSeeds };
      row['paper method (steps, 8-pt mean)'] = r.paper.dnr ? ceg.paperCell(r.paper, '—') : f3(r.paper.ceg);
      for (const a of axes) {
        const c = r.ceg[a]; // an axis the table was made without (seconds of mixed machines): '—'
        row[`CEG ${a}`] = c ? ceg.cegCell(c, r.nSeeds, '—') : '—';
      }
      row.best_val_loss = r.bestValLoss;
      return row;
    }),
  );
}

/** A sentence per axis saying what the CEG of `id` means, read from the table (for notebooks). */
export function explainCeg(table: CegTableLike, id: string, axes: readonly LossAxis[] = LOSS_AXES): string {
  const rows = cegOf(table).result.rows;
  const r = rows.find((x) => x.innovation === id);
  if (!r) return `${id}: not in this table (innovations: ${rows.map((x) => x.innovation).join(', ')})`;
  const unit: Record<string, string> = { steps: 'optimizer steps', tokens: 'training tokens', flops: 'FLOPs', seconds: 'wall-clock seconds' };
  const lines = axes.map((a) => {
    const x = r.ceg[a];
    if (!x) return `- ${unit[a]}: no CEG (—).`;
    if (x.dnr) return `- ${unit[a]}: DNR — no seed of ${r.label} reached the baseline's final validation loss within its run.`;
    const c = x.ceg;
    if (c == null || !Number.isFinite(c)) return `- ${unit[a]}: no CEG (—).`;
    const ci = x.ciLow !== null ? ` (95% interval ${f3(x.ciLow)}–${f3(x.ciHigh)} over ${r.nSeeds} seeds)` : ' (one seed: no interval)';
    const verb = c >= 1 ? `needed ${(1 / c).toFixed(2)}× the baseline's ${unit[a]} to reach the baseline's final loss` : `needed ${(1 / c).toFixed(2)}× the baseline's ${unit[a]} (more than the baseline) to reach its final loss`;
    return `- ${unit[a]}: CEG ${f3(c)}${ci}: ${r.label} ${verb}.`;
  });
  return [`${r.label} against the baseline (target: the baseline's final validation loss):`, ...lines].join('\n');
}

/** The paper's published numbers (compact by default, or full) beside ours. */
export function paperVsOurs(table: CegTableLike, scale: 'compact' | 'full' = 'compact'): Table {
  const pvo = ceg.paperVsOursFrame(ceg.paperVsOurs(cegOf(table).result, scale));
  pvoSource.set(pvo, table);
  return pvo;
}
const pvoSource = new WeakMap<object, CegTableLike>();

/** Is CEG multiplicative? The product of the parts' CEG against the combination's, per axis. */
export function multiplicativity(table: CegTableLike, parts: string[], combo: string, axes: ceg.Axis[] = ['steps', 'flops', 'seconds']): Table {
  const rows = cegOf(table).result.rows;
  const get = (id: string, axis: ceg.Axis) => rows.find((r) => r.innovation === id)?.ceg[axis]?.ceg;
  return aq.from(
    axes.map((axis) => {
      const vals = parts.map((p) => get(p, axis));
      const product = vals.every((v) => typeof v === 'number') ? (vals as number[]).reduce((a, b) => a * b, 1) : null;
      const measured = get(combo, axis) ?? null;
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

// ---------------------------------------------------------------- scaling (src/ceg/ladder.ts)

export { scalingAnalysis, scalingFits, verdicts, type ScalingResult, type ScalingAnalysis } from './ceg/ladder.js';

// ---------------------------------------------------------------- figures

function cegBarsOrNote(table: CegTableLike, axis: LossAxis): Figure {
  const { result, runs } = cegOf(table);
  const rows = cegBarRows(result, runs, axis);
  if (rows.length) return figures.cegBars(rows, { measure: axis });
  const dnr = result.rows.filter((r) => r.innovation !== 'baseline').map((r) => r.label);
  return noteFigure(
    `Compute-equivalent gain (${axis})`,
    dnr.length ? `no finite CEG to draw: ${dnr.join(', ')} did not reach the target (DNR) and has no auxiliary CEG` : 'no innovation besides the baseline in this table',
  );
}

function scalingFitsOrNote(fits: ScalingResult[]): Figure {
  return fits.length ? figures.scalingFits(scalingSeries(fits)) : noteFigure('Scaling fits', 'no innovation has enough ladder points for a fit (3 compute values needed)');
}

function cegVsComputeOrNote(fits: ScalingResult[]): Figure {
  const c = cegCurves(fits);
  return c.length ? figures.cegVsCompute(c) : noteFigure('CEG as a function of compute', 'no CEG(C) curve: the baseline or the variants have no fit, or their compute ranges do not overlap');
}

export const fig = {
  lossCurves: (runs: RunRecord[], opts: { axis: LossAxis; smooth?: number; band?: 'minmax' | 'sd' | 'none'; logX?: boolean; title?: string }) => figures.lossCurves(runCurves(runs), opts),
  cegBars: (table: CegTableLike, axis: LossAxis = 'flops') => cegBarsOrNote(table, axis),
  /** our CEG in optimizer steps (the paper's axis) against the published numbers of both scales; takes lab.paperVsOurs(table) or the CEG table itself */
  paperVsOurs: (t: Table) => {
    const { result, runs } = cegOf(pvoSource.get(t) ?? t);
    const rows = paperVsOursRows(result, runs);
    return rows.length ? figures.paperVsOurs(rows, { note: 'paper: steps, its method, one seed per scale; ours: steps, geometric mean over seeds' }) : noteFigure("Our CEG vs the paper's", 'no innovation has a finite CEG in steps to compare');
  },
  scalingFits: (fits: ScalingResult[]) => scalingFitsOrNote(fits),
  cegVsCompute: (fits: ScalingResult[]) => cegVsComputeOrNote(fits),
  ropeRotation: () => figures.ropeRotation({ headDim: 8, positions: 16 }),
  attentionPattern: (panels: { title: string; mask: number[][] }[]) => figures.attentionPattern(panels),
  expertLoadHistogram: (counts: number[] | { name: string; counts: number[] }[]) => figures.expertLoadHistogram(counts),
  attentionCost: (table: Table) => attentionCostFigure(table.objects() as { T: number; kernel: string; ms_fwd_bwd: number; peak_mib_fwd_bwd: number }[]),
  cegExplained: (runs: RunRecord[], id: string, axis: LossAxis = 'flops') => cegExplainedFigure(runs, id, axis),
  normDemo: (v: number[]) => normDemoFigure(v, demo.layerNorm(v), demo.rmsNorm(v)),
};

export { expertLoad };

// ---------------------------------------------------------------- display

export async function show(figure: Figure): Promise<void> {
  await showFigure(figure);
}

/** An arquero table as HTML in a notebook, as aligned text elsewhere. */
export function showTable(table: Table, opts: { limit?: number } = {}): void {
  const limit = opts.limit ?? 50;
  if (inNotebook()) {
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
  /** Masks of causal and block-sparse attention (ours, 'blocksparse') for one head of a random input at a scale. */
  sparsePattern(scale: string): { title: string; mask: number[][] }[] {
    const cfg = modelConfig(scale, 'blocksparse');
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
  /**
   * NSA ('sparse') for one K/V head of a random input at a scale: which tokens each query
   * reaches through the compression branch (the complete blocks, as block means) and through
   * the selection branch (the tokens of its top-k blocks, own block included), beside causal.
   */
  nsaPattern(scale: string): { title: string; mask: number[][] }[] {
    const cfg = modelConfig(scale, 'sparse');
    const n = cfg.nsa!;
    const T = Math.min(cfg.blockSize, 8 * n.blockSize);
    const D = cfg.nEmbd / n.heads;
    const BS = n.blockSize;
    return tf.tidy(() => {
      const q = tf.randomNormal([1, n.heads, T, D], 0, 1, 'float32', 7) as tf.Tensor4D;
      const k = tf.randomNormal([1, n.kvHeads, T, D], 0, 1, 'float32', 8) as tf.Tensor4D;
      const sel = (nsaSelection(q, k, n).arraySync() as unknown as (number | boolean)[][][][])[0][0];
      const rows = (f: (i: number, j: number) => boolean) => Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => (f(i, j) ? 1 : 0)));
      return [
        { title: `causal, T = ${T}`, mask: rows((i, j) => j <= i) },
        { title: `NSA compressed: complete blocks of ${BS}`, mask: rows((i, j) => Math.floor(j / BS) < Math.floor((i + 1) / BS)) },
        { title: `NSA selected: ${n.blockCounts} of the blocks (own block included)`, mask: rows((i, j) => j <= i && Boolean(sel[i][Math.floor(j / BS)])) },
      ];
    });
  },
};

/**
 * High-water mark of the bytes of distinct live tensor buffers while `run` executes, minus
 * what was live before (the method of bench/attention.ts): the engine's trackTensor and
 * removeDataId are wrapped for the duration, so every buffer the backend allocates is counted
 * once (a reshape view shares its buffer and is not counted twice), and the peak is exact,
 * not sampled after the fact. Returns the peak in bytes and run's result.
 */
export function peakBufferBytes<T>(run: () => T): { peak: number; result: T } {
  type Eng = { trackTensor(a: tf.Tensor, backend: unknown): void; removeDataId(dataId: object, backend: unknown): void };
  const eng = tf.engine() as unknown as Eng;
  const live = new Map<object, number>();
  let bytes = 0;
  let peak = 0;
  const track = eng.trackTensor;
  const remove = eng.removeDataId;
  eng.trackTensor = function (a, backend) {
    if (!live.has(a.dataId) && a.dtype !== 'string') {
      const n = a.size * (a.dtype === 'complex64' ? 8 : 4);
      live.set(a.dataId, n);
      bytes += n;
      peak = Math.max(peak, bytes);
    }
    return track.call(this, a, backend);
  };
  eng.removeDataId = function (dataId, backend) {
    bytes -= live.get(dataId) ?? 0;
    live.delete(dataId);
    return remove.call(this, dataId, backend);
  };
  try {
    const result = run();
    return { peak, result };
  } finally {
    eng.trackTensor = track;
    eng.removeDataId = remove;
  }
}

/**
 * Time and peak memory of attention kernels, forward + backward (gradients of sum(out ∘ w)
 * with respect to q, k, v, read back), on the running backend. q, k, v: [B, H, T, hs].
 * peak_mib_fwd_bwd: high-water mark of live buffers above the inputs (peakBufferBytes);
 * ms_fwd_bwd: median of `repeats` timed runs after one warm-up; scores_mib: one [B, H, T, T]
 * float32 score matrix, for scale.
 */
export function measureAttention(o: { T: number[]; kernels: ('plain' | 'fused' | 'sparse')[]; B?: number; H?: number; hs?: number; repeats?: number; fusedBlock?: number }): Table {
  const B = o.B ?? 4, H = o.H ?? 4, hs = o.hs ?? 32, repeats = o.repeats ?? 3;
  const rows: Record<string, unknown>[] = [];
  for (const T of o.T) {
    const q = tf.randomNormal([B, H, T, hs], 0, 1, 'float32', 1) as tf.Tensor4D;
    const k = tf.randomNormal([B, H, T, hs], 0, 1, 'float32', 2) as tf.Tensor4D;
    const v = tf.randomNormal([B, H, T, hs], 0, 1, 'float32', 3) as tf.Tensor4D;
    const w = tf.randomNormal([B, H, T, hs], 0, 1, 'float32', 4) as tf.Tensor4D;
    for (const kernel of o.kernels) {
      const opts: AttendOptions = {
        dropout: 0, training: false, seed: 0, fusedBlock: o.fusedBlock,
        sparse: { blockSize: Math.max(1, Math.min(32, Math.floor(T / 4))), localBlocks: 1, selectedBlocks: 1 },
      };
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(attend(kernel, a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, opts), w)) as tf.Scalar;
      const once = () => {
        const gs = tf.tidy(() => tf.grads(f)([q, k, v]));
        gs.forEach((g) => g.dataSync());
        tf.dispose(gs);
      };
      const { peak } = peakBufferBytes(once); // also the warm-up
      const times: number[] = [];
      for (let r = 0; r < repeats; r++) {
        const t0 = performance.now();
        once();
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      rows.push({ T, kernel, ms_fwd_bwd: times[Math.floor(times.length / 2)], peak_mib_fwd_bwd: peak / 2 ** 20, scores_mib: (B * H * T * T * 4) / 2 ** 20 });
    }
    tf.dispose([q, k, v, w]);
  }
  return aq.from(rows);
}

export { scaleNames };
export type { LadderRung };

// ---------------------------------------------------------------- the study (issue #13)

/** Study plans, their stored results and the analysis (docs/study.md): `lab.studyData(lab.getPlan('cpu'), new lab.RunStore(), 'wasm')`. */
export { getPlan, planNames, PLANS } from './plans.js';
export { planRuns, planGeometry } from './train/study.js';
export { studyData, analyzeStudyData, formatStudyReport, chooseLrs } from './report/study.js';
export { RunStore };
