/**
 * Synthetic report data (seeded) so the figures can be built and looked at before any run
 * exists: `npm run figures -- --demo`. Numbers are made up around the paper's compact CEGs;
 * nothing here is a result.
 */
import type { ReportData } from './all.js';
import type { CegBar, MetricPoint, LossCurve } from './types.js';
import { getInnovation } from '../innovations.js';
import { mulberry32 } from '../ceg/random.js';
import { PUBLISHED, publishedCeg, restsOnAdjustment } from '../ceg/published.js';

export { mulberry32 };

/** demo variants: id -> (speed-up in effective compute, FLOPs per step relative to baseline) */
const DEMO: Record<string, { gain: number; flops: number }> = {
  baseline: { gain: 1, flops: 1 },
  fused: { gain: 1.0, flops: 1 },
  rope: { gain: 1.7, flops: 1.01 },
  layernorm: { gain: 1.6, flops: 1.005 },
  fa_rope_ln: { gain: 2.6, flops: 1.015 },
  mqa: { gain: 0.85, flops: 0.9 },
  sparse: { gain: 0.7, flops: 0.8 },
  moe: { gain: 1.3, flops: 1.1 },
};

export function demoReportData(seed = 1): ReportData {
  const rand = mulberry32(seed);
  const E = 1.6,
    A = 9,
    alpha = 0.32;
  const stepFlops = 2.4e11;
  const runs: LossCurve[] = [];
  for (const [id, v] of Object.entries(DEMO)) {
    for (const s of [0, 1, 2]) {
      const points: MetricPoint[] = [];
      const secPerStep = (id === 'fused' ? 0.6 : 0.9) * v.flops * (1 + 0.05 * rand());
      for (let step = 50; step <= 3000; step += 50) {
        const eff = step * stepFlops * v.gain;
        const valLoss = E + A * Math.pow(eff / 1e11, -alpha) + 0.02 * (rand() - 0.5) + 0.01 * s;
        points.push({
          step,
          tokens: step * 16384,
          flops: step * stepFlops * v.flops,
          seconds: step * secPerStep,
          valLoss,
          trainLoss: valLoss - 0.03,
          lr: 6e-4,
        });
      }
      runs.push({ innovation: id, seed: s, points });
    }
  }
  const cegRows: CegBar[] = Object.entries(DEMO)
    .filter(([id]) => id !== 'baseline')
    .map(([id, v]) => {
      const ceg = v.gain / v.flops;
      const w = 0.08 + 0.1 * rand();
      return {
        innovation: id,
        category: getInnovation(id).category,
        ceg,
        ci_low: ceg * (1 - w),
        ci_high: ceg * (1 + w),
        dnr: id === 'sparse',
      };
    });
  const Cs = [1e14, 3e14, 1e15, 3e15, 1e16];
  const grid = Array.from({ length: 41 }, (_, k) => 1e13 * Math.pow(10, (k * 5) / 40));
  const fit = (a: number, g: number) => (C: number) => E + A * Math.pow((g * C) / 1e11, -a);
  const variants: [string, number, number][] = [
    ['baseline', alpha, 1],
    ['rope', alpha, 1.7],
    ['mqa', alpha + 0.03, 0.6],
    ['moe', alpha + 0.05, 0.9],
  ];
  const scaling = variants.map(([id, a, g]) => ({
    innovation: id,
    points: Cs.map((C) => ({ C, L: fit(a, g)(C) * (1 + 0.01 * (rand() - 0.5)) })),
    curve: grid.map((C) => ({ C, L: fit(a, g)(C) })),
  }));
  // CEG(C) for variant: baseline compute to reach the variant's loss at C, divided by C
  const cegCurves = variants.slice(1).map(([id, a, g]) => ({
    innovation: id,
    observed: [Cs[0], Cs[Cs.length - 1]] as [number, number],
    curve: grid.map((C) => {
      const L = fit(a, g)(C);
      const Cb = 1e11 * Math.pow((L - E) / A, -1 / alpha);
      return { C, ceg: Cb / C };
    }),
  }));
  // the paper's published CEGs, both scales (auxiliary CEG where DNR), from src/ceg/published.ts
  const paperVsOurs = [
    ...PUBLISHED.compact
      .filter((p) => p.innovation !== 'baseline')
      .map((p) => {
        const r = cegRows.find((x) => x.innovation === p.innovation)!;
        const f = PUBLISHED.full.find((x) => x.innovation === p.innovation);
        return {
          innovation: p.innovation,
          paperCeg: publishedCeg(p),
          paperDnr: p.dnr,
          paperCegFull: publishedCeg(f),
          paperFullDnr: f?.dnr ?? false,
          paperFullAdjusted: restsOnAdjustment('full', p.innovation),
          ourCeg: r.ceg,
          ci_low: r.ci_low,
          ci_high: r.ci_high,
        };
      }),
    { innovation: 'moe', paperCeg: null, ourCeg: 1.2 },
  ];
  return {
    scale: 'demo',
    runs,
    smooth: 8,
    ceg: { flops: cegRows },
    scaling,
    cegCurves,
    paperVsOurs,
    paperVsOursAxis: 'flops',
    expertCounts: [5120, 3890, 4410, 2960].map((c) => Math.round(c * (0.95 + 0.1 * rand()))),
  };
}
