/**
 * The lab in one import, for notebooks and scripts: a typed facade of re-exports over the
 * modules that do the work (runs: src/report/lab-runs.ts; what a variant is:
 * src/report/variants.ts; measurements: src/report/measure.ts and src/engine/memory.ts;
 * pictures of mechanisms: src/report/demos.ts; display: src/report/notebook.ts; scaling:
 * src/ceg/ladder.ts; the study: src/plans.ts, src/report/study.ts), plus the CEG-table helpers
 * below that turn a CEG table into what a notebook shows.
 *
 *   import * as lab from 'ceg-lab/lab';   // in notebooks/ (docs/notebooks.md); '../src/lab.js' elsewhere
 *   const runs = await lab.ensureRuns({ scale: 'micro', innovations: ['baseline', 'rope'], seeds: [1, 2, 3] });
 *   lab.showTable(lab.cegTable(runs));
 */
import * as aq from 'arquero';
import * as ceg from './ceg/index.js';
import { secondsTimingKey } from './train/timing.js';
import type { RunRecord } from './runs/index.js';
import * as figures from './report/figures.js';
import type { Figure, LossAxis } from './report/types.js';
import { cegBarRows, paperVsOursRows, scalingSeries, cegCurves, expertLoad, runCurves } from './report/from-runs.js';
import { noteFigure, attentionCostFigure, cegExplainedFigure, normDemoFigure } from './report/teaching.js';
import type { ScalingResult } from './ceg/ladder.js';
import { demo } from './report/demos.js';

export { noteFigure };
export { STUDY_SET, INNOVATIONS } from './innovations.js';
export type { RunRecord };
type Table = ReturnType<typeof aq.from>;

// ---------------------------------------------------------------- setup and runs (src/report/lab-runs.ts)

export {
  scaleFromEnv,
  seedsFor,
  ladderSeedsFor,
  store,
  backend,
  start,
  ensureRuns,
  describeScale,
  ensureLadder,
  type EnsureOptions,
} from './report/lab-runs.js';

// ---------------------------------------------------------------- what a variant is (src/report/variants.ts)

export {
  modelConfig,
  paramCount,
  variantTable,
  ladderTable,
  innovationTable,
  runTable,
  lossGap,
  flopBreakdown,
  kvCacheTable,
} from './report/variants.js';

