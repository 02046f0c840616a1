/**
 * The study's figures (issues #13, #15): loss against learning rate per variant (each variant
 * was tuned), the seed-averaged loss-vs-compute frontiers of both baselines and the variants
 * (plateau points hollow), CEG against compute per innovation with intervals (the shared-E
 * curve drawn at most half a decade past the data, never further), Gundlach et al.'s pairs
 * beside ours in both directions, and their scaling frontiers beside ours on one axis.
 * Plain Plotly specs (./figures.ts conventions, one colour per innovation: ./palette.ts).
 */
import { baseLayout, axis, ratioTicks } from './figures.js';
import { innovationColor, innovationLabel, registryOrder, withAlpha } from './palette.js';
import type { Figure, NamedFigure } from './types.js';
import type { StudyData } from './study.js';
import { cegPoints, type StudySummary } from './study-summary.js';
import { parametricCegAt, type BaselineAnalysis, type StudyAnalysis, type StudyRun } from '../ceg/study/index.js';
import { MAX_EXTRAPOLATION } from '../ceg/fit.js';
import {
  GUNDLACH_PAIRS,
  GUNDLACH_SERIES,
  lowerEnvelope,
  relativeToReference,
  type GundlachPoint,
} from '../ceg/anchors.js';

type Obj = Record<string, unknown>;

/** Colours of the sweep rungs (and the transferred ones), smallest first. */
const RUNG_COLORS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];
const e2 = (v: number) => v.toExponential(2);

/**
 * Final validation loss of the longest fork against peak LR at each sweep rung, for one
 * variant: the chosen LR ringed, LR* (the parabola's vertex) dotted, the LRs used at larger
 * rungs (transferred, or the fallback) dashed, and the spot check's points at its rung.
 */
export function lossVsLr(d: StudyData, variant: string): Figure {
  const pts = d.lrs.sweep.filter((p) => p.variant === variant);
  if (pts.length === 0) throw new Error(`lossVsLr: no sweep points of "${variant}"`);
  const rungs = d.plan.rungs.map((r) => r.name);
  const data: Obj[] = [];
  const shapes: Obj[] = [];
  const annotations: Obj[] = [];
  const colorOf = (rung: string) => RUNG_COLORS[rungs.indexOf(rung) % RUNG_COLORS.length];
  const lastFork = d.plan.forks[d.plan.forks.length - 1];
  for (const rung of rungs) {
    // diverged LRs (loss +inf, src/report/study.ts sweepLoss) have no point to draw
    const mine = pts.filter((p) => p.rung === rung && Number.isFinite(p.loss)).sort((a, b) => a.lr - b.lr);
    const choice = d.lrs.choices.find((c) => c.variant === variant && c.rung === rung);
    const color = colorOf(rung);
    if (mine.length) {
      data.push({
        type: 'scatter',
        mode: 'lines+markers',
        x: mine.map((p) => p.lr),
        y: mine.map((p) => p.loss),
        name: `${rung} (N = ${mine[0].params})`,
        line: { color, width: 2 },
        marker: { color, size: 8 },
        hovertemplate: `${rung}<br>LR %{x:.3g}<br>loss %{y:.4f}<extra></extra>`,
      });
      if (choice) {
        const at = mine.find((p) => p.lr === choice.lr);
        if (at)
          data.push({
            type: 'scatter',
            mode: 'markers',
            x: [at.lr],
            y: [at.loss],
            showlegend: false,
            marker: { symbol: 'star', size: 17, color, line: { color: '#222222', width: 1 } },
            hovertemplate: `${rung}: chosen LR %{x:.3g}<br>LR* ${e2(choice.lrStar)}${choice.flag ? ` (${choice.flag})` : ''}<extra></extra>`,
          });
        shapes.push({
          type: 'line',
          xref: 'x',
          yref: 'paper',
          x0: choice.lrStar,
          x1: choice.lrStar,
          y0: 0,
          y1: 1,
          line: { color, width: 1.3, dash: 'dot' },
        });
      }
    } else if (choice) {
      // a larger rung: the LR it used (transferred or fallback), and the spot check if any
      shapes.push({
        type: 'line',
        xref: 'x',
        yref: 'paper',
        x0: choice.lr,
        x1: choice.lr,
        y0: 0,
        y1: 1,
        line: { color, width: 1.6, dash: 'dash' },
      });
      annotations.push({
        x: Math.log10(choice.lr),
        xref: 'x',
        y: 1 - 0.06 * (rungs.indexOf(rung) - d.plan.lrSweepRungs),
        yref: 'paper',
        showarrow: false,
        text: `${rung}: ${e2(choice.lr)} (${choice.source})`,
        font: { size: 11, color },
        xanchor: 'left',
        bgcolor: 'rgba(255,255,255,0.8)',
      });
      const spots = d.spots
        .filter((s) => s.variant === variant && s.rung === rung && s.loss !== undefined)
        .sort((a, b) => a.lr - b.lr);
      if (spots.length)
        data.push({
          type: 'scatter',
          mode: 'lines+markers',
          x: spots.map((s) => s.lr),
          y: spots.map((s) => s.loss!),
          name: `${rung} spot check (LR* × 10^±½)`,
          line: { color, width: 1.5, dash: 'dash' },
          marker: { color, size: 8, symbol: 'diamond' },
        });
    }
  }
  data.push({
    type: 'scatter',
    mode: 'markers',
    x: [null],
    y: [null],
    name: '★ LR used at a sweep rung',
    marker: { symbol: 'star', size: 12, color: '#777777' },
    hoverinfo: 'skip',
  });
  return {
    data,
    layout: baseLayout(
      `Loss against learning rate: ${innovationLabel(variant)}<br><sup>final validation loss of the ${lastFork}-tokens-per-parameter fork, seed 1; dotted: LR* (parabola vertex in log LR); dashed: the LR used at larger rungs (c·N^e, one e for the variants that fit it)</sup>`,
      {
        xaxis: axis('peak learning rate', { type: 'log', exponentformat: 'power' }),
        yaxis: axis('validation loss (nats/char)'),
        legend: { x: 1.02, xanchor: 'left', y: 1, yanchor: 'top' },
        shapes,
        annotations,
      },
    ),
  };
}

