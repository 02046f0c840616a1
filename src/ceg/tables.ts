/**
 * The CEG table: typed rows, one per innovation, with the paper's method and ours on every
 * axis; a terminal formatter; the side-by-side with the published numbers. Arquero tables
 * (cegFrame, paperVsOursFrame) are made only at the edges (notebooks, csv/json output).
 */
import * as aq from 'arquero';
import { getInnovation, STUDY_SET, INNOVATIONS, type PaperCategory } from '../innovations.js';
import { AXES, CegError, checkAxis, evalRows, type Axis, type RunCurve } from './types.js';
import type { Divergence, RunRecord } from '../runs/index.js';
import { paperCeg, type PaperCegOptions } from './paper.js';
import { cegSeeds, type CegTarget } from './ceg.js';
import { mean, type BootstrapOptions } from './random.js';
import {
  AS_PUBLISHED_ADJUSTED,
  AS_PUBLISHED_GAP_INNOVATION,
  PUBLISHED,
  PUBLISHED_SCALES,
  restsOnAdjustment,
  type PublishedRow,
  type PublishedScale,
} from './published.js';

type Table = ReturnType<typeof aq.from>;

/**
 * A run as the CEG table reads it (src/runs RunRecord, narrowed): its curve, and
 * - imported: trained elsewhere (ceg import), its rows labelled "[imported]";
 * - axes: the axes its rows carry (imported runs may lack tokens, FLOPs or seconds); default: every axis whose values are finite;
 * - diverged: left out of every CEG (neither reached nor not reached), counted in nDiverged.
 */
export type TableRun = RunCurve & Partial<Pick<RunRecord, 'imported' | 'axes'>> & { diverged?: DivergedInfo };

/** What a table needs to know of a divergence (src/runs Divergence, narrowed). */
export type DivergedInfo = Pick<Divergence, 'step' | 'loss' | 'lr'>;

export interface CegTableOptions {
  /** id of the reference innovation (default 'baseline') */
  baseline?: string;
  /** keep only runs of this scale (required when the runs hold several scales) */
  scale?: string;
  /** axes of our CEG (default: those of steps, tokens, flops, seconds every run carries) */
  axes?: Axis[];
  /** target of our CEG (default baseline-final) */
  target?: CegTarget;
  /** smoothing window of our CEG (default 1: none) */
  smoothWindow?: number;
  /** options of the paper's method */
  paper?: PaperCegOptions;
  /**
   * the paper's method "as published": add |LayerNorm − baseline| (the same seed's
   * layernorm run) to the curves the results notebook adjusted (AS_PUBLISHED_ADJUSTED.full:
   * rope, mqa) before their CEGs (src/ceg/paper.ts, step 5). Default false. Rows it touched
   * have paper.adjusted = true.
   */
  asPublished?: boolean;
  bootstrap?: BootstrapOptions;
}

/** The run carries `axis`: as declared (imported runs), else every evaluation's value on it is finite. */
function runHasAxis(r: TableRun, axis: Axis): boolean {
  if (r.axes) return r.axes.includes(axis);
  return r.metrics
    .filter((m) => typeof m.valLoss === 'number')
    .every((m) => Number.isFinite(axis === 'steps' ? m.step : m[axis]));
}

/** Row order: the paper's study set first (its table order), then the registry's order. */
function order(id: string): number {
  const s = (STUDY_SET as readonly string[]).indexOf(id);
  if (s >= 0) return s;
  const r = INNOVATIONS.findIndex((i) => i.id === id);
  return r >= 0 ? STUDY_SET.length + r : STUDY_SET.length + INNOVATIONS.length; // names of imported runs last
}

/** Our CEG of one innovation on one compute axis, over seed pairs (src/ceg/ceg.ts cegSeeds). */
export interface AxisCeg {
  /** geometric mean over the seed pairs that reached; null when none did */
  ceg: number | null;
  /** bootstrap 95% interval over seed pairs; null with fewer than 2 reaching pairs */
  ciLow: number | null;
  ciHigh: number | null;
  /** no seed pair reached the target */
  dnr: boolean;
  /** seed pairs that did not reach */
  nDnr: number;
}

/** The paper's method (src/ceg/paper.ts) on our runs, over matched seeds. */
export interface PaperMethodCeg {
  /** mean over the seeds that reached; null when none did */
  ceg: number | null;
  /** no seed reached */
  dnr: boolean;
  nDnr: number;
  /** mean auxiliary CEG over the DNR seeds; null when there is none */
  auxCeg: number | null;
  /** the as-published adjustment (CegTableOptions.asPublished) was applied to this row */
  adjusted: boolean;
}

