/**
 * Plotly figure builders: pure functions, plain data in, a `{data, layout}` spec out
 * (JSON-serialisable; render with Plotly.newPlot or export with ./export.ts).
 * One fixed colour per innovation across every figure (./palette.ts).
 */
import type {
  CegCurve,
  CegBar,
  Figure,
  LossAxis,
  MetricPoint,
  PaperVsOursRow,
  LossCurve,
  ScalingSeries,
} from './types.js';
import { categoryColor, innovationColor, innovationLabel, registryOrder, withAlpha } from './palette.js';
import { INNOVATIONS, type PaperCategory } from '../innovations.js';
import { movingAverage } from '../ceg/paper.js';

type Obj = Record<string, unknown>;

const FONT = { family: 'DejaVu Sans, Liberation Sans, Arial, sans-serif', size: 13, color: '#222222' };

/** `title` may carry a subtitle as 'Main<br><sup>sub</sup>' (rendered with Plotly's title.subtitle). */
export function baseLayout(title: string, extra: Obj = {}): Obj {
  const [main, ...rest] = title.split('<br>');
  const sub = rest.join('<br>').replace(/<\/?sup>/g, '');
  return {
    title: {
      text: main,
      ...(sub ? { subtitle: { text: sub, font: { size: 12, color: '#555555' } } } : {}),
      x: 0.01,
      xanchor: 'left',
      yref: 'container',
      y: 0.975,
      yanchor: 'top',
      font: { size: 17 },
    },
    font: FONT,
    paper_bgcolor: 'white',
    plot_bgcolor: 'white',
    // one more line of subtitle: 17 px more top margin
    margin: { l: 80, r: 30, t: title.includes('<br>') ? 90 + 17 * (title.split('<br>').length - 2) : 60, b: 65 },
    hovermode: 'closest',
    ...extra,
  };
}

export function axis(title: string, extra: Obj = {}): Obj {
  return {
    title: { text: title, standoff: 8 },
    showgrid: true,
    gridcolor: '#e6e6e6',
    zeroline: false,
    showline: true,
    linecolor: '#444444',
    ticks: 'outside',
    automargin: true,
    ...extra,
  };
}

function assertFinite(v: number, what: string): void {
  if (!Number.isFinite(v)) throw new Error(`${what} must be a finite number, got ${v}`);
}

/** Readable ticks for a log-scaled ratio axis (CEG): 0.5, 0.75, 1, 1.5, 2, 3 ... within [lo, hi]. */
export function ratioTicks(lo: number, hi: number): { tickvals: number[]; ticktext: string[]; tickangle: number } {
  const fine = [0.5, 0.67, 0.75, 0.9, 1, 1.1, 1.25, 1.5, 2];
  const coarse = [0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000];
  const finest = [0.75, 0.8, 0.85, 0.9, 0.95, 1, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3];
  let vals = (hi / lo <= 1.6 ? finest : hi / lo <= 3 ? fine : coarse).filter((v) => v >= lo && v <= hi);
  // too dense: keep every other one, always keeping 1
  while (vals.length > 9) vals = vals.filter((v, i) => v === 1 || i % 2 === 0);
  return { tickvals: vals, ticktext: vals.map((v) => String(v)), tickangle: 0 };
}

/* ------------------------------------------------------------------ loss curves */

export const AXIS_FIELDS: Record<LossAxis, keyof MetricPoint> = {
  steps: 'step',
  tokens: 'tokens',
  flops: 'flops',
  seconds: 'seconds',
};

const AXIS_TITLES: Record<LossAxis, string> = {
  steps: 'training step',
  tokens: 'tokens seen',
  flops: 'training compute (FLOPs, forward + backward)',
  seconds: 'wall-clock time (s)',
};

export interface SeedAggregate {
  innovation: string;
  label: string;
  seeds: number;
  /** per evaluation step (union over seeds, ascending): mean x, mean/min/max/sd of loss, n seeds */
  points: { step: number; x: number; mean: number; min: number; max: number; sd: number; n: number }[];
}

/**
 * Group runs by innovation and aggregate validation loss over seeds at each evaluation step.
 * x is the mean of the chosen axis at that step (identical across seeds for steps/tokens/FLOPs;
 * wall-clock differs). sd is the sample standard deviation (0 for one seed).
 */