/** Seed-averaged frontier points of one variant: per (rung, fork) mean loss and SD over seeds. */
export function seedAveraged(
  runs: readonly StudyRun[],
  variant: string,
): { rung: string; fork: string; flops: number; loss: number; sd: number | null; n: number }[] {
  const groups = new Map<string, { rung: string; fork: string; flops: number; losses: number[] }>();
  for (const r of runs.filter((x) => x.variant === variant))
    for (const p of r.points) {
      const fork = p.fork ?? String(p.flops);
      const k = `${r.rung}\u0000${fork}`;
      const g = groups.get(k) ?? { rung: r.rung, fork, flops: p.flops, losses: [] };
      g.losses.push(p.loss);
      groups.set(k, g);
    }
  return [...groups.values()]
    .map((g) => {
      const n = g.losses.length;
      const mean = g.losses.reduce((a, b) => a + b, 0) / n;
      const sd = n > 1 ? Math.sqrt(g.losses.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : null;
      return { rung: g.rung, fork: g.fork, flops: g.flops, loss: mean, sd, n };
    })
    .sort((a, b) => a.flops - b.flops);
}

/**
 * Loss against training FLOPs: every seed-averaged frontier point (error bars: SD over seeds),
 * the lower envelope as a line, points within the plateau margin of the unigram entropy hollow
 * (they are excluded from every CEG and fit).
 */
export function studyFrontiers(d: StudyData, variants: string[], opts: { title?: string } = {}): Figure {
  const threshold = d.unigram - 0.3;
  const present = new Set(d.runs.map((r) => r.variant));
  const ids = registryOrder(variants.filter((v) => present.has(v)));
  if (ids.length === 0) throw new Error('studyFrontiers: none of the variants has frontier runs');
  const data: Obj[] = [];
  for (const id of ids) {
    const pts = seedAveraged(d.runs, id);
    const color = innovationColor(id);
    const label = innovationLabel(id);
    const env = lowerEnvelope(pts.filter((p) => p.loss < threshold));
    data.push({
      type: 'scatter',
      mode: 'lines',
      x: env.map((p) => p.flops),
      y: env.map((p) => p.loss),
      name: label,
      legendgroup: id,
      showlegend: false,
      line: { color, width: 2 },
      hoverinfo: 'skip',
    });
    data.push({
      type: 'scatter',
      mode: 'markers',
      x: pts.map((p) => p.flops),
      y: pts.map((p) => p.loss),
      name: label,
      legendgroup: id,
      // open symbols are drawn in marker.color: hollow = plateau point
      marker: {
        color,
        symbol: pts.map((p) => (p.loss >= threshold ? 'circle-open' : 'circle')),
        line: { color, width: 1.5 },
        size: 8,
      },
      error_y: {
        type: 'data',
        array: pts.map((p) => p.sd ?? 0),
        visible: true,
        color: withAlpha(color, 0.6),
        thickness: 1.2,
        width: 3,
      },
      text: pts.map(
        (p) =>
          `${p.rung} ${p.fork}, ${p.n} seed${p.n > 1 ? 's' : ''}${p.loss >= threshold ? ' (plateau: excluded)' : ''}`,
      ),
      hovertemplate: `${label}<br>%{text}<br>C %{x:.3s} FLOPs<br>loss %{y:.4f}<extra></extra>`,
    });
  }
  data.push({
    type: 'scatter',
    mode: 'markers',
    x: [null],
    y: [null],
    name: `hollow: loss ≥ ${threshold.toFixed(2)} (plateau, excluded)`,
    marker: { symbol: 'circle-open', size: 9, color: '#555555' },
    hoverinfo: 'skip',
  });
  return {
    data,
    layout: baseLayout(
      opts.title ??
        `Loss against compute: study "${d.plan.name}"<br><sup>seed-averaged final loss of every cooldown fork (bars: SD over seeds); line: the lower envelope (frontier); dotted: unigram entropy ${d.unigram.toFixed(3)}</sup>`,
      {
        xaxis: axis('training compute C (FLOPs, whole model)', { type: 'log', exponentformat: 'power' }),
        yaxis: axis('validation loss (nats/char)', { type: 'log' }),
        legend: { x: 1.02, xanchor: 'left', y: 1, yanchor: 'top' },
        shapes: [
          {
            type: 'line',
            xref: 'paper',
            yref: 'y',
            x0: 0,
            x1: 1,
            y0: d.unigram,
            y1: d.unigram,
            line: { color: '#777777', width: 1.2, dash: 'dot' },
          },
        ],
      },
    ),
  };
}

/**
 * CEG against compute, per innovation, against one baseline: the frontier CEG at each point
 * with its interval (error bars), lower bounds where the variant beats the baseline's best
 * (open triangles), and the shared-E curve: solid over the measured range, dashed up to half a
 * decade beyond it (MAX_EXTRAPOLATION), never further.
 */
export function studyCegVsCompute(b: BaselineAnalysis, variants: string[], opts: { title?: string } = {}): Figure {
  const data: Obj[] = [];
  const ys: number[] = [1];
  const ids = registryOrder(variants.filter((v) => b.variants.some((x) => x.variant === v)));
  for (const id of ids) {
    const v = b.variants.find((x) => x.variant === id)!;
    const color = innovationColor(id);
    const label = innovationLabel(id);
    const withCeg = v.frontier.points.filter((p) => p.ceg !== null);
    const up = (i: { hi: number } | null | undefined) => !!i && Number.isFinite(i.hi);
    const down = (i: { lo: number } | null | undefined) => !!i && Number.isFinite(i.lo) && i.lo > 0;
    if (withCeg.length) {
      ys.push(...withCeg.map((p) => p.ceg!));
      data.push({
        type: 'scatter',
        mode: 'markers',
        x: withCeg.map((p) => p.flops),
        y: withCeg.map((p) => p.ceg),
        name: label,
        legendgroup: id,
        marker: { color, size: 9 },
        error_y: {
          type: 'data',
          symmetric: false,
          visible: true,
          color,
          thickness: 1.3,
          width: 4,
          // an unbounded side gets no bar; CEG > 0, so a lower end of 0 is unbounded on the log axis
          array: withCeg.map((p) => (up(p.interval) ? p.interval!.hi - p.ceg! : 0)),
          arrayminus: withCeg.map((p) => (down(p.interval) ? p.ceg! - p.interval!.lo : 0)),
        },
        text: withCeg.map(
          (p) =>
            `${p.rung} ${p.fork}${p.interval ? ` [${p.interval.lo.toFixed(2)}, ${p.interval.hi.toFixed(2)}]${p.interval.weak ? ' weak' : ''}` : ''}`,
        ),
        hovertemplate: `${label}<br>%{text}<br>C %{x:.3s}<br>CEG %{y:.3f}<extra></extra>`,
      });
    }
    const lower = v.frontier.points.filter((p) => p.flag === 'below-range' && p.bound);
    if (lower.length) {
      ys.push(...lower.map((p) => p.bound!.value));
      data.push({
        type: 'scatter',
        mode: 'markers',
        x: lower.map((p) => p.flops),
        y: lower.map((p) => p.bound!.value),
        name: `${label} (≥, below the baseline's best)`,
        legendgroup: id,
        showlegend: withCeg.length === 0,
        marker: { color, size: 10, symbol: 'triangle-up-open' },
        hovertemplate: `${label}<br>CEG ≥ %{y:.3f}<extra></extra>`,
      });
    }
    if (v.parametric) {
      const [lo, hi] = v.parametric.range;
      const grid = Array.from(
        { length: 41 },
        (_, i) =>
          10 **
          (Math.log10(lo / MAX_EXTRAPOLATION) +
            (i / 40) * Math.log10((hi * MAX_EXTRAPOLATION) / (lo / MAX_EXTRAPOLATION))),
      );
      const at = grid.map((C) => parametricCegAt(v.parametric!, C)).filter((p) => !p.refused && p.ceg !== null);
      const part = (pts: typeof at, dashed: boolean, legend: boolean): Obj => ({
        type: 'scatter',
        mode: 'lines',
        x: pts.map((p) => p.C),
        y: pts.map((p) => p.ceg),
        name: `${label} (shared-E fit)`,
        legendgroup: id,
        showlegend: legend,
        line: { color, width: 1.6, dash: dashed ? 'dash' : 'solid' },
        hoverinfo: 'skip',
      });
      const inside = at.filter((p) => !p.extrapolated);
      ys.push(...at.map((p) => p.ceg!));
      if (inside.length) data.push(part(inside, false, false));
      const below = at.filter((p) => p.extrapolated && p.C < lo);
      const above = at.filter((p) => p.extrapolated && p.C > hi);
      if (below.length) data.push(part([...below, ...inside.slice(0, 1)], true, false));
      if (above.length) data.push(part([...inside.slice(-1), ...above], true, false));
    }
  }
  data.push({
    type: 'scatter',
    mode: 'lines',
    x: [null],
    y: [null],
    name: 'line: shared-E fit (dashed ≤ ½ decade beyond the data)',
    line: { color: '#777777', width: 1.6 },
    hoverinfo: 'skip',
  });
  const pos = ys.filter((y) => y > 0 && Number.isFinite(y));
  const yLo = Math.min(...pos) / 1.15;
  const yHi = Math.max(...pos) * 1.15;
  const floor = b.noise
    ? `; placebo ${b.noise.placebo}${b.noise.measuredAgainst === b.baseline ? '' : ` (of ${b.noise.measuredAgainst})`}: ${b.noise.measured ? `slope band ±${b.noise.slopeFloor.toFixed(3)}/decade` : 'no band measured'}`
    : '';
  return {
    data,
    layout: baseLayout(
      opts.title ??
        `CEG against compute, vs ${innovationLabel(b.baseline)}<br><sup>frontier CEG at equal loss (bars: 95% seed-group t-interval; no bar: unbounded)${floor}</sup>`,
      {
        xaxis: axis('training compute of the variant C (FLOPs)', { type: 'log', exponentformat: 'power' }),
        yaxis: axis(`CEG (× ${b.baseline} compute)`, {
          type: 'log',
          range: [Math.log10(yLo), Math.log10(yHi)],
          ...ratioTicks(yLo, yHi),
        }),
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
      },
    ),
  };
}

/** One of Gundlach et al.'s pairs with our CEG each way: at the comparison's largest-compute point that has a CEG. */
export interface PairRow {
  pair: string;
  gundlach: number;
  add: { ceg: number; lo: number | null; hi: number | null; at: number; comparison: string } | null;
  remove: { ceg: number; lo: number | null; hi: number | null; at: number; comparison: string } | null;
}

/** Gundlach et al.'s CEGs beside ours, both directions, from a study summary. */
export function gundlachPairRows(s: StudySummary): PairRow[] {
  const ours = (dir: { variant: string; reference: string } | null) => {
    if (!dir) return null;
    const c = s.comparisons.find((x) => x.variant === dir.variant && x.reference === dir.reference);
    const p = c ? cegPoints(c).at(-1) : undefined;
    if (!p) return null;
    const fin = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x : null);
    return {
      ceg: p.ceg!,
      lo: fin(p.interval?.lo),
      hi: fin(p.interval?.hi),
      at: p.flops,
      comparison: `${dir.variant} vs ${dir.reference}`,
    };
  };
  return GUNDLACH_PAIRS.map((g) => ({
    pair: `${g.from} → ${g.to}`,
    gundlach: g.ceg,
    add: ours(g.ours.add),
    remove: ours(g.ours.remove),
  }));
}