/** One innovation's row of the CEG table. */
export interface CegRow {
  innovation: string;
  /** registry label ("[imported]" appended for imported runs) */
  label: string;
  category: PaperCategory;
  imported: boolean;
  /** runs compared (diverged runs excluded) */
  nSeeds: number;
  /** diverged runs left out of every CEG */
  nDiverged: number;
  /** mean over seeds of each run's lowest raw validation loss */
  bestValLoss: number;
  paper: PaperMethodCeg;
  /** our CEG on each axis of CegTable.axes (absent on any other axis) */
  ceg: Partial<Record<Axis, AxisCeg>>;
}

/** The CEG table: one row per innovation, our CEG on `axes`, the paper's method beside it. */
export interface CegTable {
  scale: string;
  /** the axes every row carries in `ceg` */
  axes: Axis[];
  rows: CegRow[];
}

/** A row's CEG on an axis of its table; a clear error when the table was made without that axis. */
export function axisCeg(row: CegRow, axis: Axis): AxisCeg {
  const c = row.ceg[axis];
  if (!c)
    throw new CegError(`the CEG table has no axis "${axis}" (axes: ${Object.keys(row.ceg).join(', ') || 'none'})`);
  return c;
}

/**
 * One row per innovation (study set first, then the registry's order): label, category
 * (the paper's claim), seeds, best validation loss, the paper's method (mean over seeds that
 * reached, DNR count, auxiliary CEG over DNR seeds) and, per axis, our CEG (geometric mean
 * over seed pairs) with its bootstrap interval and DNR count.
 */
export function cegTable(runs: TableRun[], opts: CegTableOptions = {}): CegTable {
  const baselineId = opts.baseline ?? 'baseline';
  const scales = [...new Set(runs.map((r) => r.scale))];
  const scale = opts.scale ?? (scales.length === 1 ? scales[0] : undefined);
  if (scale === undefined)
    throw new CegError(
      `runs hold ${scales.length ? 'several scales (' + scales.join(', ') + ')' : 'no run'}; pass opts.scale`,
    );
  const ofScale = runs.filter((r) => r.scale === scale);
  const mine = ofScale.filter((r) => !r.diverged); // diverged runs are listed apart (divergedRuns), never compared
  const base = mine.filter((r) => r.innovation === baselineId);
  if (base.length === 0)
    throw new CegError(
      `no "${baselineId}" run at scale "${scale}"; innovations present: ${[...new Set(mine.map((r) => r.innovation))].join(', ') || 'none'}`,
    );
  const axes = (opts.axes ?? AXES.filter((a) => mine.every((r) => runHasAxis(r, a)))).map(checkAxis);
  const ids = [...new Set(mine.map((r) => r.innovation))].sort((a, b) => order(a) - order(b));
  const rows = ids.map((id): CegRow => {
    const vs = mine.filter((r) => r.innovation === id);
    const imported = vs.some((r) => r.imported === true);
    // an imported run keeps its own name; any other id must be in the registry (a typo is an error)
    const known = !imported || INNOVATIONS.some((i) => i.id === id);
    const inn = known ? getInnovation(id) : { label: id, category: 'not in paper' as const };
    // the paper's method, per matched seed
    const adjust = opts.asPublished === true && AS_PUBLISHED_ADJUSTED.full.includes(id);
    const gapOf = (seed: number) => {
      const ln = mine.find((r) => r.innovation === AS_PUBLISHED_GAP_INNOVATION && r.seed === seed);
      if (!ln)
        throw new CegError(
          `the as-published adjustment of ${id} needs a ${AS_PUBLISHED_GAP_INNOVATION} run of seed ${seed} at scale "${scale}"`,
        );
      return ln.metrics;
    };
    const bestValLoss = mean(
      vs.map((r) => Math.min(...evalRows(r.metrics, `${id} seed ${r.seed}`).map((m) => m.valLoss))),
    );
    const paper = vs
      .map((v) => ({ v, b: base.find((b) => b.seed === v.seed) }))
      .filter((p) => p.b !== undefined)
      .map((p) => paperCeg(p.b!.metrics, p.v.metrics, adjust ? { ...opts.paper, gap: gapOf(p.v.seed) } : opts.paper));
    const reached = paper.filter((p) => !p.dnr).map((p) => p.ceg as number);
    const aux = paper.filter((p) => p.dnr && p.auxCeg != null).map((p) => p.auxCeg as number);
    const ours: Partial<Record<Axis, AxisCeg>> = {};
    for (const axis of axes) {
      const s = cegSeeds(base, vs, {
        axis,
        target: opts.target,
        smoothWindow: opts.smoothWindow,
        bootstrap: opts.bootstrap,
      });
      ours[axis] = {
        ceg: s.ceg,
        ciLow: s.ci ? s.ci[0] : null,
        ciHigh: s.ci ? s.ci[1] : null,
        dnr: s.dnr,
        nDnr: s.nDnr,
      };
    }
    return {
      innovation: id,
      label: imported ? `${inn.label} [imported]` : inn.label,
      category: inn.category,
      imported,
      nSeeds: vs.length,
      nDiverged: ofScale.filter((r) => r.innovation === id && r.diverged).length,
      bestValLoss,
      paper: {
        ceg: reached.length ? mean(reached) : null,
        dnr: paper.length > 0 && reached.length === 0,
        nDnr: paper.length - reached.length,
        auxCeg: aux.length ? mean(aux) : null,
        adjusted: adjust,
      },
      ceg: ours,
    };
  });
  return { scale, axes, rows };
}

