import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  aggregateSeeds,
  attentionPattern,
  blockSparseMask,
  causalMask,
  cegBars,
  cegVsCompute,
  expertLoadHistogram,
  lossCurves,
  paperVsOurs,
  ratioTicks,
  ropeAngle,
  ropeRotation,
  scalingFits,
  splitObserved,
} from '../src/report/figures.js';
import { categoryColor, innovationColor } from '../src/report/palette.js';
import { buildAllFigures } from '../src/report/all.js';
import { demoReportData } from '../src/report/demo.js';
import { chromiumPath, exportFigures, ExportError, openExporter } from '../src/report/export.js';
import type { LossCurve } from '../src/report/types.js';
import { INNOVATIONS } from '../src/innovations.js';
import { movingAverage } from '../src/ceg/paper.js';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);
type T = Record<string, any>;

function run(innovation: string, seed: number, losses: number[], secPerStep = 1): LossCurve {
  return {
    innovation,
    seed,
    points: losses.map((valLoss, k) => ({
      step: (k + 1) * 10,
      tokens: (k + 1) * 1000,
      flops: (k + 1) * 1e12,
      seconds: (k + 1) * 10 * secPerStep,
      valLoss,
    })),
  };
}

test("the loss curves' smoothing (movingAverage strict) matches pandas rolling(w).mean()", () => {
  const trailingMean = (v: number[], w: number) => movingAverage(v, w, 'strict');
  const r = trailingMean([1, 2, 3, 4, 5], 2);
  assert.ok(Number.isNaN(r[0]));
  assert.deepEqual(r.slice(1), [1.5, 2.5, 3.5, 4.5]);
  const r3 = trailingMean([3, 6, 9, 0], 3);
  assert.deepEqual(r3.slice(2), [6, 5]);
  assert.deepEqual(trailingMean([4, 5], 1), [4, 5]);
  assert.throws(() => trailingMean([1], 0), /positive integer, got 0/);
});

test('smoothing: an infinite loss spoils only the windows that hold it (no running sum turning later points NaN)', () => {
  // reference by hand: window 3 over [2, 4, Infinity, 6, 8, 10, 12]
  const r = movingAverage([2, 4, Infinity, 6, 8, 10, 12], 3, 'strict');
  assert.ok(Number.isNaN(r[0]) && Number.isNaN(r[1]));
  assert.deepEqual(r.slice(2), [Infinity, Infinity, Infinity, 8, 10]);
  // a running sum (sum += v[i]; sum -= v[i - w]) gives Infinity - Infinity = NaN from r[5] on
  let sum = 0;
  const running = [2, 4, Infinity, 6, 8, 10, 12].map((v, i, a) => ((sum += v), i >= 3 && (sum -= a[i - 3]), sum / 3));
  assert.ok(Number.isNaN(running[5]), 'the reference bug this guards against');
  assert.ok(r.slice(5).every(Number.isFinite));
});

test('aggregateSeeds: mean, min, max, sample sd per step over seeds; union of steps', () => {
  const runs = [run('rope', 0, [4, 3, 2], 1), run('rope', 1, [5, 3], 2), run('baseline', 0, [6, 5, 4])];
  const aggs = aggregateSeeds(runs, 'seconds');
  assert.deepEqual(
    aggs.map((a) => a.innovation),
    ['baseline', 'rope'],
  ); // registry order
  const rope = aggs[1];
  assert.equal(rope.seeds, 2);
  assert.equal(rope.points.length, 3);
  const p0 = rope.points[0];
  assert.equal(p0.mean, 4.5);
  assert.equal(p0.min, 4);
  assert.equal(p0.max, 5);
  close(p0.sd, Math.sqrt(((4 - 4.5) ** 2 + (5 - 4.5) ** 2) / 1));
  assert.equal(p0.x, (10 + 20) / 2); // mean wall-clock at step 10
  assert.equal(rope.points[2].n, 1);
  assert.equal(rope.points[2].sd, 0);
  // smoothing drops points before the first full window
  const sm = aggregateSeeds([run('baseline', 0, [6, 5, 4])], 'steps', 2);
  assert.deepEqual(
    sm[0].points.map((p) => [p.step, p.mean]),
    [
      [20, 5.5],
      [30, 4.5],
    ],
  );
});