export function gundlachPairsFigure(rows: PairRow[], opts: { title?: string } = {}): Figure {
  const x = rows.map((r) => r.pair);
  const dot = (name: string, get: (r: PairRow) => PairRow['add'], color: string, symbol: string): Obj => ({
    type: 'scatter',
    mode: 'markers',
    name,
    x,
    y: rows.map((r) => get(r)?.ceg ?? null),
    marker: { color, size: 12, symbol },
    error_y: {
      type: 'data',
      symmetric: false,
      visible: true,
      color,
      thickness: 1.3,
      array: rows.map((r) => {
        const o = get(r);
        return o && o.hi !== null ? o.hi - o.ceg : 0;
      }),
      arrayminus: rows.map((r) => {
        const o = get(r);
        return o && o.lo !== null && o.lo > 0 ? o.ceg - o.lo : 0;
      }),
    },
    text: rows.map((r) => {
      const o = get(r);
      return o ? `${o.comparison} at ${o.at.toExponential(1)} FLOPs` : 'not measured';
    }),
    hovertemplate: `${name}<br>%{text}<br>CEG %{y:.3f}<extra></extra>`,
  });
  const data: Obj[] = [
    {
      type: 'scatter',
      mode: 'markers',
      name: 'Gundlach et al. 2025 (~1.5e15 FLOPs)',
      x,
      y: rows.map((r) => r.gundlach),
      marker: { color: '#000000', size: 13, symbol: 'diamond' },
    },
    dot('ours: added to the older model', (r) => r.add, '#0072B2', 'circle'),
    dot('ours: removed from the modern stack', (r) => r.remove, '#D55E00', 'square'),
  ];
  const ys = rows
    .flatMap((r) => [r.gundlach, r.add?.ceg, r.remove?.ceg, r.add?.lo, r.add?.hi, r.remove?.lo, r.remove?.hi])
    .filter((v): v is number => typeof v === 'number' && v > 0 && Number.isFinite(v));
  const yLo = Math.min(1, ...ys) / 1.15;
  const yHi = Math.max(1, ...ys) * 1.15;
  return {
    data,
    layout: baseLayout(
      opts.title ??
        "Gundlach et al.'s ablations beside ours, both directions<br><sup>ours: frontier CEG at the largest compute with a CEG (bars: 95% interval; unbounded bars not drawn)</sup>",
      {
        xaxis: axis(''),
        yaxis: axis('CEG', { type: 'log', range: [Math.log10(yLo), Math.log10(yHi)], ...ratioTicks(yLo, yHi) }),
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
      },
    ),
  };
}