/**
 * The CEG table as an arquero table, for notebooks and machine-readable output (ceg report
 * --format csv/json): innovation, label, category, imported, n_seeds, n_diverged,
 * best_val_loss, paper_adjusted, paper_ceg, paper_dnr, paper_n_dnr, paper_aux_ceg, and per
 * axis ceg_<axis>, ci_low_<axis>, ci_high_<axis>, dnr_<axis>, n_dnr_<axis>.
 */
export function cegFrame(table: CegTable): Table {
  return aq.from(
    table.rows.map((r) => {
      const flat: Record<string, unknown> = {
        innovation: r.innovation,
        label: r.label,
        category: r.category,
        imported: r.imported,
        n_seeds: r.nSeeds,
        n_diverged: r.nDiverged,
        best_val_loss: r.bestValLoss,
        paper_adjusted: r.paper.adjusted,
        paper_ceg: r.paper.ceg,
        paper_dnr: r.paper.dnr,
        paper_n_dnr: r.paper.nDnr,
        paper_aux_ceg: r.paper.auxCeg,
      };
      for (const axis of table.axes) {
        const c = axisCeg(r, axis);
        flat[`ceg_${axis}`] = c.ceg;
        flat[`ci_low_${axis}`] = c.ciLow;
        flat[`ci_high_${axis}`] = c.ciHigh;
        flat[`dnr_${axis}`] = c.dnr;
        flat[`n_dnr_${axis}`] = c.nDnr;
      }
      return flat;
    }),
  );
}

const f4 = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(4) : '-');

/** A number with three decimals; `dash` when missing or not finite ('inf' for +Infinity). */
export function f3(v: number | null | undefined, dash = '-'): string {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(3) : v === Infinity ? 'inf' : dash;
}

/**
 * One CEG cell: "1.234 [1.100, 1.410]", "DNR" when no seed pair reached, and
 * "(k of n DNR)" when some did not.
 */
export function cegCell(c: AxisCeg, nSeeds: number, dash = '-'): string {
  if (c.dnr) return 'DNR';
  let s = f3(c.ceg, dash);
  if (c.ciLow !== null) s += ` [${f3(c.ciLow, dash)}, ${f3(c.ciHigh, dash)}]`;
  if (c.nDnr > 0) s += ` (${c.nDnr} of ${nSeeds} DNR)`;
  return s;
}

/** The paper's method's cell: its CEG, "DNR (aux x)" when no seed reached, "(k DNR)" when some did not. */
export function paperCell(p: PaperMethodCeg, dash = '-'): string {
  if (p.dnr) return p.auxCeg !== null ? `DNR (aux ${f3(p.auxCeg, dash)})` : 'DNR';
  let s = f3(p.ceg, dash);
  if (p.nDnr > 0) s += ` (${p.nDnr} DNR)`;
  return s;
}

/** Align rows of cells into columns (first column left-aligned, the rest right-aligned). */
export function alignColumns(header: string[], body: string[][]): string {
  const all = [header, ...body];
  const w = header.map((_, j) => Math.max(...all.map((row) => row[j].length)));
  const line = (row: string[]) => row.map((c, j) => (j === 0 ? c.padEnd(w[j]) : c.padStart(w[j]))).join('  ');
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(line)].join('\n');
}

/** The CEG table for the terminal: aligned columns, DNR marked, CIs as [lo, hi]. */
export function formatCegTable(table: CegTable): string {
  const axes = AXES.filter((a) => table.axes.includes(a));
  const header = ['Innovation', 'Paper category', 'Paper method', ...axes.map((a) => `CEG ${a}`), 'Best val', 'Seeds'];
  const body = table.rows.map((r) => [
    r.label,
    r.category,
    paperCell(r.paper),
    ...axes.map((a) => cegCell(axisCeg(r, a), r.nSeeds)),
    f4(r.bestValLoss),
    String(r.nSeeds) + (r.nDiverged > 0 ? ` (+${r.nDiverged} diverged)` : ''),
  ]);
  return alignColumns(header, body);
}

/** The diverged runs among `runs`, for listing apart from the CEG table (empty when none). */
export function divergedRuns(runs: TableRun[]): (TableRun & { diverged: DivergedInfo })[] {
  return runs.filter((r): r is TableRun & { diverged: DivergedInfo } => r.diverged !== undefined);
}