export function aggregateSeeds(runs: LossCurve[], axisName: LossAxis, smooth = 1): SeedAggregate[] {
  const field = AXIS_FIELDS[axisName];
  if (!field) throw new Error(`unknown axis "${axisName}"; valid: ${Object.keys(AXIS_FIELDS).join(', ')}`);
  const byInn = new Map<string, LossCurve[]>();
  for (const r of runs) {
    if (!byInn.has(r.innovation)) byInn.set(r.innovation, []);
    byInn.get(r.innovation)!.push(r);
  }
  const out: SeedAggregate[] = [];
  for (const id of registryOrder([...byInn.keys()])) {
    const group = byInn.get(id)!;
    const atStep = new Map<number, { xs: number[]; ys: number[] }>();
    for (const run of group) {
      const pts = [...run.points].sort((a, b) => a.step - b.step);
      // the paper's smoothing, strict (pandas rolling(smooth).mean()): NaN before the first full window
      const ys = movingAverage(
        pts.map((p) => p.valLoss),
        smooth,
        'strict',
      );
      pts.forEach((p, i) => {
        const x = p[field] as number;
        assertFinite(x, `${id} seed ${run.seed} step ${p.step} ${field}`);
        assertFinite(p.valLoss, `${id} seed ${run.seed} step ${p.step} valLoss`);
        if (Number.isNaN(ys[i])) return; // before the first full smoothing window
        if (!atStep.has(p.step)) atStep.set(p.step, { xs: [], ys: [] });
        atStep.get(p.step)!.xs.push(x);
        atStep.get(p.step)!.ys.push(ys[i]);
      });
    }
    const points = [...atStep.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([step, { xs, ys }]) => {
        const n = ys.length;
        const mean = ys.reduce((s, v) => s + v, 0) / n;
        const sd = n > 1 ? Math.sqrt(ys.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1)) : 0;
        return {
          step,
          x: xs.reduce((s, v) => s + v, 0) / xs.length,
          mean,
          min: Math.min(...ys),
          max: Math.max(...ys),
          sd,
          n,
        };
      });
    out.push({
      innovation: id,
      label: innovationLabel(id, group[0].label),
      seeds: new Set(group.map((r) => r.seed)).size,
      points,
    });
  }
  return out;
}

export interface LossCurveOptions {
  axis: LossAxis;
  /** trailing moving-average window in evaluation points (paper: 8); default 1 = raw */
  smooth?: number;
  /** spread across seeds: 'minmax' (default), 'sd' (mean ± 1 sd) or 'none' */
  band?: 'minmax' | 'sd' | 'none';
  /** log x axis; default: on for tokens/FLOPs/seconds when x spans >= 2 decades */
  logX?: boolean;
  title?: string;
}

/** Validation loss vs steps/tokens/FLOPs/seconds: one line per innovation (mean over seeds) with a band. */
export function lossCurves(runs: LossCurve[], opts: LossCurveOptions): Figure {
  if (runs.length === 0) throw new Error('lossCurves: no runs given');
  const band = opts.band ?? 'minmax';
  if (!['minmax', 'sd', 'none'].includes(band)) throw new Error(`band "${band}" invalid; valid: minmax, sd, none`);
  const smooth = opts.smooth ?? 1;
  const aggs = aggregateSeeds(runs, opts.axis, smooth);
  const allX = aggs.flatMap((a) => a.points.map((p) => p.x)).filter((x) => x > 0);
  const span = allX.length ? Math.max(...allX) / Math.min(...allX) : 1;
  const logX = opts.logX ?? (opts.axis !== 'steps' && span >= 100);
  const data: Obj[] = [];
  const maxSeeds = Math.max(...aggs.map((a) => a.seeds));
  // the baseline last, so it is drawn on top (dashed) of variants whose curves coincide with it
  const drawOrder = [
    ...aggs.filter((a) => a.innovation !== 'baseline'),
    ...aggs.filter((a) => a.innovation === 'baseline'),
  ];
  for (const a of drawOrder) {
    const pts = logX ? a.points.filter((p) => p.x > 0) : a.points;
    const color = innovationColor(a.innovation);
    if (band !== 'none' && a.seeds > 1) {
      const lo = pts.map((p) => (band === 'sd' ? p.mean - p.sd : p.min));
      const hi = pts.map((p) => (band === 'sd' ? p.mean + p.sd : p.max));
      data.push({
        type: 'scatter',
        mode: 'lines',
        x: [...pts.map((p) => p.x), ...pts.map((p) => p.x).reverse()],
        y: [...hi, ...lo.reverse()],
        fill: 'toself',
        fillcolor: withAlpha(color, 0.18),
        line: { width: 0, color: withAlpha(color, 0) },
        hoverinfo: 'skip',
        showlegend: false,
        legendgroup: a.innovation,
        name: `${a.label} spread`,
      });
    }
    data.push({
      type: 'scatter',
      mode: 'lines',
      x: pts.map((p) => p.x),
      y: pts.map((p) => p.mean),
      name: a.seeds > 1 ? `${a.label} (${a.seeds} seeds)` : a.label,
      legendgroup: a.innovation,
      line: {
        color,
        width: a.innovation === 'baseline' ? 2.6 : 2,
        ...(a.innovation === 'baseline' ? { dash: 'dash' } : {}),
      },
      customdata: pts.map((p) => p.step),
      hovertemplate: `${a.label}<br>step %{customdata}<br>${opts.axis} %{x:.3s}<br>val loss %{y:.4f}<extra></extra>`,
    });
  }
  const bandNote =
    maxSeeds > 1 && band !== 'none' ? `; band: ${band === 'sd' ? 'mean ± 1 sd' : 'min–max'} over seeds` : '';
  const smoothNote = smooth > 1 ? `, ${smooth}-point trailing mean` : '';
  const title = opts.title ?? `Validation loss vs ${AXIS_TITLES[opts.axis].split(' (')[0]}`;
  return {
    data,
    layout: baseLayout(`${title}<br><sup>mean over seeds${smoothNote}${bandNote}</sup>`, {
      xaxis: axis(AXIS_TITLES[opts.axis], logX ? { type: 'log', exponentformat: 'power' } : { rangemode: 'tozero' }),
      yaxis: axis('validation loss (nats/token)'),
      // outside the plotting area: never over the curves; legend order stays the registry's
      legend: { x: 1.02, xanchor: 'left', y: 1, yanchor: 'top', traceorder: 'normal' },
    }),
  };
}