/** Gundlach et al.'s series drawn beside ours, and the one each is measured against. */
export const GUNDLACH_REFERENCE = 'x1_historical';
const GUNDLACH_SHOWN: Record<string, string> = {
  x2_modern: '#CC79A7',
  x1_rms_historical: '#009E73',
  x1_lstm_layer1: '#E69F00',
  x1_historical: '#000000',
};

/**
 * Our frontiers and Gundlach et al.'s on one compute axis. Normalisation: every study's loss
 * divided by its OWN reference frontier's loss at the same compute (ours: the paper's baseline;
 * theirs: the 2017 transformer, x1_historical), interpolated in log C inside the reference's
 * measured range only. The two studies differ in data and tokenizer (SOTU characters vs C4
 * GPT-2 BPE), so absolute losses are not comparable; a ratio below 1 means "better than the
 * study's own older model at that compute", and its trend with C is the compute dependence.
 */
export function anchorsFrontier(d: StudyData, gundlach: readonly GundlachPoint[], ours: string[]): Figure {
  const data: Obj[] = [];
  const threshold = d.unigram - 0.3;
  const ref = seedAveraged(d.runs, 'baseline').filter((p) => p.loss < threshold);
  if (lowerEnvelope(ref).length >= 2) {
    for (const id of registryOrder(ours.filter((v) => d.runs.some((r) => r.variant === v)))) {
      const env = lowerEnvelope(seedAveraged(d.runs, id).filter((p) => p.loss < threshold));
      const rel = relativeToReference(env, ref);
      const keep = env.map((p, i) => ({ x: p.flops, y: rel[i] })).filter((p) => p.y !== null);
      if (keep.length === 0) continue;
      data.push({
        type: 'scatter',
        mode: 'lines+markers',
        x: keep.map((p) => p.x),
        y: keep.map((p) => p.y),
        name: `ours: ${innovationLabel(id)}`,
        line: { color: innovationColor(id), width: 2 },
        marker: { color: innovationColor(id), size: 7 },
      });
    }
  }
  const theirRef = gundlach.filter((p) => p.series === GUNDLACH_REFERENCE);
  for (const [series, color] of Object.entries(GUNDLACH_SHOWN)) {
    const env = lowerEnvelope(gundlach.filter((p) => p.series === series));
    const rel = relativeToReference(env, theirRef);
    const keep = env.map((p, i) => ({ x: p.flops, y: rel[i] })).filter((p) => p.y !== null);
    if (keep.length === 0) continue;
    data.push({
      type: 'scatter',
      mode: 'lines+markers',
      x: keep.map((p) => p.x),
      y: keep.map((p) => p.y),
      name: `Gundlach: ${GUNDLACH_SERIES[series] ?? series}`,
      line: { color, width: 2, dash: 'dash' },
      marker: { color, size: 7, symbol: 'diamond' },
    });
  }
  return {
    data,
    layout: baseLayout(
      "Our frontiers beside Gundlach et al.'s (arXiv 2511.21622)<br><sup>loss ÷ the study's own reference frontier at equal compute (ours: the paper's no-LayerNorm baseline; theirs: the 2017 transformer), inside its measured range</sup>",
      {
        xaxis: axis('training compute C (FLOPs)', { type: 'log', exponentformat: 'power' }),
        yaxis: axis('loss relative to the reference at equal compute'),
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
      },
    ),
  };
}

