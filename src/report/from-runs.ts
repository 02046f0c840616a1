/**
 * ReportData from the run store: completed runs of one scale (and its scaling ladder, if
 * trained) become loss curves, CEG bars per compute axis, paper-vs-ours, MoE expert load,
 * scaling fits and CEG(C) curves. No training: only stored metric rows are read.
 * Missing pieces (no ladder, no MoE, no baseline) are skipped with a one-line note; a store
 * without any completed run of the scale is a clear error (NoRunsError).
 *
 * Uses src/ceg/ladder.ts for the scaling fits (scalingFits); the
 * CEG numbers come from src/ceg (cegTable, ceg).
 */
import { INNOVATIONS } from '../innovations.js';
import { LADDERS, ladderOf } from '../scales.js';
import { RunStore, isImportedSpec, labelsOf, type RunRecord, type RunSummary } from '../runs/index.js';
import { runTimingKey, secondsTimingKey } from '../train/timing.js';
import * as ceg from '../ceg/index.js';
import { scalingFits as fitLadder, type ScalingResult } from '../ceg/ladder.js';
import type { ReportData } from './all.js';
import type { CegCurve, CegBar, LossAxis, PaperVsOursRow, LossCurve, ScalingSeries } from './types.js';
import { readEnv } from '../env.js';

type Table = ceg.CegTable;

/** Compute axes of the CEG bar charts (figure names ceg_bars_<axis>). */
export const CEG_BAR_AXES = ['flops', 'steps', 'seconds'] as const satisfies readonly LossAxis[];

/** The paper's published scale that paper-vs-ours compares against. */
export const PAPER_SCALE = 'compact';

export class NoRunsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoRunsError';
  }
}

export interface LoadOptions {
  /** run store root (default $CEG_RUNS or data/runs) */
  runs?: string;
  /** scale of the study-set runs (default micro); its ladder rungs are <scale>-r0.. */
  scale?: string;
  /** backend the runs were trained on (default $CEG_BACKEND or wasm) */
  backend?: string;
  /** trailing moving-average window of the loss curves, in evaluations (default 1: raw) */
  smooth?: number;
  /** stale runs to leave out (id -> why), see StoredOptions */
  stale?: ReadonlyMap<string, string>;
}

export interface LoadResult {
  data: ReportData;
  /** one line per piece skipped or adjusted (no ladder runs, duplicate runs, ...) */
  notes: string[];
  /** how many runs were read: study-set scale and ladder rungs */
  counts: { runs: number; ladderRuns: number };
}

/**
 * Completed runs of `scale` on `backend`, one record per (innovation, seed). A run opened
 * under several labels (e.g. micro-r2 is the same config as micro) is listed under every
 * label whose scale is `scale`, with that label's innovation and scale. Two completed runs
 * with the same (innovation, seed) (the scale's definition changed between them): the one
 * updated last is kept, and a note says so.
 */
export function storedRecords(
  store: RunStore,
  scale: string,
  backend: string,
  notes: string[] = [],
  opts: StoredOptions = {},
): RunRecord[] {
  const chosen = new Map<string, { summary: RunSummary; innovation: string }>();
  const known = new Set(INNOVATIONS.map((i) => i.id));
  // imported runs (ceg import) have no backend of ours: they join the runs of any backend
  for (const s of store
    .list({ scale, state: 'done' })
    .filter((x) => x.backend === backend || x.source === 'imported')) {
    const stale = opts.stale?.get(s.id);
    if (stale !== undefined) {
      notes.push(
        `run ${s.id} (${s.innovation} ${s.scale} seed ${s.seed}) is stale, left out: ${stale}; retrain it with ceg sweep / ceg train`,
      );
      continue;
    }
    const labels = labelsOf(s).filter((l) => l.scale === scale);
    for (const innovation of new Set(labels.map((l) => l.innovation))) {
      if (!known.has(innovation) && s.source !== 'imported') {
        notes.push(`run ${s.id}: innovation "${innovation}" is not in the registry (src/innovations.ts); left out`);
        continue;
      }
      const key = `${innovation}\u0000${s.seed}`;
      const prev = chosen.get(key);
      if (prev) {
        const newer = (s.updatedAt ?? '') > (prev.summary.updatedAt ?? '') ? s : prev.summary;
        const older = newer === s ? prev.summary : s;
        notes.push(
          `${innovation} ${scale} seed ${s.seed}: two completed runs (${older.id}, ${newer.id}); using ${newer.id}, updated last`,
        );
        chosen.set(key, { summary: newer, innovation });
      } else {
        chosen.set(key, { summary: s, innovation });
      }
    }
  }
  const out: RunRecord[] = [];
  for (const { summary, innovation } of chosen.values()) {
    const run = store.get(summary.id);
    if (!run) continue;
    const imported = isImportedSpec(run.spec);
    out.push({
      id: summary.id,
      innovation,
      scale,
      seed: summary.seed,
      backend: summary.backend,
      metrics: run.metrics(),
      cached: true,
      ...(isImportedSpec(run.spec) ? { imported, axes: run.spec.imported.axes } : {}),
      timingKey: runTimingKey(run.status(), summary.backend),
    });
  }
  return out;
}

