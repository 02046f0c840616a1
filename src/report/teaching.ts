/**
 * Figures for teaching in the notebooks: a note in place of an empty figure, attention cost
 * against context length, how one CEG is read off two curves, and a normalisation demo.
 * Pure functions from plain data to Plotly specs (like figures.ts).
 */
import * as ceg from '../ceg/index.js';
import { getInnovation } from '../innovations.js';
import { innovationColor } from './palette.js';
import type { Figure, LossAxis } from './types.js';
import type { MetricRow } from '../ceg/types.js';

/** A run as these figures need it. */
export interface TeachingRun {
  innovation: string;
  seed: number;
  metrics: MetricRow[];
}

/** A titled note shown where a figure has nothing to draw. */
export function noteFigure(title: string, message: string): Figure {
  return {
    data: [],
    layout: {
      title: { text: title, x: 0.01, xanchor: 'left' },
      width: 800,
      height: 220,
      xaxis: { visible: false },
      yaxis: { visible: false },
      paper_bgcolor: 'white',
      plot_bgcolor: 'white',
      annotations: [
        {
          text: message,
          showarrow: false,
          x: 0.5,
          y: 0.5,
          xref: 'paper',
          yref: 'paper',
          font: { size: 14, color: '#555555' },
        },
      ],
    },
  };
}

/** Time and peak memory of attention kernels against T (the table of measureAttention). */
export function attentionCostFigure(
  rows: { T: number; kernel: string; ms_fwd_bwd: number; peak_mib_fwd_bwd: number }[],
): Figure {
  const kernels = [...new Set(rows.map((r) => r.kernel))];
  const colorOf = (k: string) => innovationColor(k === 'plain' ? 'baseline' : k);
  const data: Record<string, unknown>[] = [];
  for (const [i, metric] of (['peak_mib_fwd_bwd', 'ms_fwd_bwd'] as const).entries()) {
    for (const k of kernels) {
      const rs = rows.filter((r) => r.kernel === k);
      data.push({
        type: 'scatter',
        mode: 'lines+markers',
        name: k,
        legendgroup: k,
        showlegend: i === 0,
        x: rs.map((r) => r.T),
        y: rs.map((r) => r[metric]),
        xaxis: i ? 'x2' : 'x',
        yaxis: i ? 'y2' : 'y',
        line: { color: colorOf(k), width: 2 },
        marker: { size: 7 },
      });
    }
  }
  const ax = (title: string, extra: Record<string, unknown> = {}) => ({
    title: { text: title },
    showline: true,
    linecolor: '#444',
    gridcolor: '#eeeeee',
    zeroline: false,
    ...extra,
  });
  const mibs = rows.map((r) => r.peak_mib_fwd_bwd).filter((x) => x > 0);
  const decades = [0.01, 0.1, 1, 10, 100, 1000, 10000].flatMap((d) => [d, 2 * d, 5 * d]);
  const mibTicks = decades.filter((t) => t >= Math.min(...mibs) / 2 && t <= Math.max(...mibs) * 2);
  return {
    data,
    layout: {
      title: {
        text: 'Attention forward + backward: peak memory and time vs context length',
        subtitle: {
          text: 'peak = high-water mark of live tensor buffers above the inputs; time = median of repeats',
          font: { size: 12, color: '#555555' },
        },
        x: 0.01,
        xanchor: 'left',
        yref: 'container',
        y: 0.975,
        yanchor: 'top',
        font: { size: 17 },
      },
      font: { family: 'DejaVu Sans, Arial, sans-serif', size: 13 },
      paper_bgcolor: 'white',
      plot_bgcolor: 'white',
      margin: { l: 70, r: 20, t: 80, b: 60 },
      grid: { rows: 1, columns: 2, pattern: 'independent' },
      xaxis: ax('context length T', { type: 'log', tickvals: rows.map((r) => r.T) }),
      yaxis: ax('peak MiB (log scale)', { type: 'log', tickvals: mibTicks, ticktext: mibTicks.map(String) }),
      xaxis2: ax('context length T', { type: 'log', tickvals: rows.map((r) => r.T) }),
      yaxis2: ax('ms per forward + backward', { rangemode: 'tozero' }),
      legend: { orientation: 'h', x: 0, y: -0.22 },
    },
  };
}

/**
 * How one CEG is read off two loss curves (first seed both have): best-so-far validation loss
 * against compute, the target (the baseline's final loss) as a dashed line, and the compute
 * each run needed to first reach it.
 */