/** Variant groups drawn together: the paper's set, and the Gundlach ablation set. */
export const PAPER_GROUP = [
  'baseline',
  'baseline_fair',
  'fused',
  'fused_fair',
  'layernorm',
  'rope',
  'fa_rope_ln',
  'mqa',
  'gqa',
  'sparse',
  'moe',
];
export const MODERN_GROUP = [
  'baseline',
  'baseline_fair',
  'postln',
  'layernorm',
  'rmsnorm',
  'swiglu',
  'modern',
  'modern_nonorm',
  'modern_postnorm',
  'modern_learned',
  'modern_gelu',
  'modern_layernorm',
];

/** Every study figure that the stored runs can draw (figures/<name>.png|svg); what cannot be drawn yet is skipped with a note. */
export function studyFigures(
  d: StudyData,
  analysis: StudyAnalysis | null,
  summary: StudySummary | null,
  gundlach: readonly GundlachPoint[],
): { figures: NamedFigure[]; notes: string[] } {
  const figures: NamedFigure[] = [];
  const notes: string[] = [];
  const p = `study_${d.plan.name}`;
  for (const v of d.plan.variants.map((x) => x.id)) {
    if (d.lrs.sweep.some((s) => s.variant === v)) figures.push({ name: `${p}_lr_${v}`, figure: lossVsLr(d, v) });
    else notes.push(`${v}: no LR sweep runs yet: no loss-vs-LR figure`);
  }
  const present = new Set(d.runs.map((r) => r.variant));
  for (const [name, group] of [
    ['frontiers', PAPER_GROUP],
    ['frontiers_modern', MODERN_GROUP],
  ] as const) {
    if (group.some((v) => present.has(v)))
      figures.push({ name: `${p}_${name}`, figure: studyFrontiers(d, [...group]) });
  }
  for (const b of analysis?.baselines ?? []) {
    const drawable = (ids: readonly string[]) =>
      ids.filter((v) =>
        b.variants.some(
          (x) => x.variant === v && (x.frontier.points.some((q) => q.ceg !== null || q.bound) || x.parametric),
        ),
      );
    for (const [name, group] of [
      ['ceg', PAPER_GROUP],
      ['ceg_modern', MODERN_GROUP],
    ] as const) {
      const ids = drawable(group);
      if (ids.length) figures.push({ name: `${p}_${name}_vs_${b.baseline}`, figure: studyCegVsCompute(b, ids) });
      else notes.push(`vs ${b.baseline}: no CEG inside the measured range yet (${name})`);
    }
  }
  if (summary) figures.push({ name: `${p}_gundlach_pairs`, figure: gundlachPairsFigure(gundlachPairRows(summary)) });
  if (gundlach.length)
    figures.push({
      name: `${p}_anchors_frontiers`,
      figure: anchorsFrontier(d, gundlach, ['modern', 'layernorm', 'rope', 'rmsnorm', 'swiglu', 'baseline_fair']),
    });
  return { figures, notes };
}