export interface StoredOptions {
  /** runs to leave out because the current code no longer computes them (id -> why): src/train/stale.ts's checkRuns + staleIds */
  stale?: ReadonlyMap<string, string>;
}

/** Metric rows -> loss-curve points: evaluations only (numeric, finite validation loss). */
export function runCurves(records: RunRecord[], notes: string[] = []): LossCurve[] {
  const out: LossCurve[] = [];
  for (const r of records) {
    const evals = r.metrics.filter((m) => typeof m.valLoss === 'number');
    const finite = evals.filter((m) => Number.isFinite(m.valLoss as number));
    if (finite.length < evals.length)
      notes.push(
        `${r.innovation} seed ${r.seed}: ${evals.length - finite.length} non-finite validation loss(es) left out of the loss curves (diverged?)`,
      );
    if (finite.length === 0) continue;
    out.push({
      innovation: r.innovation,
      seed: r.seed,
      points: finite.map((m) => ({
        step: m.step,
        tokens: m.tokens,
        flops: m.flops,
        seconds: m.seconds,
        valLoss: m.valLoss as number,
      })),
    });
  }
  return out;
}

/**
 * Auxiliary CEG on one axis for a variant that did not reach the baseline's target: per
 * seed pair, target = the variant's best validation loss; CEG = baseline compute to reach
 * it / variant compute to reach it (the paper's auxiliary CEG, measured on `axis` with our
 * interpolation). Geometric mean over the pairs where the baseline reaches it; null if none.
 */
export function auxCeg(records: RunRecord[], innovation: string, axis: ceg.Axis, baseline = 'baseline'): number | null {
  const base = new Map(records.filter((r) => r.innovation === baseline).map((r) => [r.seed, r]));
  const values: number[] = [];
  for (const v of records.filter((r) => r.innovation === innovation)) {
    const b = base.get(v.seed);
    if (!b) continue;
    const best = Math.min(...ceg.evalRows(v.metrics, `${innovation} seed ${v.seed}`).map((m) => m.valLoss));
    if (!Number.isFinite(best)) continue;
    const r = ceg.ceg(b.metrics, v.metrics, { axis, target: { kind: 'value', loss: best } });
    if (r.ceg !== null && Number.isFinite(r.ceg) && r.ceg > 0) values.push(r.ceg);
  }
  return values.length ? ceg.geometricMean(values) : null;
}

/** Tokens per expert at the last evaluation of each MoE run (summed over layers). */
export function expertLoad(runs: RunRecord[]): { name: string; counts: number[] }[] {
  return runs
    .map((r) => ({
      r,
      load: [...r.metrics].reverse().find((m) => Array.isArray(m.expertLoad))?.expertLoad as number[] | undefined,
    }))
    .filter((x) => x.load)
    .map((x) => ({ name: `${x.r.innovation} seed ${x.r.seed}`, counts: x.load! }));
}