/** Diverged runs for the terminal: one line each (innovation, seed, step, loss, learning rate). */
export function formatDivergedRuns(runs: TableRun[]): string {
  const d = divergedRuns(runs);
  if (d.length === 0) return '';
  return alignColumns(
    ['Diverged run (not in the CEG table)', 'Scale', 'Seed', 'Step', 'Loss', 'Learning rate'],
    d.map((r) => [
      r.innovation,
      r.scale,
      String(r.seed),
      String(r.diverged.step),
      String(r.diverged.loss),
      String(r.diverged.lr),
    ]),
  );
}

/** One innovation of the paper's published table beside our row of the CEG table. */
export interface PublishedVsOurs {
  innovation: string;
  label: string;
  published: PublishedRow & {
    /** the number rests on the as-published adjustment (AS_PUBLISHED_ADJUSTED) */
    adjusted: boolean;
  };
  /** our row (the paper's method on our runs, our CEG, best loss); null when we did not run it */
  ours: CegRow | null;
}

/**
 * The paper's published numbers next to ours, one entry per innovation of the published
 * table (in its order). Innovations we did not run have `ours` null.
 */
export function paperVsOurs(table: CegTable, scale: string): PublishedVsOurs[] {
  if (!(PUBLISHED_SCALES as readonly string[]).includes(scale))
    throw new CegError(`no published numbers for scale "${scale}"; valid: ${PUBLISHED_SCALES.join(', ')}`);
  const ours = new Map(table.rows.map((r) => [r.innovation, r]));
  return PUBLISHED[scale as PublishedScale].map((p) => ({
    innovation: p.innovation,
    label: getInnovation(p.innovation).label,
    published: { ...p, adjusted: restsOnAdjustment(scale as PublishedScale, p.innovation) },
    ours: ours.get(p.innovation) ?? null,
  }));
}

/**
 * paperVsOurs as an arquero table (notebooks): published_ceg / published_dnr /
 * published_aux_ceg / published_best_loss / published_adjusted, and ours: paper_ceg /
 * paper_dnr / paper_aux_ceg (their method on our runs), ceg_flops with its CI (our method),
 * best_val_loss; nulls where we did not run the innovation or the table has no FLOPs axis.
 */
export function paperVsOursFrame(rows: readonly PublishedVsOurs[]): Table {
  return aq.from(
    rows.map((r) => {
      const o = r.ours;
      const flops = o?.ceg.flops;
      return {
        innovation: r.innovation,
        label: r.label,
        published_ceg: r.published.ceg,
        published_dnr: r.published.dnr,
        published_aux_ceg: r.published.auxCeg,
        published_best_loss: r.published.bestLoss,
        published_adjusted: r.published.adjusted,
        paper_ceg: o ? o.paper.ceg : null,
        paper_dnr: o ? o.paper.dnr : null,
        paper_aux_ceg: o ? o.paper.auxCeg : null,
        ceg_flops: flops ? flops.ceg : null,
        ci_low_flops: flops ? flops.ciLow : null,
        ci_high_flops: flops ? flops.ciHigh : null,
        best_val_loss: o ? o.bestValLoss : null,
      };
    }),
  );
}

/** paperVsOurs for the terminal. */
export function formatPaperVsOurs(rows: readonly PublishedVsOurs[]): string {
  const pub = (r: PublishedVsOurs) =>
    (r.published.dnr ? `DNR (aux ${f3(r.published.auxCeg)})` : f3(r.published.ceg)) +
    (r.published.adjusted ? ' *' : '');
  const ours = (r: PublishedVsOurs) =>
    r.ours === null ? '-' : r.ours.paper.dnr ? paperCell(r.ours.paper) : f3(r.ours.paper.ceg);
  const flops = (r: PublishedVsOurs) => {
    const c = r.ours?.ceg.flops;
    return !c || c.ceg === null ? '-' : f3(c.ceg) + (c.ciLow !== null ? ` [${f3(c.ciLow)}, ${f3(c.ciHigh)}]` : '');
  };
  const body = rows.map((r) => [
    r.label,
    pub(r),
    f4(r.published.bestLoss) + (r.published.adjusted ? ' *' : ''),
    ours(r),
    flops(r),
    f4(r.ours?.bestValLoss),
  ]);
  const text = alignColumns(
    ['Innovation', 'Published CEG', 'Published best', 'Ours (paper method)', 'Ours CEG flops', 'Our best'],
    body,
  );
  const adjusted = rows.filter((r) => r.published.adjusted).map((r) => r.label);
  return adjusted.length
    ? `${text}\n* rests on the paper notebook's adjustment: |LayerNorm − baseline| added to the ${adjusted.join(' and ')} curves before the CEG (and the best loss)`
    : text;
}
