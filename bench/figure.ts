/**
 * The cost-growth figure of docs/performance.md from an interleaved bench result
 * (bench/bench.ts): ms/step against FLOPs/step, log-log, ours beside PyTorch's, one point per
 * config (single-process cells), with a fit ms = overhead + FLOPs / rate per framework, whose
 * fixed per-step overhead and asymptotic GFLOP/s the legend states.
 *
 * `tsx bench/figure.ts [--in bench/results/<file>.json] [--out figures] [--cpu]` -> <out>/bench_cost_growth.png, .svg
 * (and with --cpu bench_cost_growth_cpu.png, .svg: the same from each side's CPU ms per step)
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFlags, commandUsage, reportUsageError, type CommandSpec } from '../src/cli/args.js';
import { readJson } from '../src/fsx.js';
import { exportFigures } from '../src/report/export.js';
import type { Figure } from '../src/report/types.js';
import type { Cell } from './bench.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);

/** Fit ms = a + b·flops, least squares in relative error (weights 1/ms²): a = fixed ms per step, 1/b = FLOP/ms. */
export function fitOverhead(points: { flops: number; ms: number }[]): { overheadMs: number; gflops: number } {
  let sw = 0,
    sx = 0,
    sy = 0,
    sxx = 0,
    sxy = 0;
  for (const { flops: x, ms: y } of points) {
    const w = 1 / (y * y);
    sw += w;
    sx += w * x;
    sy += w * y;
    sxx += w * x * x;
    sxy += w * x * y;
  }
  const b = (sw * sxy - sx * sy) / (sw * sxx - sx * sx);
  const a = (sy - b * sx) / sw;
  return { overheadMs: a, gflops: 1 / b / 1e6 };
}

/**
 * `measure`: 'wall' (median ms per step, as the tokens/s) or 'cpu' (the process's CPU ms per step:
 * what a step costs whatever the load; cells without it are left out).
 */
export function costGrowthFigure(cells: Cell[], subtitle: string, measure: 'wall' | 'cpu' = 'wall'): Figure {
  const msOf = (s: NonNullable<Cell['ours']>) => (measure === 'cpu' ? s.cpuMsPerStep : s.msPerStep);
  const one = cells.filter((c) => c.procs === 1 && !c.error && c.ours).sort((a, b) => a.flopsPerStep - b.flopsPerStep);
  const data: Record<string, unknown>[] = [];
  const sides = [
    { key: 'ours' as const, name: 'ours (tfjs wasm + native kernels)', color: '#1f77b4' },
    { key: 'torch' as const, name: 'PyTorch 1.13 + OpenBLAS', color: '#d62728' },
  ];
  for (const s of sides) {
    const pts = one
      .filter((c) => c[s.key] && msOf(c[s.key]!) !== undefined)
      .map((c) => ({ flops: c.flopsPerStep, ms: msOf(c[s.key]!)!, name: c.config }));
    if (!pts.length) continue;
    const fit = pts.length >= 2 ? fitOverhead(pts) : null;
    const big = pts[pts.length - 1];
    const label = fit
      ? `${s.name}: fit ${fit.overheadMs.toFixed(1)} ms + FLOPs / ${fit.gflops.toFixed(1)} GFLOP/s; ${(big.flops / big.ms / 1e6).toFixed(1)} GFLOP/s at ${big.name}`
      : s.name;
    data.push({
      type: 'scatter',
      mode: 'lines+markers+text',
      name: label,
      x: pts.map((p) => p.flops),
      y: pts.map((p) => p.ms),
      text: pts.map((p) => p.name),
      textposition: s.key === 'ours' ? 'top left' : 'bottom right',
      marker: { color: s.color, size: 9 },
      line: { color: s.color, width: 2 },
    });
    if (fit) {
      const lo = pts[0].flops / 2,
        hi = big.flops * 2;
      const xs = Array.from({ length: 40 }, (_, i) => lo * (hi / lo) ** (i / 39));
      data.push({
        type: 'scatter',
        mode: 'lines',
        showlegend: false,
        hoverinfo: 'skip',
        x: xs,
        y: xs.map((x) => fit.overheadMs + x / (fit.gflops * 1e6)),
        line: { color: s.color, width: 1, dash: 'dot' },
      });
    }
  }
  return {
    data,
    layout: {
      title: {
        text: `Cost of one training step vs its FLOPs (single process, 1 thread)<br><sup>${subtitle}</sup>`,
        x: 0.01,
        xanchor: 'left',
      },
      font: { family: 'DejaVu Sans, Liberation Sans, Arial, sans-serif', size: 13, color: '#222222' },
      paper_bgcolor: 'white',
      plot_bgcolor: 'white',
      xaxis: { type: 'log', title: { text: 'FLOPs per step (src/model/flops.ts)' }, gridcolor: '#e5e5e5' },
      yaxis: {
        type: 'log',
        title: {
          text:
            measure === 'cpu'
              ? 'CPU ms per step (process CPU time, median)'
              : 'ms per step (median, interleaved blocks)',
        },
        gridcolor: '#e5e5e5',
      },
      legend: { x: 0.01, y: 0.99, bgcolor: 'rgba(255,255,255,0.8)' },
      margin: { l: 80, r: 30, t: 80, b: 65 },
    },
  };
}

const spec = {
  summary: 'the cost-growth figure from an interleaved bench result',
  flags: {
    in: { type: 'string', help: 'bench result JSON (default: the newest bench/results/*-interleaved.json)' },
    out: { type: 'string', default: 'figures', help: 'output folder' },
    cpu: {
      type: 'bool',
      default: false,
      help: 'also bench_cost_growth_cpu: CPU ms per step (process CPU time, robust to load) instead of wall ms',
    },
  },
} as const satisfies CommandSpec;

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let p;
  try {
    p = parseFlags(process.argv.slice(2), spec, 'figure');
  } catch (e) {
    process.exit(reportUsageError(e));
  }
  if (p.help) {
    console.log(commandUsage('figure', spec).replace('ceg figure', 'tsx bench/figure.ts'));
    process.exit(0);
  }
  const dir = path.join(here, 'results');
  const file =
    p.flags.in ??
    path.join(
      dir,
      readdirSync(dir)
        .filter((f) => f.endsWith('-interleaved.json'))
        .sort()
        .at(-1) ?? '',
    );
  const r = readJson<{ date: string; cells: Cell[]; load: { start: number[]; end: number[] }; cpu: { model: string } }>(
    file,
  );
  if (!r) {
    console.error(`no bench result at ${file}; run npm run bench first`);
    process.exit(2);
  }
  const sub = `${r.cpu.model}, ${r.date.slice(0, 16).replace('T', ' ')} UTC, load ${r.load.start[0].toFixed(1)}→${r.load.end[0].toFixed(1)} (${path.basename(file)})`;
  const out = path.resolve(root, p.flags.out);
  const figs = [{ name: 'bench_cost_growth', figure: costGrowthFigure(r.cells, sub) }];
  if (p.flags.cpu) figs.push({ name: 'bench_cost_growth_cpu', figure: costGrowthFigure(r.cells, sub, 'cpu') });
  const files = await exportFigures(figs, out, { width: 1000, height: 600 });
  for (const f of files) console.log(`wrote ${path.relative(root, f.file)}`);
}