/**
 * CEG bars of one axis from the CEG table. Reached: our CEG (geometric mean over seed pairs
 * that reached) with its bootstrap interval; seeds that did not reach are named in the
 * label ("1/3 seeds DNR"). No seed reached (DNR): the auxiliary CEG on the same axis
 * (auxCeg), drawn hatched. Rows with no finite value are left out (noted).
 */
export function cegBarRows(table: Table, records: RunRecord[], axis: ceg.Axis, notes: string[] = []): CegBar[] {
  const out: CegBar[] = [];
  for (const r of table.rows) {
    const id = r.innovation;
    if (id === 'baseline') continue;
    const c = r.ceg[axis];
    if (!c) {
      notes.push(`ceg_bars_${axis}: ${id} left out (no finite CEG)`);
      continue;
    }
    const dnr = c.dnr;
    const nDnr = c.nDnr;
    const nSeeds = r.nSeeds;
    const value = dnr ? auxCeg(records, id, axis) : c.ceg;
    if (value === null || !Number.isFinite(value)) {
      notes.push(
        `ceg_bars_${axis}: ${id} left out (${dnr ? 'DNR and the baseline never reaches its best loss' : 'no finite CEG'})`,
      );
      continue;
    }
    const label = r.label + (!dnr && nDnr > 0 ? ` (${nDnr}/${nSeeds} seeds DNR)` : '');
    out.push({
      innovation: id,
      label,
      category: r.category,
      ceg: value,
      ci_low: dnr ? undefined : (c.ciLow ?? undefined),
      ci_high: dnr ? undefined : (c.ciHigh ?? undefined),
      dnr,
      verdict: dnr
        ? `DNR on every seed: auxiliary CEG at the variant's best loss`
        : nDnr
          ? `${nDnr} of ${nSeeds} seeds did not reach the target`
          : undefined,
    });
  }
  return out;
}

/**
 * The paper's published CEG (compact scale, and the full scale's in paperCegFull: steps,
 * their method, one seed; its auxiliary CEG where it reports DNR) beside our CEG measured in optimizer steps (the same axis as
 * theirs) with its interval; our DNR rows carry our auxiliary CEG (ourDnr). Innovations we
 * ran that the paper did not are listed with paperCeg null.
 */
export function paperVsOursRows(table: Table, records: RunRecord[], axis: ceg.Axis = 'steps'): PaperVsOursRow[] {
  const ours = new Map(table.rows.map((r) => [r.innovation, r]));
  const published = new Map(ceg.PUBLISHED[PAPER_SCALE].map((p) => [p.innovation, p]));
  const full = new Map(ceg.PUBLISHED.full.map((p) => [p.innovation, p]));
  const out: PaperVsOursRow[] = [];
  for (const [id, o] of ours) {
    if (id === 'baseline') continue;
    const p = published.get(id);
    const c = o.ceg[axis];
    if (!c) continue;
    const dnr = c.dnr;
    const ourCeg = dnr ? auxCeg(records, id, axis) : c.ceg;
    if (ourCeg === null || !Number.isFinite(ourCeg)) continue;
    out.push({
      innovation: id,
      label: o.label,
      paperCeg: ceg.publishedCeg(p),
      paperDnr: p?.dnr ?? false,
      paperCegFull: ceg.publishedCeg(full.get(id)),
      paperFullDnr: full.get(id)?.dnr ?? false,
      paperFullAdjusted: ceg.restsOnAdjustment('full', id),
      ourCeg,
      ourDnr: dnr,
      ci_low: dnr ? undefined : (c.ciLow ?? undefined),
      ci_high: dnr ? undefined : (c.ciHigh ?? undefined),
    });
  }
  return out;
}