test('lossCurves: one line per innovation in its colour, a band when seeds > 1, log x over decades', () => {
  const losses = Array.from({ length: 300 }, (_, k) => 5 - k / 100);
  const runs = [
    run('baseline', 0, losses),
    run('mqa', 0, losses),
    run(
      'mqa',
      1,
      losses.map((v) => v + 0.1),
    ),
  ];
  const fig = lossCurves(runs, { axis: 'flops' });
  const lines = fig.data.filter((d: T) => d.fill === undefined);
  const bands = fig.data.filter((d: T) => d.fill === 'toself');
  assert.equal(lines.length, 2);
  assert.equal(bands.length, 1); // baseline has one seed: no band
  // the baseline is drawn last (on top of variants that coincide with it), dashed; the legend sits outside the data
  assert.match((lines[1] as T).name, /^Baseline/);
  assert.equal((lines[1] as T).line.dash, 'dash');
  assert.ok((fig.layout as T).legend.x > 1 && (fig.layout as T).legend.xanchor === 'left');
  const mqaLine = lines[0] as T;
  assert.equal(mqaLine.line.color, innovationColor('mqa'));
  assert.match(mqaLine.name, /Multi-query attention \(MQA\) \(2 seeds\)/);
  assert.equal((fig.layout as T).xaxis.type, 'log');
  assert.match((fig.layout as T).xaxis.title.text, /FLOPs/);
  close(mqaLine.y[0], 5.05);
  // band polygon: upper edge forward, lower edge back
  const band = bands[0] as T;
  assert.equal(band.y[0], 5.1);
  assert.equal(band.y[band.y.length - 1], 5);
  assert.equal(
    lossCurves(runs, { axis: 'steps' }).layout.xaxis && (lossCurves(runs, { axis: 'steps' }).layout as T).xaxis.type,
    undefined,
  );
  assert.throws(
    () => lossCurves(runs, { axis: 'epochs' as any }),
    /unknown axis "epochs"; valid: steps, tokens, flops, seconds/,
  );
});

test('cegBars: bars per category, asymmetric error bars, dashed line at 1, DNR marked', () => {
  const fig = cegBars([
    { innovation: 'rope', category: 'compute-independent', ceg: 1.8, ci_low: 1.5, ci_high: 2.2 },
    { innovation: 'sparse', category: 'compute-dependent', ceg: 0.5, ci_low: 0.4, ci_high: 0.7, dnr: true },
    { innovation: 'mqa', category: 'compute-dependent', ceg: 0.9 },
  ]);
  assert.equal(fig.data.length, 2);
  const dep = fig.data[1] as T;
  assert.deepEqual(dep.y, ['Sparse attention (SA, NSA) — DNR (aux)', 'Multi-query attention (MQA)']);
  close(dep.error_x.array[0], 0.2, 1e-12);
  close(dep.error_x.arrayminus[0], 0.1, 1e-12);
  assert.equal(dep.error_x.array[1], 0);
  assert.deepEqual(dep.marker.pattern.shape, ['/', '']);
  assert.equal(dep.marker.color, '#D55E00');
  const shape = (fig.layout as T).shapes[0];
  assert.equal(shape.x0, 1);
  assert.equal(shape.line.dash, 'dash');
  // MoE: the paper names it but did not test it, so it is not coloured as a paper result
  const moe = cegBars([{ innovation: 'moe', category: 'compute-dependent', ceg: 1.2 }]).data[0] as T;
  assert.equal(moe.name, 'not tested in the paper');
  assert.equal(moe.marker.color, categoryColor('not in paper'));
});

test('splitObserved and cegVsCompute: solid inside the observed range, dashed outside, continuous', () => {
  const curve = [1, 2, 3, 4, 5].map((C) => ({ C, ceg: C }));
  const s = splitObserved(curve, 2, 3);
  assert.deepEqual(
    s.inside.map((p) => p.C),
    [2, 3],
  );
  assert.deepEqual(
    s.below.map((p) => p.C),
    [1, 2],
  );
  assert.deepEqual(
    s.above.map((p) => p.C),
    [3, 4, 5],
  );
  const fig = cegVsCompute([{ innovation: 'moe', curve, observed: [2, 3] }]);
  const dashes = fig.data.map((d: T) => d.line.dash);
  assert.deepEqual(dashes, ['solid', 'dash', 'dash', 'dash']); // + legend key for "extrapolated"
  assert.throws(() => cegVsCompute([{ innovation: 'moe', curve, observed: [3, 2] }]), /0 < lo <= hi/);
});

