/**
 * CEG tables as arquero tables: one row per innovation with the paper's method and ours
 * on every axis, a terminal formatter, and the side-by-side with the published numbers.
 */
import * as aq from 'arquero';
import { getInnovation, STUDY_SET, INNOVATIONS } from '../innovations.js';
import { AXES, CegError, checkAxis, evalRows, type Axis, type MetricRow } from './types.js';
import { paperCeg, type PaperCegOptions } from './paper.js';
import { cegSeeds, type CegTarget } from './ceg.js';
import { mean, type BootstrapOptions } from './random.js';
import {
  AS_PUBLISHED_ADJUSTED, AS_PUBLISHED_GAP_INNOVATION, PUBLISHED, PUBLISHED_SCALES, restsOnAdjustment, type PublishedScale,
} from './published.js';

type Table = ReturnType<typeof aq.from>;

export interface TableRun {
  innovation: string;
  seed: number;
  scale: string;
  metrics: MetricRow[];
  /** a run trained elsewhere (ceg import): its rows are labelled "[imported]" */
  imported?: boolean;
  /** axes the run's rows carry (imported runs may lack tokens, FLOPs or seconds); default: every axis whose values are finite */
  axes?: readonly Axis[];
  /** set when the run diverged: left out of every CEG (neither reached nor not reached), counted in n_diverged */
  diverged?: DivergedInfo;
}

/** What a table needs to know of a divergence (src/train's Divergence has more). */
export interface DivergedInfo {
  step: number;
  loss: number;
  lr: number;
}

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
   * have paper_adjusted = true.
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

/**
 * One row per innovation: innovation, label, category (the paper's claim), n_seeds,
 * best_val_loss (mean over seeds of the lowest raw validation loss), paper_ceg (the
 * paper's method, mean over seeds that reached), paper_dnr (no seed reached),
 * paper_n_dnr, paper_aux_ceg (mean auxiliary CEG over DNR seeds), and for each axis:
 * ceg_<axis> (geometric mean over seed pairs), ci_low_<axis>, ci_high_<axis>,
 * dnr_<axis> (no pair reached), n_dnr_<axis>.
 */
export function cegTable(runs: TableRun[], opts: CegTableOptions = {}): Table {
  const baselineId = opts.baseline ?? 'baseline';
  const scales = [...new Set(runs.map((r) => r.scale))];
  const scale = opts.scale ?? (scales.length === 1 ? scales[0] : undefined);
  if (scale === undefined)
    throw new CegError(`runs hold ${scales.length ? 'several scales (' + scales.join(', ') + ')' : 'no run'}; pass opts.scale`);
  const ofScale = runs.filter((r) => r.scale === scale);
  const mine = ofScale.filter((r) => !r.diverged); // diverged runs are listed apart (divergedRuns), never compared
  const base = mine.filter((r) => r.innovation === baselineId);
  if (base.length === 0)
    throw new CegError(`no "${baselineId}" run at scale "${scale}"; innovations present: ${[...new Set(mine.map((r) => r.innovation))].join(', ') || 'none'}`);
  const axes = (opts.axes ?? AXES.filter((a) => mine.every((r) => runHasAxis(r, a)))).map(checkAxis);
  const ids = [...new Set(mine.map((r) => r.innovation))].sort((a, b) => order(a) - order(b));
  const rows = ids.map((id) => {
    const vs = mine.filter((r) => r.innovation === id);
    const imported = vs.some((r) => r.imported === true);
    // an imported run keeps its own name; any other id must be in the registry (a typo is an error)
    const known = !imported || INNOVATIONS.some((i) => i.id === id);
    const inn = known ? getInnovation(id) : { label: id, category: 'not in paper' as const };
    const row: Record<string, unknown> = {
      innovation: id,
      label: imported ? `${inn.label} [imported]` : inn.label,
      category: inn.category,
      imported,
      n_seeds: vs.length,
      n_diverged: ofScale.filter((r) => r.innovation === id && r.diverged).length,
      best_val_loss: mean(vs.map((r) => Math.min(...evalRows(r.metrics, `${id} seed ${r.seed}`).map((m) => m.valLoss)))),
    };
    // the paper's method, per matched seed
    const adjust = opts.asPublished === true && AS_PUBLISHED_ADJUSTED.full.includes(id);
    const gapOf = (seed: number) => {
      const ln = mine.find((r) => r.innovation === AS_PUBLISHED_GAP_INNOVATION && r.seed === seed);
      if (!ln)
        throw new CegError(`the as-published adjustment of ${id} needs a ${AS_PUBLISHED_GAP_INNOVATION} run of seed ${seed} at scale "${scale}"`);
      return ln.metrics;
    };
    const paper = vs
      .map((v) => ({ v, b: base.find((b) => b.seed === v.seed) }))
      .filter((p) => p.b !== undefined)
      .map((p) => paperCeg(p.b!.metrics, p.v.metrics, adjust ? { ...opts.paper, gap: gapOf(p.v.seed) } : opts.paper));
    row.paper_adjusted = adjust;
    const reached = paper.filter((p) => !p.dnr).map((p) => p.ceg as number);
    const aux = paper.filter((p) => p.dnr && p.auxCeg != null).map((p) => p.auxCeg as number);
    row.paper_ceg = reached.length ? mean(reached) : null;
    row.paper_dnr = paper.length > 0 && reached.length === 0;
    row.paper_n_dnr = paper.length - reached.length;
    row.paper_aux_ceg = aux.length ? mean(aux) : null;
    for (const axis of axes) {
      const s = cegSeeds(base, vs, { axis, target: opts.target, smoothWindow: opts.smoothWindow, bootstrap: opts.bootstrap });
      row[`ceg_${axis}`] = s.ceg;
      row[`ci_low_${axis}`] = s.ci ? s.ci[0] : null;
      row[`ci_high_${axis}`] = s.ci ? s.ci[1] : null;
      row[`dnr_${axis}`] = s.dnr;
      row[`n_dnr_${axis}`] = s.nDnr;
    }
    return row;
  });
  return aq.from(rows);
}