/* ------------------------------------------------------------------ CEG bars */

const CATEGORY_NAMES: Record<PaperCategory, string> = {
  baseline: 'baseline',
  'compute-independent': 'compute-independent (paper)',
  'compute-dependent': 'compute-dependent (paper)',
  'not in paper': 'not tested in the paper',
};

/** The colour group of a bar: an innovation the paper did not test (MoE, ...) is never coloured as a paper result. */
function barCategory(r: CegBar): PaperCategory {
  const inn = INNOVATIONS.find((i) => i.id === r.innovation);
  return inn && !inn.inPaper && r.category !== 'baseline' ? 'not in paper' : r.category;
}

export interface CegBarOptions {
  title?: string;
  /** what compute the CEG is measured in, for the axis title (e.g. 'FLOPs', 'steps') */
  measure?: string;
}

/**
 * Horizontal CEG bars with confidence intervals, coloured by the paper's category, a dashed
 * line at CEG = 1; a DNR row (auxiliary CEG) is hatched and says so in its label.
 */
export function cegBars(rows: CegBar[], opts: CegBarOptions = {}): Figure {
  if (rows.length === 0) throw new Error('cegBars: no rows given');
  const labelOf = (r: CegBar) => innovationLabel(r.innovation, r.label) + (r.dnr ? ' — DNR (aux)' : '');
  for (const r of rows) assertFinite(r.ceg, `CEG of ${r.innovation}`);
  const order = rows.map(labelOf);
  const cats = [...new Set(rows.map(barCategory))];
  const data: Obj[] = cats.map((cat) => {
    const rs = rows.filter((r) => barCategory(r) === cat);
    const hasCi = rs.some((r) => r.ci_low !== undefined && r.ci_high !== undefined);
    return {
      type: 'bar',
      orientation: 'h',
      name: CATEGORY_NAMES[cat] ?? cat,
      y: rs.map(labelOf),
      x: rs.map((r) => r.ceg),
      marker: {
        color: categoryColor(cat),
        line: { color: categoryColor(cat), width: 1 },
        pattern: {
          shape: rs.map((r) => (r.dnr ? '/' : '')),
          fillmode: 'overlay',
          fgcolor: 'white',
          fgopacity: 0.7,
          size: 9,
          solidity: 0.3,
        },
      },
      error_x: hasCi
        ? {
            type: 'data',
            symmetric: false,
            array: rs.map((r) => (r.ci_high !== undefined ? Math.max(0, r.ci_high - r.ceg) : 0)),
            arrayminus: rs.map((r) => (r.ci_low !== undefined ? Math.max(0, r.ceg - r.ci_low) : 0)),
            color: '#333333',
            thickness: 1.5,
            width: 5,
          }
        : { visible: false },
      text: rs.map((r) => r.ceg.toFixed(2)),
      textposition: 'inside',
      insidetextanchor: 'start',
      // white on solid bars; dark on hatched (DNR) bars, where white stripes would hide white text
      textfont: { color: rs.map((r) => (r.dnr ? '#222222' : 'white')) },
      customdata: rs.map((r) => [r.ci_low ?? NaN, r.ci_high ?? NaN, r.verdict ?? '']),
      hovertemplate:
        '%{y}<br>CEG %{x:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}]<br>%{customdata[2]}<extra></extra>',
    };
  });
  const maxX = Math.max(...rows.map((r) => Math.max(r.ceg, r.ci_high ?? 0)), 1);
  const measure = opts.measure ? ` in ${opts.measure}` : '';
  const title =
    opts.title ??
    `Compute-equivalent gain per innovation<br><sup>CEG = baseline compute / variant compute to reach the same validation loss${measure}; bars: 95% interval</sup>`;
  const extraLines = Math.max(0, title.split('<br>').length - 2);
  return {
    data,
    layout: baseLayout(title, {
      barmode: 'overlay',
      bargap: 0.3,
      xaxis: axis(`CEG (× baseline compute${measure})`, { range: [0, maxX * 1.1] }),
      yaxis: axis('', {
        categoryorder: 'array',
        categoryarray: order,
        autorange: 'reversed',
        showgrid: false,
        ticks: '',
      }),
      legend: { orientation: 'h', x: 0, y: -0.12, yanchor: 'top' },
      margin: { l: 80, r: 30, t: 95 + 17 * extraLines, b: 100 },
      shapes: [
        {
          type: 'line',
          xref: 'x',
          yref: 'paper',
          x0: 1,
          x1: 1,
          y0: 0,
          y1: 1,
          line: { color: '#444444', width: 1.5, dash: 'dash' },
        },
      ],
      annotations: [
        {
          x: 1,
          xref: 'x',
          y: 1,
          yref: 'paper',
          yanchor: 'bottom',
          text: 'CEG = 1 (no gain)',
          showarrow: false,
          font: { size: 11, color: '#444444' },
        },
      ],
    }),
  };
}