test('paperVsOurs: y = x line spanning the data, rows not in the paper left out and named', () => {
  const fig = paperVsOurs([
    { innovation: 'rope', paperCeg: 1.87, ourCeg: 1.5, ci_low: 1.2, ci_high: 1.9 },
    { innovation: 'mqa', paperCeg: 0.673, paperDnr: true, ourCeg: 0.9 },
    { innovation: 'moe', paperCeg: null, ourCeg: 1.3 },
  ]);
  const diag = fig.data[0] as T;
  assert.deepEqual(diag.x, diag.y);
  close(diag.x[0], 0.673 / 1.25);
  close(diag.x[1], 1.9 * 1.25);
  assert.equal(fig.data.length, 3);
  assert.equal((fig.data[2] as T).marker.symbol, 'circle-open');
  assert.match(JSON.stringify(fig.layout), /not in the paper \(not shown\): Mixture of experts \(MoE\)/);
  const t = ratioTicks(0.4, 4);
  assert.ok(t.tickvals.includes(1) && t.tickvals.every((v) => v >= 0.4 && v <= 4));
});

test("paperVsOurs: the paper's full-scale number is a diamond at the same height; adjusted ones are starred", () => {
  const fig = paperVsOurs([
    {
      innovation: 'rope',
      paperCeg: 1.87,
      paperCegFull: 1.35,
      paperFullAdjusted: true,
      ourCeg: 1.5,
      ci_low: 1.2,
      ci_high: 1.9,
    },
    { innovation: 'layernorm', paperCeg: 1.836, paperCegFull: 1.421, ourCeg: 3.0 },
    { innovation: 'mqa', paperCeg: 0.673, paperDnr: true, paperCegFull: 0.931, paperFullAdjusted: true, ourCeg: 0.9 },
  ]);
  const diamonds = (fig.data as T[]).filter((d) => String(d.marker?.symbol).startsWith('diamond'));
  assert.equal(diamonds.length, 3);
  const rope = diamonds.find((d) => /RoPE/.test(d.name))!;
  assert.deepEqual([rope.x[0], rope.y[0]], [1.35, 1.5]);
  assert.match(rope.name, /full scale \*$/);
  assert.doesNotMatch(diamonds.find((d) => /LayerNorm/.test(d.name))!.name, /\*/);
  assert.match(JSON.stringify(fig.layout), /diamonds: its full scale/);
  assert.match(
    JSON.stringify(fig.layout),
    /full-scale Rotary embeddings \(RoPE\), Multi-query attention \(MQA\): \|LayerNorm − baseline\| added/,
  );
});

test('RoPE picture: angle m * base^(-2i/d), arrows end on the unit circle at that angle', () => {
  close(ropeAngle(3, 0, 8), 3);
  close(ropeAngle(3, 1, 8), 3 * Math.pow(10000, -0.25));
  assert.throws(() => ropeAngle(1, 4, 8), /pair must be an integer in \[0, 3\], got 4/);
  const fig = ropeRotation({ headDim: 8, positions: 4, pairs: [1] });
  const arrows = fig.data.filter((d: T) => d.mode === 'lines+markers+text') as T[];
  assert.equal(arrows.length, 4);
  const th = 0.1; // 10000^(-2/8)
  close(arrows[2].x[1], Math.cos(2 * th), 1e-12);
  close(arrows[2].y[1], Math.sin(2 * th), 1e-12);
});