/** Fitted scaling curves, sampled on 40 log-spaced points over each fit's measured range. */
export function scalingSeries(fits: ScalingResult[]): ScalingSeries[] {
  return fits.map((f) => {
    const [lo, hi] = f.fit.range;
    const grid = Array.from({ length: 40 }, (_, i) => lo * Math.pow(hi / lo, i / 39));
    // uncertainty band: the range of the per-seed fits at each C (two seeds or more)
    const perSeed =
      f.seedFits.length >= 2
        ? grid.map((C) => f.seedFits.map((s) => ceg.predictLoss(s.fit, C)).filter(Number.isFinite))
        : [];
    const band =
      perSeed.length && perSeed.every((v) => v.length >= 2)
        ? grid.map((C, i) => ({ C, lo: Math.min(...perSeed[i]), hi: Math.max(...perSeed[i]) }))
        : undefined;
    return {
      innovation: f.innovation,
      points: f.points,
      curve: grid.map((C) => ({ C, L: ceg.predictLoss(f.fit, C) })),
      ...(band ? { band } : {}),
    };
  });
}

/**
 * CEG(C) of each variant against the baseline's fit, from the lower end of the common
 * measured range to half a decade past its upper end (beyond it: extrapolated, dashed; never further). Points where the
 * baseline's fit never reaches the variant's loss (CEG = infinity) are dropped.
 */
export function cegCurves(fits: ScalingResult[]): CegCurve[] {
  const base = fits.find((f) => f.innovation === 'baseline');
  if (!base) return [];
  const out: CegCurve[] = [];
  for (const f of fits) {
    if (f.innovation === 'baseline') continue;
    const observed: [number, number] = [
      Math.max(base.fit.range[0], f.fit.range[0]),
      Math.min(base.fit.range[1], f.fit.range[1]),
    ];
    if (!(observed[0] > 0 && observed[1] >= observed[0])) continue;
    const curve = ceg
      .cegCurve(base.fit, f.fit, { extendTo: ceg.MAX_EXTRAPOLATION * observed[1], points: 40 })
      .filter((p) => Number.isFinite(p.ceg) && p.ceg > 0)
      .map((p) => ({ C: p.C, ceg: p.ceg }));
    if (curve.length >= 2) out.push({ innovation: f.innovation, curve, observed });
  }
  return out;
}

/** Innovations with completed runs on at least 3 ladder rungs (a fit has 3 parameters). */
function fittable(ladder: RunRecord[], notes: string[]): RunRecord[] {
  const rungs = new Map<string, Set<string>>();
  for (const r of ladder) rungs.set(r.innovation, (rungs.get(r.innovation) ?? new Set()).add(r.scale));
  const ok = new Set([...rungs].filter(([, s]) => s.size >= 3).map(([id]) => id));
  for (const [id, s] of rungs)
    if (!ok.has(id)) notes.push(`scaling fit: ${id} has runs on ${s.size} ladder rung(s), needs 3; left out`);
  return ladder.filter((r) => ok.has(r.innovation));
}