/* ------------------------------------------------------------------ scaling */

/** Observed (C, L) points and fitted curves per variant on log–log axes. */
export function scalingFits(series: ScalingSeries[], opts: { title?: string } = {}): Figure {
  if (series.length === 0) throw new Error('scalingFits: no series given');
  const data: Obj[] = [];
  for (const id of registryOrder(series.map((s) => s.innovation))) {
    const s = series.find((x) => x.innovation === id)!;
    const color = innovationColor(id);
    const label = innovationLabel(id, s.label);
    if (s.band?.length) {
      data.push({
        type: 'scatter',
        mode: 'lines',
        x: [...s.band.map((p) => p.C), ...s.band.map((p) => p.C).reverse()],
        y: [...s.band.map((p) => p.hi), ...s.band.map((p) => p.lo).reverse()],
        fill: 'toself',
        fillcolor: withAlpha(color, 0.15),
        line: { width: 0, color: withAlpha(color, 0) },
        hoverinfo: 'skip',
        showlegend: false,
        legendgroup: id,
        name: `${label} fit range over seeds`,
      });
    }
    data.push({
      type: 'scatter',
      mode: 'lines',
      x: s.curve.map((p) => p.C),
      y: s.curve.map((p) => p.L),
      name: `${label} fit`,
      legendgroup: id,
      showlegend: false,
      line: { color, width: 2 },
      hovertemplate: `${label} fit<br>C %{x:.3s} FLOPs<br>L %{y:.4f}<extra></extra>`,
    });
    data.push({
      type: 'scatter',
      mode: 'markers',
      x: s.points.map((p) => p.C),
      y: s.points.map((p) => p.L),
      name: label,
      legendgroup: id,
      marker: { color, size: 8, line: { color: 'white', width: 1 } },
      hovertemplate: `${label}<br>C %{x:.3s} FLOPs<br>L %{y:.4f}<extra></extra>`,
    });
  }
  return {
    data,
    layout: baseLayout(
      opts.title ??
        `Loss vs compute: runs (dots) and fitted scaling curves (lines)${series.some((s) => s.band?.length) ? '<br><sup>band: range of the fits to each seed alone</sup>' : ''}`,
      {
        xaxis: axis('training compute C (FLOPs)', { type: 'log', exponentformat: 'power' }),
        yaxis: axis('validation loss L (nats/token)', { type: 'log' }),
        legend: { x: 1.02, xanchor: 'left', y: 1, yanchor: 'top' },
      },
    ),
  };
}

/**
 * Split a curve into the part inside [lo, hi] (solid) and the parts outside (dashed); boundary
 * points belong to both sides so the line is continuous.
 */
export function splitObserved<T extends { C: number }>(
  curve: T[],
  lo: number,
  hi: number,
): { inside: T[]; below: T[]; above: T[] } {
  const sorted = [...curve].sort((a, b) => a.C - b.C);
  const inside = sorted.filter((p) => p.C >= lo && p.C <= hi);
  const below = sorted.filter((p) => p.C < lo);
  const above = sorted.filter((p) => p.C > hi);
  if (below.length && inside.length) below.push(inside[0]);
  if (above.length && inside.length) above.unshift(inside[inside.length - 1]);
  return { inside, below, above };
}