test('masks: causal and block-sparse against plain loops; attention heatmap', () => {
  assert.deepEqual(causalMask(3), [
    [1, 0, 0],
    [1, 1, 0],
    [1, 1, 1],
  ]);
  const sel = [[0], [0], [0], [1]];
  const m = blockSparseMask(8, 2, sel);
  for (let i = 0; i < 8; i++)
    for (let j = 0; j < 8; j++) {
      const qb = Math.floor(i / 2),
        kb = Math.floor(j / 2);
      const want = j <= i && (kb === qb || sel[qb].includes(kb)) ? 1 : 0;
      assert.equal(m[i][j], want, `mask[${i}][${j}]`);
    }
  assert.equal(m[7][1], 0); // block 3 selected block 1, not block 0
  assert.equal(m[7][2], 1);
  assert.throws(() => blockSparseMask(8, 2, [[0], [0], [3], [1]]), /query block 2 cannot select key block 3/);
  const fig = attentionPattern([
    { title: 'causal', mask: causalMask(4) },
    { title: 'sparse', mask: m },
  ]);
  assert.equal(fig.data.length, 2);
  assert.equal((fig.data[1] as T).xaxis, 'x2');
  assert.equal((fig.layout as T).yaxis.autorange, 'reversed');
});

test('expertLoadHistogram: bars per expert and the uniform-load line at the mean', () => {
  const fig = expertLoadHistogram([10, 30, 20, 40]);
  assert.deepEqual((fig.data[0] as T).y, [10, 30, 20, 40]);
  assert.equal((fig.layout as T).shapes[0].y0, 25);
  assert.throws(
    () =>
      expertLoadHistogram([
        { name: 'a', counts: [1, 2] },
        { name: 'b', counts: [1] },
      ]),
    /series "b" has 1 experts, expected 2/,
  );
});

test('palette: every registry innovation has its own colour; figures are plain JSON', () => {
  const cols = INNOVATIONS.map((i) => innovationColor(i.id));
  assert.equal(new Set(cols).size, cols.length);
  assert.equal(innovationColor('my-variant'), innovationColor('my-variant'));
  const figs = buildAllFigures(demoReportData(1));
  const names = figs.map((f) => f.name);
  assert.equal(new Set(names).size, names.length);
  for (const n of [
    'loss_vs_steps',
    'loss_vs_flops',
    'loss_vs_seconds',
    'ceg_bars_flops',
    'scaling_fits',
    'ceg_vs_compute',
    'paper_vs_ours',
    'expert_load',
    'rope_rotation',
    'attention_patterns',
  ])
    assert.ok(names.includes(n), n);
  for (const f of figs) assert.deepEqual(JSON.parse(JSON.stringify(f.figure)), f.figure);
  assert.deepEqual(demoReportData(1), demoReportData(1)); // seeded
});

test('export: clear error when Chromium is missing', async () => {
  const prev = process.env.CEG_CHROMIUM;
  process.env.CEG_CHROMIUM = '/nonexistent/chromium';
  try {
    await assert.rejects(
      openExporter(),
      (e: Error) => e instanceof ExportError && /apt-get install chromium, or set CEG_CHROMIUM/.test(e.message),
    );
  } finally {
    if (prev === undefined) delete process.env.CEG_CHROMIUM;
    else process.env.CEG_CHROMIUM = prev;
  }
});

