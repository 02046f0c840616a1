/** The cost-growth fit of bench/figure.ts (fixed per-step overhead + FLOPs at a rate). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitOverhead, costGrowthFigure } from '../bench/figure.js';

test('fitOverhead recovers the overhead and rate of ms = a + flops / rate', () => {
  const a = 3.5,
    gflops = 42; // ms, GFLOP/s
  const pts = [7.6e7, 2.3e8, 6.6e8, 3.6e9, 5.3e9].map((flops) => ({ flops, ms: a + flops / (gflops * 1e6) }));
  const fit = fitOverhead(pts);
  assert.ok(Math.abs(fit.overheadMs - a) < 1e-6, `overhead ${fit.overheadMs}`);
  assert.ok(Math.abs(fit.gflops - gflops) < 1e-6, `rate ${fit.gflops}`);
  // pure overhead (ms independent of FLOPs) is not mistaken for compute
  const flat = fitOverhead([1e8, 1e9, 1e10].map((flops) => ({ flops, ms: 10 })));
  assert.ok(Math.abs(flat.overheadMs - 10) < 1e-9 && !(Math.abs(flat.gflops) < 1e6), `flat: ${JSON.stringify(flat)}`);
});

test('the figure has one line per framework from the single-process cells, log-log', () => {
  const side = (ms: number) => ({
    tokensPerSec: 1,
    msPerStep: ms,
    gflops: 1,
    blockTokensPerSec: [1],
    steps: 2,
    lastLoss: 4,
    engine: 'x',
    kernels: 'y',
  });
  const cell = (config: string, flops: number, procs: number, ours: number, torch: number) => ({
    config,
    procs,
    params: 1,
    flopsPerStep: flops,
    tokensPerStep: 1024,
    ours: side(ours),
    torch: side(torch),
    ratios: [1],
    load: [1],
  });
  const fig = costGrowthFigure([cell('b', 2e9, 1, 40, 50), cell('a', 1e8, 1, 5, 8), cell('a', 1e8, 2, 99, 99)], 'test');
  const lines = fig.data.filter((d) => d.mode === 'lines+markers+text');
  assert.equal(lines.length, 2);
  assert.deepEqual(lines[0].x, [1e8, 2e9]);
  assert.deepEqual(lines[0].y, [5, 40]);
  assert.deepEqual(lines[1].y, [8, 50]);
  assert.equal((fig.layout.xaxis as { type: string }).type, 'log');
  assert.equal((fig.layout.yaxis as { type: string }).type, 'log');
});

test('the CPU-time figure plots cpuMsPerStep and leaves out cells without it', () => {
  const side = (ms: number, cpu?: number) => ({
    tokensPerSec: 1,
    msPerStep: ms,
    cpuMsPerStep: cpu,
    gflops: 1,
    blockTokensPerSec: [1],
    steps: 2,
    lastLoss: 4,
    engine: 'x',
    kernels: 'y',
  });
  const cell = (config: string, flops: number, ours: [number, number?], torch: [number, number?]) => ({
    config,
    procs: 1,
    params: 1,
    flopsPerStep: flops,
    tokensPerStep: 1024,
    ours: side(...ours),
    torch: side(...torch),
    ratios: [1],
    load: [1],
  });
  const cells = [
    cell('a', 1e8, [50, 5], [80, 8]),
    cell('b', 2e9, [400, 40], [500, 50]),
    cell('old', 3e9, [900], [900]),
  ];
  const lines = costGrowthFigure(cells, 't', 'cpu').data.filter((d) => d.mode === 'lines+markers+text');
  assert.deepEqual(lines[0].y, [5, 40]);
  assert.deepEqual(lines[1].y, [8, 50]);
  assert.deepEqual(
    costGrowthFigure(cells, 't').data.filter((d) => d.mode === 'lines+markers+text')[0].y,
    [50, 400, 900],
  );
});