// ---------------------------------------------------------------- CEG

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
  const unit: Record<string, string> = {
    steps: 'optimizer steps',
    tokens: 'training tokens',
    flops: 'FLOPs',
    seconds: 'wall-clock seconds',
  };
  const lines = axes.map((a) => {
    const x = r.ceg[a];
    if (!x) return `- ${unit[a]}: no CEG (—).`;
    if (x.dnr)
      return `- ${unit[a]}: DNR — no seed of ${r.label} reached the baseline's final validation loss within its run.`;
    const c = x.ceg;
    if (c == null || !Number.isFinite(c)) return `- ${unit[a]}: no CEG (—).`;
    const ci =
      x.ciLow !== null
        ? ` (95% interval ${f3(x.ciLow)}–${f3(x.ciHigh)} over ${r.nSeeds} seeds)`
        : ' (one seed: no interval)';
    const verb =
      c >= 1
        ? `needed ${(1 / c).toFixed(2)}× the baseline's ${unit[a]} to reach the baseline's final loss`
        : `needed ${(1 / c).toFixed(2)}× the baseline's ${unit[a]} (more than the baseline) to reach its final loss`;
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
export function multiplicativity(
  table: CegTableLike,
  parts: string[],
  combo: string,
  axes: ceg.Axis[] = ['steps', 'flops', 'seconds'],
): Table {
  const rows = cegOf(table).result.rows;
  const get = (id: string, axis: ceg.Axis) => rows.find((r) => r.innovation === id)?.ceg[axis]?.ceg;
  return aq.from(
    axes.map((axis) => {
      const vals = parts.map((p) => get(p, axis));
      const product = vals.every((v) => typeof v === 'number') ? (vals as number[]).reduce((a, b) => a * b, 1) : null;
      const measured = get(combo, axis) ?? null;
      return {
        axis,
        parts: parts.join(' x '),
        product_of_parts: product,
        combination: measured,
        ratio: product && measured ? measured / product : null,
      };
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
    dnr.length
      ? `no finite CEG to draw: ${dnr.join(', ')} did not reach the target (DNR) and has no auxiliary CEG`
      : 'no innovation besides the baseline in this table',
  );
}

function scalingFitsOrNote(fits: ScalingResult[]): Figure {
  return fits.length
    ? figures.scalingFits(scalingSeries(fits))
    : noteFigure('Scaling fits', 'no innovation has enough ladder points for a fit (3 compute values needed)');
}

function cegVsComputeOrNote(fits: ScalingResult[]): Figure {
  const c = cegCurves(fits);
  return c.length
    ? figures.cegVsCompute(c)
    : noteFigure(
        'CEG as a function of compute',
        'no CEG(C) curve: the baseline or the variants have no fit, or their compute ranges do not overlap',
      );
}

export const fig = {
  lossCurves: (
    runs: RunRecord[],
    opts: { axis: LossAxis; smooth?: number; band?: 'minmax' | 'sd' | 'none'; logX?: boolean; title?: string },
  ) => figures.lossCurves(runCurves(runs), opts),
  cegBars: (table: CegTableLike, axis: LossAxis = 'flops') => cegBarsOrNote(table, axis),
  /** our CEG in optimizer steps (the paper's axis) against the published numbers of both scales; takes lab.paperVsOurs(table) or the CEG table itself */
  paperVsOurs: (t: Table) => {
    const { result, runs } = cegOf(pvoSource.get(t) ?? t);
    const rows = paperVsOursRows(result, runs);
    return rows.length
      ? figures.paperVsOurs(rows, {
          note: 'paper: steps, its method, one seed per scale; ours: steps, geometric mean over seeds',
        })
      : noteFigure("Our CEG vs the paper's", 'no innovation has a finite CEG in steps to compare');
  },
  scalingFits: (fits: ScalingResult[]) => scalingFitsOrNote(fits),
  cegVsCompute: (fits: ScalingResult[]) => cegVsComputeOrNote(fits),
  ropeRotation: () => figures.ropeRotation({ headDim: 8, positions: 16 }),
  attentionPattern: (panels: { title: string; mask: number[][] }[]) => figures.attentionPattern(panels),
  expertLoadHistogram: (counts: number[] | { name: string; counts: number[] }[]) => figures.expertLoadHistogram(counts),
  attentionCost: (table: Table) =>
    attentionCostFigure(
      table.objects() as { T: number; kernel: string; ms_fwd_bwd: number; peak_mib_fwd_bwd: number }[],
    ),
  cegExplained: (runs: RunRecord[], id: string, axis: LossAxis = 'flops') => cegExplainedFigure(runs, id, axis),
  normDemo: (v: number[]) => normDemoFigure(v, demo.layerNorm(v), demo.rmsNorm(v)),
};

export { expertLoad };

// ---------------------------------------------------------------- display (src/report/notebook.ts)

export { show, showTable } from './report/notebook.js';

// ---------------------------------------------------------------- demonstrations and measurements

export { demo } from './report/demos.js';
export { peakBufferBytes } from './engine/memory.js';
export { measureAttention } from './report/measure.js';
export { scaleNames, type LadderRung } from './scales.js';

// ---------------------------------------------------------------- the study (issue #13)

/** Study plans, their stored results and the analysis (docs/study.md): `lab.studyData(lab.getPlan('cpu'), new lab.RunStore(), 'wasm')`. */
export { getPlan, planNames, PLANS } from './plans.js';
export { planRuns, planGeometry } from './train/study.js';
export { studyData, analyzeStudyData, formatStudyReport, chooseLrs } from './report/study.js';
export { RunStore } from './runs/index.js';
export * from './lab-study.js'; // the study and the anchors (notebooks 09-12)
