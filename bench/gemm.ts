/**
 * Our AVX-512 SGEMM against the system OpenBLAS's cblas_sgemm (both from the native addon, one
 * thread), per matrix-product shape that a training step of each config actually calls.
 *
 *   npx tsx bench/gemm.ts [--configs A,n11k,...] [--rounds 7] [--block-ms 30]
 *
 * For each config: one training step with the addon's matmul wrapped records the products
 * (batch, M, N, K, transposes, calls per step); then each shape is timed with ours and with
 * OpenBLAS in alternating blocks (`rounds` pairs of ~block-ms each), median per call. Prints a
 * table per shape and, per config, the step's matmul time with ours everywhere, OpenBLAS
 * everywhere and the best choice per shape (what a per-shape rule could at most gain). Writes bench/results/<date>-gemm.json.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFlags, commandUsage, reportUsageError, type CommandSpec } from '../src/cli/args.js';
import { alignColumns } from '../src/ceg/tables.js';
import { writeJsonAtomic } from '../src/fsx.js';
import { initEngine } from '../src/engine/index.js';
import { loadNative, blasStatus } from '../src/engine/native.js';
import { benchConfig, rungNames } from './configs.js';
import { makeStep } from './real-step.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const spec = {
  summary: 'per-shape matmul benchmark: our SGEMM vs the system OpenBLAS, one thread, interleaved',
  flags: {
    configs: { type: 'list', help: 'configs whose products to time (default: A = micro and the cpu plan rungs)' },
    rounds: { type: 'int', default: 7, min: 1, help: 'pairs of blocks (ours, OpenBLAS) per shape' },
    blockMs: { type: 'int', default: 30, min: 1, help: 'target length of one block in ms' },
    out: { type: 'string', help: 'JSON results file (default bench/results/<date>-gemm.json)' },
  },
} as const satisfies CommandSpec;

let parsed;
try {
  parsed = parseFlags(process.argv.slice(2), spec, 'gemm');
} catch (e) {
  process.exit(reportUsageError(e));
}
if (parsed.help) {
  console.log(commandUsage('gemm', spec).replace('ceg gemm', 'npx tsx bench/gemm.ts'));
  process.exit(0);
}
const flags = parsed.flags;

await initEngine({ backend: 'wasm' });
const addon = loadNative();
if (!addon) throw new Error('the native addon is not loaded: npm run build:native');
const blas = blasStatus();
if (!addon.blasConfig()) throw new Error(`no OpenBLAS: ${blas}`);
process.stderr.write(`[gemm] ${blas}; load ${os.loadavg()[0].toFixed(2)}\n`);

interface Shape {
  batch: number;
  M: number;
  N: number;
  K: number;
  tA: boolean;
  tB: boolean;
  calls: number;
}
const key = (s: Omit<Shape, 'calls'>) => `${s.batch}x${s.M}x${s.N}x${s.K}${s.tA ? 'T' : 'N'}${s.tB ? 'T' : 'N'}`;

function shapesOf(config: string): Shape[] {
  const seen = new Map<string, Shape>();
  const orig = addon!.matmul;
  const { step, dispose } = makeStep(benchConfig(config), 1);
  step(); // warm: the recorded step below sees the steady state
  addon!.matmul = (heap, a, b, c, batch, M, N, K, tA, tB, sA, sB) => {
    const s = { batch, M, N, K, tA: !!tA, tB: !!tB };
    const k = key(s);
    const e = seen.get(k) ?? { ...s, calls: 0 };
    e.calls++;
    seen.set(k, e);
    return orig.call(addon, heap, a, b, c, batch, M, N, K, tA, tB, sA, sB);
  };
  try {
    step();
  } finally {
    addon!.matmul = orig;
    dispose();
  }
  return [...seen.values()];
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/** microseconds per call of `s` in each gemm mode (0 ours, 1 OpenBLAS), interleaved blocks */
function timeShape(s: Shape): { ours: number; blas: number } {
  const a = new Float32Array(s.batch * s.M * s.K).map((_, i) => ((i * 7919) % 101) / 101 - 0.5);
  const b = new Float32Array(s.batch * s.K * s.N).map((_, i) => ((i * 104729) % 97) / 97 - 0.5);
  const heap = new Float32Array(a.length + b.length + s.batch * s.M * s.N);
  heap.set(a, 0);
  heap.set(b, a.length);
  const run = (mode: 0 | 1, n: number) => {
    addon!.setGemm(mode);
    const t0 = performance.now();
    for (let i = 0; i < n; i++)
      addon!.matmul(heap, 0, a.length, a.length + b.length, s.batch, s.M, s.N, s.K, s.tA, s.tB, s.M * s.K, s.K * s.N);
    return ((performance.now() - t0) * 1000) / n;
  };
  run(0, 2);
  run(1, 2);
  const per = Math.max(run(0, 3), run(1, 3));
  const n = Math.max(1, Math.round((flags.blockMs * 1000) / per));
  const ours: number[] = [];
  const bl: number[] = [];
  for (let r = 0; r < flags.rounds; r++) {
    if (r % 2 === 0) {
      ours.push(run(0, n));
      bl.push(run(1, n));
    } else {
      bl.push(run(1, n));
      ours.push(run(0, n));
    }
  }
  return { ours: median(ours), blas: median(bl) };
}