/** Everything the report needs, from run records (main scale + ladder rungs). Pure: no I/O. */
export function reportDataFromRecords(
  records: RunRecord[],
  /** runs of the scale's ladder rungs; null: the scale has no ladder */
  ladder: RunRecord[] | null,
  scale: string,
  opts: { smooth?: number } = {},
): { data: ReportData; notes: string[] } {
  const notes: string[] = [];
  const data: ReportData = { scale, runs: runCurves(records, notes), smooth: opts.smooth };
  if (!records.some((r) => r.innovation === 'baseline')) {
    notes.push(`no baseline run at scale ${scale}: CEG bars and paper-vs-ours skipped`);
  } else if (!records.some((r) => r.innovation !== 'baseline')) {
    notes.push(`only baseline runs at scale ${scale}: CEG bars and paper-vs-ours skipped`);
  } else {
    // per-run seconds are divided into each other only when every run shares one machine and kernel set
    const sameTiming = secondsTimingKey(records.map((r) => r.timingKey)) !== null;
    if (!sameTiming)
      notes.push(
        `ceg_bars_seconds skipped: the runs were trained on different machines or kernel sets (${[...new Set(records.map((r) => r.timingKey ?? 'unknown'))].join('; ')}), so their seconds are not comparable`,
      );
    const barAxes = CEG_BAR_AXES.filter((a) => a !== 'seconds' || sameTiming);
    if (sameTiming) data.secondsTiming = records[0].timingKey;
    // imported runs may lack an axis (no FLOPs without a rate): cegTable keeps the axes every run carries
    const table = ceg.cegTable(records, { scale });
    data.ceg = {};
    for (const axis of barAxes) {
      if (!table.axes.includes(axis)) {
        notes.push(`ceg_bars_${axis}: not every run has ${axis} (imported without a conversion); skipped`);
        continue;
      }
      const rows = cegBarRows(table, records, axis, notes);
      if (rows.length) data.ceg[axis] = rows;
    }
    const pvo = paperVsOursRows(table, records);
    if (pvo.some((r) => r.paperCeg !== null)) data.paperVsOurs = pvo;
    else notes.push(`no innovation of the paper's table among the runs: paper-vs-ours skipped`);
  }
  const moe = expertLoad(records);
  if (moe.length) data.expertCounts = moe;
  else notes.push(`no MoE runs with expert load at scale ${scale}: expert_load skipped`);
  if (ladder === null) {
    notes.push(`scale ${scale} has no scaling ladder: scaling_fits and ceg_vs_compute skipped`);
  } else if (ladder.length === 0) {
    notes.push(
      `no ladder runs (${scale}-r0..): scaling_fits and ceg_vs_compute skipped; train them with: npx ceg ladder --scale ${scale}`,
    );
  } else {
    const usable = fittable(ladder, notes);
    try {
      const fits = usable.length ? fitLadder(usable) : [];
      if (fits.length) data.scaling = scalingSeries(fits);
      data.cegCurves = cegCurves(fits);
      if (!data.cegCurves.length)
        notes.push('ceg_vs_compute skipped: needs baseline and at least one variant fitted on the ladder');
    } catch (e) {
      notes.push(`scaling fits failed (${(e as Error).message}): scaling_fits and ceg_vs_compute skipped`);
    }
  }
  return { data, notes };
}

/** Counts of completed runs per scale/backend in the store (for the no-runs error). */
function storeContents(store: RunStore): string {
  const by = new Map<string, number>();
  for (const s of store.list({ state: 'done' }))
    by.set(`${s.scale}/${s.backend}`, (by.get(`${s.scale}/${s.backend}`) ?? 0) + 1);
  return [...by].map(([k, n]) => `${k} (${n})`).join(', ');
}

/** Read the store and build ReportData; NoRunsError when the scale has no completed run. */
export function loadReportData(opts: LoadOptions = {}): LoadResult {
  const scale = opts.scale ?? 'micro';
  const backend = opts.backend ?? readEnv('CEG_BACKEND') ?? 'wasm';
  const store = new RunStore(opts.runs);
  const notes: string[] = [];
  const records = storedRecords(store, scale, backend, notes, { stale: opts.stale });
  const damaged = store.list().filter((s) => s.state === 'corrupt');
  if (damaged.length)
    notes.push(
      `${damaged.length} damaged run(s) left out (${damaged.map((s) => s.id).join(', ')}); \`ceg runs --check\` says what is wrong`,
    );
  if (records.length === 0) {
    const other = storeContents(store);
    throw new NoRunsError(
      `no completed runs at scale "${scale}" on backend ${backend} in the run store ${store.root}` +
        (other ? ` (it holds completed runs of scale/backend: ${other}; pick one with --scale/--backend)` : '') +
        `.\nTrain them first: npm run micro   (or: npx ceg sweep --scale ${scale} --seeds 3; scaling ladder: npx ceg ladder --scale ${scale})` +
        `\nTo look at the figures without runs: npm run figures -- --demo`,
    );
  }
  let ladder: RunRecord[] | null = null;
  if (Object.hasOwn(LADDERS, scale)) {
    ladder = ladderOf(scale).flatMap((rung) => storedRecords(store, rung.name, backend, notes, { stale: opts.stale }));
  }
  const built = reportDataFromRecords(records, ladder, scale, { smooth: opts.smooth });
  return {
    data: built.data,
    notes: [...notes, ...built.notes],
    counts: { runs: records.length, ladderRuns: ladder?.length ?? 0 },
  };
}