export function cegExplainedFigure(runs: TeachingRun[], id: string, axis: LossAxis): Figure {
  const seed = runs.find(
    (r) => r.innovation === id && runs.some((b) => b.innovation === 'baseline' && b.seed === r.seed),
  )?.seed;
  const b = runs.find((r) => r.innovation === 'baseline' && r.seed === seed);
  const v = runs.find((r) => r.innovation === id && r.seed === seed);
  if (!b || !v) return noteFigure('How CEG is measured', `need a baseline run and a ${id} run with the same seed`);
  const res = ceg.ceg(b.metrics, v.metrics, { axis });
  const data = [b, v].map((r) => {
    const c = ceg.curveOnAxis(r.metrics, axis, 1, r.innovation);
    const best = ceg.bestSoFar(c.loss);
    return {
      type: 'scatter',
      mode: 'lines+markers',
      name: `${getInnovation(r.innovation).label} (best so far)`,
      x: c.x,
      y: best,
      line: { color: innovationColor(r.innovation), width: 2, shape: 'hv' },
      marker: { size: 5 },
    };
  });
  const xs = data.flatMap((d) => d.x as number[]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const shapes: Record<string, unknown>[] = [
    { type: 'line', x0, x1, y0: res.target, y1: res.target, line: { dash: 'dash', color: '#555555', width: 1.5 } },
  ];
  const vline = (x: number, color: string) => ({
    type: 'line',
    x0: x,
    x1: x,
    yref: 'paper',
    y0: 0,
    y1: 1,
    line: { dash: 'dot', color, width: 2 },
  });
  if (res.baselineCompute != null) shapes.push(vline(res.baselineCompute, innovationColor('baseline')));
  if (res.variantCompute != null) shapes.push(vline(res.variantCompute, innovationColor(id)));
  const fmt = (x: number | null) => (x == null ? '—' : x.toPrecision(3));
  const text =
    res.ceg != null
      ? `CEG = C_baseline / C_variant = ${fmt(res.baselineCompute)} / ${fmt(res.variantCompute)} = ${res.ceg.toFixed(3)}`
      : `DNR: ${shortLabel(id)} never reached the target (CEG < ${res.bound ? res.bound.value.toFixed(3) : '?'})`;
  const unit: Record<LossAxis, string> = {
    steps: 'optimizer steps',
    tokens: 'training tokens',
    flops: 'training compute (FLOPs)',
    seconds: 'wall-clock seconds',
  };
  const ax = (title: string, extra: Record<string, unknown> = {}) => ({
    title: { text: title },
    showline: true,
    linecolor: '#444',
    gridcolor: '#e6e6e6',
    zeroline: false,
    ticks: 'outside',
    ...extra,
  });
  return {
    data,
    layout: {
      title: {
        text: `How CEG is measured (${axis}, seed ${seed})`,
        subtitle: {
          text: `dashed: target = baseline's final validation loss ${res.target.toFixed(4)}; dotted: compute at which each run first reaches it`,
          font: { size: 12, color: '#555555' },
        },
        x: 0.01,
        xanchor: 'left',
        yref: 'container',
        y: 0.975,
        yanchor: 'top',
        font: { size: 17 },
      },
      font: { family: 'DejaVu Sans, Liberation Sans, Arial, sans-serif', size: 13, color: '#222222' },
      paper_bgcolor: 'white',
      plot_bgcolor: 'white',
      margin: { l: 80, r: 30, t: 90, b: 65 },
      xaxis: ax(unit[axis], { rangemode: 'tozero' }),
      yaxis: ax('best validation loss so far (nats/token)'),
      shapes,
      annotations: [
        {
          text,
          xref: 'paper',
          yref: 'paper',
          x: 0.99,
          y: 0.99,
          xanchor: 'right',
          yanchor: 'top',
          showarrow: false,
          bgcolor: 'rgba(255,255,255,0.9)',
          bordercolor: '#cccccc',
          borderwidth: 1,
          font: { size: 13 },
        },
      ],
      legend: {
        x: 0.99,
        xanchor: 'right',
        y: 0.86,
        yanchor: 'top',
        bgcolor: 'rgba(255,255,255,0.85)',
        bordercolor: '#cccccc',
        borderwidth: 1,
      },
    },
  };
}

/** "Multi-query attention (MQA)" -> "MQA"; labels without an abbreviation unchanged. */
function shortLabel(id: string): string {
  const l = getInnovation(id).label;
  return l.match(/\(([^)]+)\)$/)?.[1] ?? l;
}

/** One vector before and after LayerNorm and RMSNorm (unit gain, zero bias; computed by the caller), as grouped bars. */
export function normDemoFigure(v: number[], ln: number[], rms: number[]): Figure {
  const x = v.map((_, i) => `x${i}`);
  const bar = (name: string, y: number[], color: string) => ({ type: 'bar', name, x, y, marker: { color } });
  const stats = (y: number[]) => {
    const m = y.reduce((a, b) => a + b, 0) / y.length;
    const sd = Math.sqrt(y.reduce((a, b) => a + (b - m) ** 2, 0) / y.length);
    const rms = Math.sqrt(y.reduce((a, b) => a + b * b, 0) / y.length);
    return `mean ${m.toFixed(2)}, sd ${sd.toFixed(2)}, rms ${rms.toFixed(2)}`;
  };
  return {
    data: [
      bar(`input (${stats(v)})`, v, '#999999'),
      bar(`LayerNorm (${stats(ln)})`, ln, innovationColor('layernorm')),
      bar(`RMSNorm (${stats(rms)})`, rms, '#CC6677'),
    ],
    layout: {
      title: { text: 'One token vector before and after normalisation', x: 0.01, xanchor: 'left', font: { size: 17 } },
      font: { family: 'DejaVu Sans, Liberation Sans, Arial, sans-serif', size: 13, color: '#222222' },
      paper_bgcolor: 'white',
      plot_bgcolor: 'white',
      barmode: 'group',
      margin: { l: 60, r: 30, t: 60, b: 50 },
      xaxis: { title: { text: 'channel' }, showline: true, linecolor: '#444' },
      yaxis: { title: { text: 'value' }, gridcolor: '#e6e6e6', zeroline: true, zerolinecolor: '#444' },
      legend: { x: 0.01, y: 0.99, bgcolor: 'rgba(255,255,255,0.85)', bordercolor: '#cccccc', borderwidth: 1 },
    },
  };
}