const configs = flags.configs.length ? flags.configs : ['A', ...rungNames()];
const results: unknown[] = [];
const summary: string[][] = [['config', 'matmul ms/step: ours', 'OpenBLAS', 'best per shape', 'OpenBLAS/ours']];
for (const config of configs) {
  const shapes = shapesOf(config);
  const rows: string[][] = [
    [
      'shape (batch x M x N x K, op)',
      'calls/step',
      'ours us',
      'OpenBLAS us',
      'OpenBLAS/ours',
      'ours GFLOP/s',
      'OpenBLAS GFLOP/s',
    ],
  ];
  let tOurs = 0,
    tBlas = 0,
    tBest = 0;
  const timed = [];
  for (const s of shapes) {
    const t = timeShape(s);
    const flop = 2 * s.batch * s.M * s.N * s.K;
    tOurs += t.ours * s.calls;
    tBlas += t.blas * s.calls;
    tBest += Math.min(t.ours, t.blas) * s.calls;
    timed.push({ ...s, oursUs: t.ours, blasUs: t.blas });
    rows.push([
      key(s),
      String(s.calls),
      t.ours.toFixed(1),
      t.blas.toFixed(1),
      (t.blas / t.ours).toFixed(2),
      (flop / t.ours / 1e3).toFixed(1),
      (flop / t.blas / 1e3).toFixed(1),
    ]);
  }
  console.log(`\n${config}:`);
  console.log(alignColumns(rows[0], rows.slice(1)));
  summary.push([
    config,
    (tOurs / 1e3).toFixed(2),
    (tBlas / 1e3).toFixed(2),
    (tBest / 1e3).toFixed(2),
    (tBlas / tOurs).toFixed(2),
  ]);
  results.push({ config, shapes: timed, msPerStep: { ours: tOurs / 1e3, blas: tBlas / 1e3, best: tBest / 1e3 } });
}
addon.setGemm(1);
console.log('\n' + alignColumns(summary[0], summary.slice(1)));
const out = flags.out ?? path.join(here, 'results', `${new Date().toISOString().slice(0, 10)}-gemm.json`);
writeJsonAtomic(out, {
  date: new Date().toISOString(),
  blas,
  load: os.loadavg()[0],
  rounds: flags.rounds,
  blockMs: flags.blockMs,
  results,
});
process.stderr.write(`[gemm] wrote ${path.relative(process.cwd(), out)}; load ${os.loadavg()[0].toFixed(2)}\n`);
process.exit(0);