test('export: a figure renders to a valid PNG of the asked size and to SVG', {
  skip: chromiumPath() ? false : 'no Chromium (apt-get install chromium, or set CEG_CHROMIUM): export not tested',
}, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'ceg-fig-'));
  try {
    const fig = expertLoadHistogram([3, 1, 2]);
    const written = await exportFigures([{ name: 'load', figure: fig }], dir, {
      formats: ['png', 'svg'],
      width: 400,
      height: 300,
    });
    assert.deepEqual(
      written.map((w) => path.basename(w.file)),
      ['load.png', 'load.svg'],
    );
    const png = await readFile(path.join(dir, 'load.png'));
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.equal(png.subarray(12, 16).toString('ascii'), 'IHDR');
    assert.equal(png.readUInt32BE(16), 400);
    assert.equal(png.readUInt32BE(20), 300);
    assert.ok(png.length > 2000, `png only ${png.length} bytes`);
    const svg = await readFile(path.join(dir, 'load.svg'), 'utf8');
    assert.ok(svg.startsWith('<svg'), svg.slice(0, 40));
    assert.match(svg, /tokens routed/);
    await assert.rejects(exportFigures([{ name: 'a/b', figure: fig }], dir), /plain file stem/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/* ------------------------------------------------------------------ ReportData from a run store */

import { mkdtempSync, rmSync } from 'node:fs';
import { RunStore, type MetricRow } from '../src/runs/index.js';
import { runSpec } from '../src/train/sweep.js';
import { loadReportData, NoRunsError, storedRecords } from '../src/report/from-runs.js';

/** baseline's loss as a function of compute: a power law L(C) = 2 + 10·(C/1e6)^-0.3 */
const Lb = (C: number) => 2 + 10 * Math.pow(C / 1e6, -0.3);
const F = 1e6; // baseline FLOPs per step
const STEPS = Array.from({ length: 11 }, (_, k) => k * 10); // 0, 10, ..., 100

/**
 * Store one completed synthetic run. loss(step) gives the validation loss; flopsPerStep and
 * secPerStep the compute axes; extra(step) extra fields of the metric row (expertLoad).
 */
function storeRun(
  store: RunStore,
  o: {
    innovation: string;
    scale: string;
    seed: number;
    backend?: 'cpu' | 'wasm';
    loss: (step: number) => number;
    flopsPerStep?: number;
    secPerStep?: number;
    steps?: number[];
    state?: 'done' | 'running';
    extra?: (step: number) => Record<string, unknown>;
  },
): void {
  const spec = runSpec(o.innovation, o.scale, o.seed, o.backend ?? 'cpu');
  const run = store.open(spec);
  const rows: MetricRow[] = (o.steps ?? STEPS).map((step) => ({
    step,
    tokens: step * 128,
    flops: step * (o.flopsPerStep ?? F),
    seconds: step * (o.secPerStep ?? 0.5),
    trainLoss: null,
    lr: 1e-3,
    valLoss: o.loss(step),
    ...(o.extra ? o.extra(step) : {}),
  }));
  run.appendMetrics(rows);
  run.setStatus({ state: o.state ?? 'done' });
}

/** loss at step 0 (compute 0): high, above every target */
const at = (f: (step: number) => number) => (step: number) => (step === 0 ? 50 : f(step));

/** Independent reference for an auxiliary CEG (flops): baseline compute to reach `target`, log-interpolated. */
function baselineComputeToReach(target: number): number {
  const pts = STEPS.filter((s) => s > 0).map((s) => ({ C: s * F, L: Lb(s * F) }));
  for (let i = 1; i < pts.length; i++) {
    if (pts[i].L <= target) {
      const t = (pts[i - 1].L - target) / (pts[i - 1].L - pts[i].L);
      return Math.exp(Math.log(pts[i - 1].C) + t * (Math.log(pts[i].C) - Math.log(pts[i - 1].C)));
    }
  }
  throw new Error('never reached');
}

function syntheticStore(root: string): RunStore {
  const store = new RunStore(root);
  for (const seed of [1, 2]) {
    const off = seed === 2 ? 0.01 : 0; // a seed-wide offset: cancels in each seed pair
    // baseline: L_b(C), 0.5 s per step
    storeRun(store, { innovation: 'baseline', scale: 'smoke', seed, loss: at((s) => Lb(s * F) + off) });
    // rope: the baseline's curve with compute halved (same FLOPs per step, twice the loss progress); 1 s per step
    storeRun(store, { innovation: 'rope', scale: 'smoke', seed, loss: at((s) => Lb(2 * s * F) + off), secPerStep: 1 });
    // mqa: the baseline's loss per step at half the FLOPs per step
    storeRun(store, { innovation: 'mqa', scale: 'smoke', seed, loss: at((s) => Lb(s * F) + off), flopsPerStep: F / 2 });
    // sparse: never reaches the baseline's final loss (DNR)
    storeRun(store, { innovation: 'sparse', scale: 'smoke', seed, loss: at((s) => Lb(s * F) + 0.05 + off) });
    // moe: like the baseline, with expert load at each evaluation
    storeRun(store, {
      innovation: 'moe',
      scale: 'smoke',
      seed,
      loss: at((s) => Lb(s * F) + off),
      extra: (s) => ({ expertLoad: [s, 2 * s, 3 * s + seed, 4 * s] }),
    });
    // ignored: another backend, and a run still running
    storeRun(store, { innovation: 'layernorm', scale: 'smoke', seed, backend: 'wasm', loss: at((s) => Lb(s * F)) });
    storeRun(store, { innovation: 'swiglu', scale: 'smoke', seed, state: 'running', loss: at((s) => Lb(s * F)) });
    // ladder: final points on the power law; layernorm = the baseline with compute doubled
    [
      ['smoke-r0', 1e6],
      ['smoke-r1', 1e7],
      ['smoke-r2', 1e8],
    ].forEach(([rung, C]) => {
      const c = C as number;
      const steps = [0, 10];
      storeRun(store, {
        innovation: 'baseline',
        scale: rung as string,
        seed,
        steps,
        flopsPerStep: c / 10,
        loss: at(() => Lb(c)),
      });
      storeRun(store, {
        innovation: 'layernorm',
        scale: rung as string,
        seed,
        steps,
        flopsPerStep: c / 10,
        loss: at(() => Lb(2 * c)),
      });
    });
  }
  return store;
}

test('loadReportData: figures and CEG values from a synthetic run store (no training)', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'ceg-report-runs-'));
  try {
    syntheticStore(root);
    const { data, notes, counts } = loadReportData({ runs: root, scale: 'smoke', backend: 'cpu' });
    assert.equal(counts.runs, 10); // 5 innovations x 2 seeds (wasm and running runs left out)
    assert.equal(counts.ladderRuns, 12);
    assert.deepEqual(notes, []);
    assert.equal(data.scale, 'smoke');
    assert.deepEqual([...new Set(data.runs.map((r) => r.innovation))].sort(), [
      'baseline',
      'moe',
      'mqa',
      'rope',
      'sparse',
    ]);
    assert.equal(
      data.runs.find((r) => r.innovation === 'rope' && r.seed === 2)!.points[3].valLoss,
      Lb(2 * 30 * F) + 0.01,
    );

    const bar = (axis: string, id: string) => data.ceg![axis].find((r) => r.innovation === id)!;
    // rope: the baseline's curve with compute halved -> CEG 2 in FLOPs and steps; 2x slower steps -> 1 in seconds
    close(bar('flops', 'rope').ceg, 2, 1e-9);
    close(bar('steps', 'rope').ceg, 2, 1e-9);
    close(bar('seconds', 'rope').ceg, 1, 1e-9);
    close(bar('flops', 'rope').ci_low!, 2, 1e-9);
    // mqa: same loss per step at half the FLOPs -> 2 in FLOPs, 1 in steps
    close(bar('flops', 'mqa').ceg, 2, 1e-9);
    close(bar('steps', 'mqa').ceg, 1, 1e-9);
    // sparse: DNR; auxiliary CEG at its best loss, against a plain-loop reference
    const sp = bar('flops', 'sparse');
    assert.equal(sp.dnr, true);
    assert.equal(sp.ci_low, undefined);
    close(sp.ceg, baselineComputeToReach(Lb(100 * F) + 0.05) / (100 * F), 1e-9);
    assert.equal(bar('flops', 'moe').category, 'compute-dependent');

    // paper vs ours: the paper's compact numbers (aux for its DNR rows), ours in steps
    const pvo = (id: string) => data.paperVsOurs!.find((r) => r.innovation === id)!;
    assert.equal(pvo('rope').paperCeg, 1.87);
    close(pvo('rope').ourCeg, 2, 1e-9);
    assert.equal(pvo('mqa').paperCeg, 0.673);
    assert.equal(pvo('mqa').paperDnr, true);
    assert.equal(pvo('sparse').ourDnr, true);
    assert.equal(pvo('moe').paperCeg, null);
    assert.equal(pvo('rope').paperCegFull, 1.35);
    assert.equal(pvo('rope').paperFullAdjusted, true);
    assert.equal(pvo('sparse').paperCegFull, 0.964);
    assert.equal(pvo('sparse').paperFullAdjusted, false);

    // MoE: load at the last evaluation (step 100), one series per seed
    assert.deepEqual(data.expertCounts, [
      { name: 'moe seed 1', counts: [100, 200, 301, 400] },
      { name: 'moe seed 2', counts: [100, 200, 302, 400] },
    ]);

    // ladder: fits through the points, CEG(C) of layernorm ~2 at every compute
    assert.deepEqual(data.scaling!.map((s) => s.innovation).sort(), ['baseline', 'layernorm']);
    const ln = data.cegCurves!.find((c) => c.innovation === 'layernorm')!;
    assert.deepEqual(ln.observed, [1e6, 1e8]);
    for (const p of ln.curve.filter((q) => q.C <= 1e8)) close(p.ceg, 2, 0.02);

    const names = buildAllFigures(data).map((f) => f.name);
    assert.deepEqual(names, [
      'loss_vs_steps',
      'loss_vs_flops',
      'loss_vs_seconds',
      'ceg_bars_flops',
      'ceg_bars_steps',
      'ceg_bars_seconds',
      'scaling_fits',
      'ceg_vs_compute',
      'paper_vs_ours',
      'expert_load',
      'rope_rotation',
      'attention_patterns',
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('loadReportData: missing pieces are notes; no runs is a clear error', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'ceg-report-runs-'));
  try {
    assert.throws(
      () => loadReportData({ runs: root, scale: 'smoke', backend: 'cpu' }),
      (e: Error) =>
        e instanceof NoRunsError &&
        e.message.includes(root) &&
        /npm run micro/.test(e.message) &&
        /npx ceg sweep --scale smoke --seeds 3/.test(e.message),
    );
    const store = new RunStore(root);
    storeRun(store, { innovation: 'baseline', scale: 'smoke', seed: 1, loss: at((s) => Lb(s * F)) });
    storeRun(store, { innovation: 'rope', scale: 'smoke', seed: 1, loss: at((s) => Lb(2 * s * F)) });
    // other backend: the error names what the store does hold
    assert.throws(
      () => loadReportData({ runs: root, scale: 'smoke', backend: 'wasm' }),
      /holds completed runs of scale\/backend: smoke\/cpu \(2\)/,
    );
    const { data, notes } = loadReportData({ runs: root, scale: 'smoke', backend: 'cpu' });
    assert.equal(notes.length, 2);
    assert.match(notes[0], /no MoE runs/);
    assert.match(notes[1], /no ladder runs \(smoke-r0\.\.\).*npx ceg ladder --scale smoke/);
    const names = buildAllFigures(data).map((f) => f.name);
    assert.ok(!names.includes('scaling_fits') && !names.includes('expert_load'));
    assert.ok(names.includes('ceg_bars_flops') && names.includes('paper_vs_ours'));
    // a run opened under a second label (same numbers) is listed under that label too
    store.open({ ...runSpec('baseline', 'smoke', 1, 'cpu'), scale: 'smoke-r0' });
    const r0 = storedRecords(store, 'smoke-r0', 'cpu');
    assert.deepEqual(
      r0.map((r) => [r.innovation, r.scale, r.metrics.length]),
      [['baseline', 'smoke-r0', STEPS.length]],
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('scalingSeries/scalingFits: a band spanning the per-seed fits, drawn under the pooled fit', async () => {
  const { scalingSeries } = await import('../src/report/from-runs.js');
  const fit = (E: number, A: number, alpha: number) => ({ E, A, alpha, range: [1e6, 1e9] as [number, number] });
  const pooled = fit(1.5, 100, 0.2);
  const seeds = [fit(1.4, 100, 0.2), fit(1.6, 100, 0.2), fit(1.5, 120, 0.2)];
  const series = scalingSeries([
    {
      innovation: 'baseline',
      points: [{ C: 1e6, L: 3 }],
      fit: pooled as never,
      seedFits: seeds.map((f, i) => ({ seed: i + 1, fit: f as never })),
    },
  ]);
  const s = series[0];
  assert.equal(s.band!.length, s.curve.length);
  for (const b of s.band!) {
    const ys = seeds.map((f) => f.E + f.A * Math.pow(b.C, -f.alpha)); // L = E + A·C^(−α), written out
    assert.equal(b.lo, Math.min(...ys));
    assert.equal(b.hi, Math.max(...ys));
  }
  const fig = scalingFits(series);
  assert.equal((fig.data[0] as T).fill, 'toself', 'band first, under the lines');
  assert.match(JSON.stringify(fig.layout), /band: range of the fits to each seed alone/);
  // one seed: no band
  const one = scalingSeries([
    { innovation: 'baseline', points: [], fit: pooled as never, seedFits: [{ seed: 1, fit: seeds[0] as never }] },
  ]);
  assert.equal(one[0].band, undefined);
});