/** CEG(C) per variant: solid over the observed compute range, dashed where extrapolated. */
export function cegVsCompute(curves: CegCurve[], opts: { title?: string } = {}): Figure {
  if (curves.length === 0) throw new Error('cegVsCompute: no curves given');
  const data: Obj[] = [];
  for (const id of registryOrder(curves.map((c) => c.innovation))) {
    const c = curves.find((x) => x.innovation === id)!;
    const [lo, hi] = c.observed;
    if (!(lo > 0 && hi >= lo)) throw new Error(`observed range of ${id} must satisfy 0 < lo <= hi, got [${lo}, ${hi}]`);
    const color = innovationColor(id);
    const label = innovationLabel(id, c.label);
    const parts = splitObserved(c.curve, lo, hi);
    const line = (pts: { C: number; ceg: number }[], dashed: boolean, legend: boolean): Obj => ({
      type: 'scatter',
      mode: 'lines',
      x: pts.map((p) => p.C),
      y: pts.map((p) => p.ceg),
      name: label,
      legendgroup: id,
      showlegend: legend,
      line: { color, width: 2.2, dash: dashed ? 'dash' : 'solid' },
      hovertemplate: `${label}${dashed ? ' (extrapolated)' : ''}<br>C %{x:.3s} FLOPs<br>CEG %{y:.3f}<extra></extra>`,
    });
    data.push(line(parts.inside, false, true));
    if (parts.below.length) data.push(line(parts.below, true, false));
    if (parts.above.length) data.push(line(parts.above, true, false));
  }
  const ys = curves.flatMap((c) => c.curve.map((p) => p.ceg)).filter((v) => v > 0);
  const yLo = Math.min(1, ...ys) / 1.1;
  const yHi = Math.max(1, ...ys) * 1.1;
  const yTicks = ratioTicks(yLo, yHi);
  data.push({
    type: 'scatter',
    mode: 'lines',
    x: [null],
    y: [null],
    name: 'dashed: extrapolated',
    line: { color: '#777777', dash: 'dash', width: 2 },
    hoverinfo: 'skip',
  });
  return {
    data,
    layout: baseLayout(opts.title ?? 'CEG as a function of compute (from the fitted scaling curves)', {
      xaxis: axis('baseline training compute C (FLOPs)', { type: 'log', exponentformat: 'power' }),
      yaxis: axis('CEG (× baseline compute)', { type: 'log', range: [Math.log10(yLo), Math.log10(yHi)], ...yTicks }),
      legend: { x: 1.02, xanchor: 'left', y: 1, yanchor: 'top' },
      shapes: [
        {
          type: 'line',
          xref: 'paper',
          yref: 'y',
          x0: 0,
          x1: 1,
          y0: 1,
          y1: 1,
          line: { color: '#444444', width: 1.2, dash: 'dot' },
        },
      ],
    }),
  };
}

/* ------------------------------------------------------------------ paper vs ours */