const f4 = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(4) : '-');
const f3 = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(3) : v === Infinity ? 'inf' : '-');

function cegCell(r: Record<string, unknown>, axis: string): string {
  if (r[`dnr_${axis}`]) return 'DNR';
  let s = f3(r[`ceg_${axis}`]);
  if (r[`ci_low_${axis}`] != null) s += ` [${f3(r[`ci_low_${axis}`])}, ${f3(r[`ci_high_${axis}`])}]`;
  const k = r[`n_dnr_${axis}`] as number;
  if (k > 0) s += ` (${k} DNR)`;
  return s;
}

function paperCell(r: Record<string, unknown>): string {
  if (r.paper_dnr) return r.paper_aux_ceg != null ? `DNR (aux ${f3(r.paper_aux_ceg)})` : 'DNR';
  let s = f3(r.paper_ceg);
  const k = r.paper_n_dnr as number;
  if (k > 0) s += ` (${k} DNR)`;
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
export function formatCegTable(table: Table): string {
  const cols = table.columnNames();
  const axes = AXES.filter((a) => cols.includes(`ceg_${a}`));
  const header = ['Innovation', 'Paper category', 'Paper method', ...axes.map((a) => `CEG ${a}`), 'Best val', 'Seeds'];
  const body = (table.objects() as Record<string, unknown>[]).map((r) => [
    String(r.label),
    String(r.category),
    paperCell(r),
    ...axes.map((a) => cegCell(r, a)),
    f4(r.best_val_loss),
    String(r.n_seeds) + ((r.n_diverged as number) > 0 ? ` (+${r.n_diverged} diverged)` : ''),
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
    d.map((r) => [r.innovation, r.scale, String(r.seed), String(r.diverged.step), String(r.diverged.loss), String(r.diverged.lr)]),
  );
}

/**
 * The paper's published numbers next to ours, one row per innovation of the published
 * table (in its order): published_ceg / published_dnr / published_aux_ceg /
 * published_best_loss / published_adjusted (the number rests on the as-published
 * adjustment, AS_PUBLISHED_ADJUSTED), and ours: paper_ceg / paper_dnr / paper_aux_ceg (their method on
 * our runs), ceg_flops with its CI (our method), best_val_loss. Innovations we did not run
 * get nulls.
 */
export function paperVsOurs(table: Table, scale: string): Table {
  if (!(PUBLISHED_SCALES as readonly string[]).includes(scale))
    throw new CegError(`no published numbers for scale "${scale}"; valid: ${PUBLISHED_SCALES.join(', ')}`);
  const ours = new Map((table.objects() as Record<string, unknown>[]).map((r) => [r.innovation as string, r]));
  const get = (r: Record<string, unknown> | undefined, k: string) => (r && r[k] !== undefined ? r[k] : null);
  return aq.from(
    PUBLISHED[scale as PublishedScale].map((p) => {
      const o = ours.get(p.innovation);
      return {
        innovation: p.innovation,
        label: getInnovation(p.innovation).label,
        published_ceg: p.ceg,
        published_dnr: p.dnr,
        published_aux_ceg: p.auxCeg,
        published_best_loss: p.bestLoss,
        published_adjusted: restsOnAdjustment(scale as PublishedScale, p.innovation),
        paper_ceg: get(o, 'paper_ceg'),
        paper_dnr: get(o, 'paper_dnr'),
        paper_aux_ceg: get(o, 'paper_aux_ceg'),
        ceg_flops: get(o, 'ceg_flops'),
        ci_low_flops: get(o, 'ci_low_flops'),
        ci_high_flops: get(o, 'ci_high_flops'),
        best_val_loss: get(o, 'best_val_loss'),
      };
    }),
  );
}

/** paperVsOurs for the terminal. */
export function formatPaperVsOurs(table: Table): string {
  const pub = (r: Record<string, unknown>) =>
    (r.published_dnr ? `DNR (aux ${f3(r.published_aux_ceg)})` : f3(r.published_ceg)) + (r.published_adjusted ? ' *' : '');
  const ours = (r: Record<string, unknown>) =>
    r.paper_dnr === null ? '-' : r.paper_dnr ? (r.paper_aux_ceg != null ? `DNR (aux ${f3(r.paper_aux_ceg)})` : 'DNR') : f3(r.paper_ceg);
  const flops = (r: Record<string, unknown>) =>
    r.ceg_flops == null ? '-' : f3(r.ceg_flops) + (r.ci_low_flops != null ? ` [${f3(r.ci_low_flops)}, ${f3(r.ci_high_flops)}]` : '');
  const body = (table.objects() as Record<string, unknown>[]).map((r) => [
    String(r.label), pub(r), f4(r.published_best_loss) + (r.published_adjusted ? ' *' : ''), ours(r), flops(r), f4(r.best_val_loss),
  ]);
  const text = alignColumns(['Innovation', 'Published CEG', 'Published best', 'Ours (paper method)', 'Ours CEG flops', 'Our best'], body);
  const adjusted = (table.objects() as Record<string, unknown>[]).filter((r) => r.published_adjusted).map((r) => String(r.label));
  return adjusted.length
    ? `${text}\n* rests on the paper notebook's adjustment: |LayerNorm − baseline| added to the ${adjusted.join(' and ')} curves before the CEG (and the best loss)`
    : text;
}