/** Our CEG (with interval) against the paper's, one dot per innovation, and the y = x line. */
export function paperVsOurs(
  rows: PaperVsOursRow[],
  /** subtitle: `note` if given, else "scale: <scale>"; oursAxis: what our CEG is measured in (y-axis title) */
  opts: { title?: string; scale?: string; note?: string; oursAxis?: string } = {},
): Figure {
  const inPaper = rows.filter((r) => r.paperCeg !== null);
  if (inPaper.length === 0) throw new Error('paperVsOurs: no row has a paper CEG');
  const data: Obj[] = [];
  for (const id of registryOrder(inPaper.map((r) => r.innovation))) {
    const r = inPaper.find((x) => x.innovation === id)!;
    const label = innovationLabel(id, r.label);
    const color = innovationColor(id);
    data.push({
      type: 'scatter',
      mode: 'markers',
      x: [r.paperCeg],
      y: [r.ourCeg],
      name:
        label +
        (r.paperDnr || r.ourDnr
          ? ` (${[r.paperDnr ? 'paper' : '', r.ourDnr ? 'ours' : ''].filter(Boolean).join(' & ')}: DNR, aux)`
          : ''),
      marker: {
        color,
        size: 12,
        symbol: (r.ourDnr ? 'square' : 'circle') + (r.paperDnr ? '-open' : ''),
        line: { width: 2, color },
      },
      error_y:
        r.ci_low !== undefined && r.ci_high !== undefined
          ? {
              type: 'data',
              symmetric: false,
              array: [r.ci_high - r.ourCeg],
              arrayminus: [r.ourCeg - r.ci_low],
              color,
              thickness: 1.5,
              width: 4,
            }
          : { visible: false },
      hovertemplate: `${label}<br>paper %{x:.3f}<br>ours %{y:.3f}<extra></extra>`,
      legendgroup: id,
    });
    // the paper's full-scale number for the same innovation: a diamond on the same height
    if (r.paperCegFull != null && r.paperCegFull > 0) {
      const adj = r.paperFullAdjusted ? ', rests on the |LN − baseline| adjustment' : '';
      data.push({
        type: 'scatter',
        mode: 'markers',
        x: [r.paperCegFull],
        y: [r.ourCeg],
        name: `${label}: paper full scale${r.paperFullDnr ? ' (DNR, aux)' : ''}${r.paperFullAdjusted ? ' *' : ''}`,
        legendgroup: id,
        marker: { color, size: 11, symbol: 'diamond' + (r.paperFullDnr ? '-open' : ''), line: { width: 2, color } },
        hovertemplate: `${label}<br>paper (full scale${adj}) %{x:.3f}<br>ours %{y:.3f}<extra></extra>`,
      });
    }
  }
  const vals = inPaper
    .flatMap((r) => [
      r.paperCeg as number,
      r.paperCegFull ?? r.ourCeg,
      r.ourCeg,
      r.ci_low ?? r.ourCeg,
      r.ci_high ?? r.ourCeg,
    ])
    .filter((v) => v > 0);
  const lo = Math.min(...vals) / 1.25;
  const hi = Math.max(...vals) * 1.25;
  data.unshift({
    type: 'scatter',
    mode: 'lines',
    x: [lo, hi],
    y: [lo, hi],
    name: 'y = x (agreement)',
    line: { color: '#888888', dash: 'dash', width: 1.5 },
    hoverinfo: 'skip',
  });
  const missing = rows.filter((r) => r.paperCeg === null).map((r) => innovationLabel(r.innovation, r.label));
  const adjusted = inPaper
    .filter((r) => r.paperFullAdjusted && r.paperCegFull != null)
    .map((r) => innovationLabel(r.innovation, r.label));
  const sub = [
    opts.note ?? (opts.scale ? `scale: ${opts.scale}` : ''),
    inPaper.some((r) => r.paperCegFull != null) ? 'circles: the paper’s compact scale; diamonds: its full scale' : '',
    adjusted.length
      ? `* paper’s full-scale ${adjusted.join(', ')}: |LayerNorm − baseline| added to their curves before the CEG`
      : '',
    missing.length ? `not in the paper (not shown): ${missing.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join('<br>');
  const range = [Math.log10(lo), Math.log10(hi)];
  const ticks = ratioTicks(lo, hi);
  return {
    data,
    layout: baseLayout((opts.title ?? 'Our CEG vs the paper’s') + (sub ? `<br><sup>${sub}</sup>` : ''), {
      xaxis: axis('paper’s CEG (steps only, one seed)', { type: 'log', range, ...ticks }),
      yaxis: axis(`our CEG${opts.oursAxis ? ` in ${opts.oursAxis}` : ''} (95% interval)`, {
        type: 'log',
        range,
        scaleanchor: 'x',
        ...ticks,
      }),
      legend: { x: 1.02, xanchor: 'left', y: 1, yanchor: 'top' },
    }),
  };
}

/* ------------------------------------------------------------------ teaching pictures */

/** RoPE rotation angle of channel pair i at position m: m · base^(-2i/d). */
export function ropeAngle(position: number, pair: number, headDim: number, base = 10000): number {
  if (!Number.isInteger(headDim) || headDim < 2 || headDim % 2)
    throw new Error(`headDim must be an even integer >= 2, got ${headDim}`);
  if (!Number.isInteger(pair) || pair < 0 || pair >= headDim / 2)
    throw new Error(`pair must be an integer in [0, ${headDim / 2 - 1}], got ${pair}`);
  return position * Math.pow(base, (-2 * pair) / headDim);
}

/** Colours from light to dark along positions (cividis-like, colour-blind safe). */
function sequential(k: number, n: number): string {
  const a = [0xfd, 0xe7, 0x25];
  const b = [0x00, 0x20, 0x4c];
  const t = n <= 1 ? 0 : k / (n - 1);
  const c = a.map((v, i) => Math.round(v + (b[i] - v) * t));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/**
 * RoPE as a picture: a query channel pair (1, 0) rotated to each position m = 0..positions-1,
 * one panel per channel pair (fast pair 0 vs a slow pair): the angle grows linearly with m.
 */
export function ropeRotation(
  opts: { headDim?: number; positions?: number; base?: number; pairs?: number[] } = {},
): Figure {
  const headDim = opts.headDim ?? 8;
  const positions = opts.positions ?? 8;
  const base = opts.base ?? 10000;
  const pairs = opts.pairs ?? [0, 1];
  const data: Obj[] = [];
  const layout: Obj = baseLayout(
    `RoPE: a query vector rotated by its position m<br><sup>angle = m · θᵢ, θᵢ = ${base}^(−2i/${headDim}); the score q·k then depends only on the offset between positions</sup>`,
    { showlegend: false, margin: { l: 50, r: 30, t: 115, b: 50 } },
  );
  const w = 1 / pairs.length;
  const annotations: Obj[] = [];
  const circle = Array.from({ length: 101 }, (_, k) => (2 * Math.PI * k) / 100);
  pairs.forEach((pair, pi) => {
    const xa = pi === 0 ? 'x' : `x${pi + 1}`;
    const ya = pi === 0 ? 'y' : `y${pi + 1}`;
    const xKey = pi === 0 ? 'xaxis' : `xaxis${pi + 1}`;
    const yKey = pi === 0 ? 'yaxis' : `yaxis${pi + 1}`;
    data.push({
      type: 'scatter',
      mode: 'lines',
      x: circle.map(Math.cos),
      y: circle.map(Math.sin),
      xaxis: xa,
      yaxis: ya,
      line: { color: '#cccccc', width: 1 },
      hoverinfo: 'skip',
    });
    for (let m = 0; m < positions; m++) {
      const ang = ropeAngle(m, pair, headDim, base);
      const color = sequential(m, positions);
      data.push({
        type: 'scatter',
        mode: 'lines+markers+text',
        x: [0, Math.cos(ang)],
        y: [0, Math.sin(ang)],
        xaxis: xa,
        yaxis: ya,
        line: { color, width: 2.5 },
        marker: { color, size: [0, 9] },
        text: ['', `m=${m}`],
        // slow pairs bunch their tips together: labels beside the tip instead of above it
        textposition: ropeAngle(1, pair, headDim, base) < 0.5 ? 'middle right' : 'top center',
        textfont: { size: 10, color: '#333333' },
        hovertemplate: `pair ${pair}, position ${m}<br>angle ${ang.toFixed(3)} rad<extra></extra>`,
      });
    }
    const gap = 0.06;
    layout[xKey] = axis('channel 2i', {
      domain: [pi * w + (pi ? gap : 0), (pi + 1) * w - (pi < pairs.length - 1 ? gap : 0)],
      range: [-1.35, 1.35],
      anchor: ya,
      zeroline: true,
      zerolinecolor: '#dddddd',
    });
    layout[yKey] = axis(pi === 0 ? 'channel 2i+1' : '', {
      range: [-1.35, 1.35],
      anchor: xa,
      scaleanchor: xa,
      zeroline: true,
      zerolinecolor: '#dddddd',
    });
    const theta = Math.pow(base, (-2 * pair) / headDim);
    annotations.push({
      text: `pair i=${pair}: θ=${theta.toPrecision(3)} rad/position`,
      xref: 'paper',
      yref: 'paper',
      x: pi * w + w / 2,
      y: 1.02,
      xanchor: 'center',
      yanchor: 'bottom',
      showarrow: false,
      font: { size: 13 },
    });
  });
  layout.annotations = annotations;
  return { data, layout };
}

/** Causal mask: mask[i][j] = 1 when query i may attend key j (j <= i). */
export function causalMask(T: number): number[][] {
  if (!Number.isInteger(T) || T < 1) throw new Error(`T must be an integer >= 1, got ${T}`);
  return Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => (j <= i ? 1 : 0)));
}

/**
 * Block-sparse causal mask for teaching: query block qb sees the key blocks selected[qb]
 * (its own block is always included), causally within. T must be a multiple of blockSize.
 */
export function blockSparseMask(T: number, blockSize: number, selected: number[][]): number[][] {
  if (!Number.isInteger(blockSize) || blockSize < 1 || T % blockSize)
    throw new Error(`T=${T} must be a positive multiple of blockSize=${blockSize}`);
  const nb = T / blockSize;
  if (selected.length !== nb)
    throw new Error(`selected must list key blocks for each of the ${nb} query blocks, got ${selected.length}`);
  return Array.from({ length: T }, (_, i) => {
    const qb = Math.floor(i / blockSize);
    const blocks = new Set([...selected[qb], qb]);
    for (const b of blocks)
      if (b > qb || b < 0) throw new Error(`query block ${qb} cannot select key block ${b} (valid: 0..${qb})`);
    return Array.from({ length: T }, (_, j) => (blocks.has(Math.floor(j / blockSize)) && j <= i ? 1 : 0));
  });
}

/** Attention masks (or weights) as heatmaps side by side: rows = query position, columns = key position. */
export function attentionPattern(panels: { title: string; mask: number[][] }[], opts: { title?: string } = {}): Figure {
  if (panels.length === 0) throw new Error('attentionPattern: no panels given');
  const binary = panels.every((p) => p.mask.every((row) => row.every((v) => v === 0 || v === 1)));
  const data: Obj[] = [];
  const layout: Obj = baseLayout(
    opts.title ??
      `Which keys each query may attend to<br><sup>${binary ? 'blue = attended, grey = masked' : 'colour = attention weight'}</sup>`,
    { margin: { l: 70, r: 30, t: 115, b: 60 } },
  );
  const w = 1 / panels.length;
  const gap = 0.05;
  const annotations: Obj[] = [];
  panels.forEach((p, pi) => {
    const T = p.mask.length;
    const xa = pi === 0 ? 'x' : `x${pi + 1}`;
    const ya = pi === 0 ? 'y' : `y${pi + 1}`;
    data.push({
      type: 'heatmap',
      z: p.mask,
      x: Array.from({ length: p.mask[0]?.length ?? 0 }, (_, j) => j),
      y: Array.from({ length: T }, (_, i) => i),
      xaxis: xa,
      yaxis: ya,
      colorscale: binary
        ? [
            [0, '#eeeeee'],
            [1, '#0072B2'],
          ]
        : 'Cividis',
      zmin: 0,
      zmax: binary ? 1 : undefined,
      showscale: !binary && pi === panels.length - 1,
      xgap: T <= 64 ? 1 : 0,
      ygap: T <= 64 ? 1 : 0,
      hovertemplate: 'query %{y}, key %{x}: %{z}<extra></extra>',
    });
    layout[pi === 0 ? 'xaxis' : `xaxis${pi + 1}`] = axis('key position j', {
      domain: [pi * w + (pi ? gap : 0), (pi + 1) * w - (pi < panels.length - 1 ? gap : 0)],
      anchor: ya,
      showgrid: false,
      constrain: 'domain',
    });
    layout[pi === 0 ? 'yaxis' : `yaxis${pi + 1}`] = axis(pi === 0 ? 'query position i' : '', {
      autorange: 'reversed',
      anchor: xa,
      scaleanchor: xa,
      showgrid: false,
      constrain: 'domain',
    });
    annotations.push({
      text: p.title,
      xref: 'paper',
      yref: 'paper',
      x: pi * w + w / 2,
      y: 1.02,
      xanchor: 'center',
      yanchor: 'bottom',
      showarrow: false,
      font: { size: 13 },
    });
  });
  layout.annotations = annotations;
  return { data, layout };
}

/** Tokens routed to each expert (one bar group per series) with the uniform-load line. */
export function expertLoadHistogram(
  counts: number[] | { name: string; counts: number[] }[],
  opts: { title?: string } = {},
): Figure {
  const series =
    typeof counts[0] === 'number' || counts.length === 0
      ? [{ name: 'tokens', counts: counts as number[] }]
      : (counts as { name: string; counts: number[] }[]);
  if (series.length === 0 || series[0].counts.length === 0) throw new Error('expertLoadHistogram: no counts given');
  const E = series[0].counts.length;
  for (const s of series) {
    if (s.counts.length !== E) throw new Error(`series "${s.name}" has ${s.counts.length} experts, expected ${E}`);
    s.counts.forEach((c, e) => {
      if (!(c >= 0)) throw new Error(`count for expert ${e} in "${s.name}" must be >= 0, got ${c}`);
    });
  }
  const palette = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00'];
  const data: Obj[] = series.map((s, k) => ({
    type: 'bar',
    name: s.name,
    x: s.counts.map((_, e) => `expert ${e}`),
    y: s.counts,
    marker: { color: palette[k % palette.length] },
    hovertemplate: `${s.name}<br>%{x}: %{y} tokens<extra></extra>`,
  }));
  const total = series.reduce((acc, s) => acc + s.counts.reduce((a, b) => a + b, 0), 0);
  const uniform = total / (E * series.length);
  return {
    data,
    layout: baseLayout(
      opts.title ??
        'Mixture of experts: tokens routed to each expert<br><sup>dashed line: perfectly balanced load</sup>',
      {
        barmode: 'group',
        showlegend: series.length > 1,
        xaxis: axis('expert', { showgrid: false }),
        yaxis: axis('tokens routed (count)', { rangemode: 'tozero' }),
        shapes: [
          {
            type: 'line',
            xref: 'paper',
            yref: 'y',
            x0: 0,
            x1: 1,
            y0: uniform,
            y1: uniform,
            line: { color: '#444444', width: 1.5, dash: 'dash' },
          },
        ],
        annotations: [
          {
            xref: 'paper',
            yref: 'y',
            x: 1,
            y: uniform,
            xanchor: 'right',
            yanchor: 'bottom',
            text: `uniform: ${uniform.toFixed(1)}`,
            showarrow: false,
            font: { size: 11 },
          },
        ],
      },
    ),
  };
}
