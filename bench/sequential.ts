/**
 * `tsx bench/sequential.ts` (the round-2 bench, cell after cell; `npm run bench` is now the
 * interleaved bench/bench.ts): one full training step (forward, backward, grad clip, AdamW) of a small
 * GPT at config A (the micro scale) and B (GPT-2 vocabulary), on each CPU backend, against
 * the same step in PyTorch (Debian's python3-torch with OpenBLAS, 1 and 2 threads).
 * Prints ms/step (median after warm-up), tokens/s, GFLOP/s, % of the CPU's fp32 peak, and
 * our tokens/s as a ratio of PyTorch's; writes bench/results/<date>-cpu.json.
 *
 * Flags: --steps N (default 10)  --warmup N (3)  --configs A,B  --profile (top kernels)
 *        --before (also wasm without the native addon, CEG_NATIVE=0, and the shipped kernels,
 *        CEG_KERNELS=stock)  --no-torch  --no-cpu  --out FILE (default bench/results/<date>-cpu.json)
 * Ours runs single-threaded wasm (one process per core is how sweeps use a machine).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchConfig, stepFlops, type BenchConfig, type BenchConfigName } from './configs.js';
import { cpuPeak } from './peak.js';
import { readEnv } from '../src/env.js';
import { parseScriptArgs, type CommandSpec } from '../src/cli/args.js';
import { alignColumns } from '../src/ceg/tables.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);
const spec = {
  summary: 'the round-2 bench, cell after cell: one training step per config and backend against PyTorch',
  flags: {
    steps: { type: 'int', default: 10, min: 1, help: 'timed steps per cell' },
    warmup: { type: 'int', default: 3, min: 0, help: 'warm-up steps per cell' },
    configs: { type: 'list', default: ['A', 'B'], help: 'bench configs (bench/configs.ts)' },
    profile: { type: 'bool', help: 'top kernels per cell' },
    before: { type: 'bool', help: 'also the older kernel sets (CEG_NATIVE=0, CEG_KERNELS=stock)' },
    noTorch: { type: 'bool', help: 'ours only' },
    noCpu: { type: 'bool', help: 'skip the pure-JS cpu backend' },
    out: { type: 'string', help: 'results file (default bench/results/<date>-cpu.json)' },
  },
} as const satisfies CommandSpec;
const { flags } = parseScriptArgs('npx tsx bench/sequential.ts', spec);
const has = (f: 'profile' | 'before' | 'noTorch' | 'noCpu') => flags[f];
const { steps, warmup } = flags;
const configNames = flags.configs as BenchConfigName[];
const PY = '/usr/bin/python3';

interface Cell {
  engine: string;
  backend: string;
  threads: number;
  kernels?: string;
  config: string;
  msPerStep: number;
  tokensPerSec: number;
  gflops: number;
  pctPeak: number;
  vsTorch1?: number;
  vsTorchBest?: number;
  firstLoss?: number;
  lastLoss?: number;
  error?: string;
  /** 1-minute load average when the cell started */
  load?: number;
  profile?: {
    top: { kernel: string; shapes: string; calls: number; ms: number }[];
    byKernel: { kernel: string; calls: number; ms: number }[];
  };
}

const peak = cpuPeak();
const configs = Object.fromEntries(configNames.map((n) => [n, benchConfig(n)])) as Record<BenchConfigName, BenchConfig>;
const cells: Cell[] = [];
const log = (s: string) => process.stderr.write(s + '\n');

function finish(c: BenchConfig, raw: Record<string, unknown>, extra: Partial<Cell>): Cell {
  const ms = raw.msPerStep as number;
  const tokens = c.batchSize * c.blockSize;
  const gflops = stepFlops(c) / ms / 1e6;
  const threads = (extra.threads ?? 1) as number;
  return {
    engine: String(raw.engine),
    backend: '',
    threads,
    config: c.name,
    msPerStep: ms,
    tokensPerSec: (tokens / ms) * 1000,
    gflops,
    pctPeak: (100 * gflops) / (Math.min(threads, peak.cores) * peak.perCoreGflops),
    firstLoss: raw.firstLoss as number,
    lastLoss: raw.lastLoss as number,
    ...extra,
  };
}

type Variant = 'default' | 'nonative' | 'stock';
function runTfjs(c: BenchConfig, backend: string, threads: number, variant: Variant, n: number, w: number): void {
  const stock = variant === 'stock';
  const load = os.loadavg()[0];
  const label = `tfjs ${backend} ${threads}t ${variant === 'default' ? '' : variant + ' '}${c.name}`;
  log(`[bench] ${label} (${n} steps after ${w} warm-up)...`);
  const args = [
    '--import',
    'tsx',
    path.join(here, 'run-one.ts'),
    '--backend',
    backend,
    '--config',
    c.name,
    '--steps',
    String(n),
    '--warmup',
    String(w),
    ...(has('profile') ? ['--profile'] : []),
  ];
  const env = {
    ...process.env,
    CEG_KERNELS: stock ? 'stock' : '',
    CEG_NATIVE: variant === 'nonative' ? '0' : (readEnv('CEG_NATIVE') ?? ''),
  };
  const r = spawnSync(process.execPath, args, { cwd: root, env, encoding: 'utf8', timeout: 20 * 60_000 });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) {
    const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(-3).join(' | ');
    log(`[bench] ${label} failed: ${why}`);
    cells.push({
      engine: 'tfjs',
      backend,
      threads,
      config: c.name,
      msPerStep: NaN,
      tokensPerSec: NaN,
      gflops: NaN,
      pctPeak: NaN,
      error: why,
    });
    return;
  }
  const raw = JSON.parse(line.slice(7));
  cells.push(finish(c, raw, { backend, threads: raw.threads, kernels: raw.kernels, profile: raw.profile, load }));
}

function ensureTorch(): boolean {
  const ok = () => spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
  if (ok()) return true;
  log(
    '[bench] PyTorch reference missing: installing Debian python3-torch and libopenblas0-pthread (apt-get; needs root)...',
  );
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  for (const cmd of [
    ['apt-get', 'update'],
    ['apt-get', 'install', '-y', 'python3-torch', 'libopenblas0-pthread'],
  ]) {
    const full = [...sudo, ...cmd];
    const r = spawnSync(full[0], full.slice(1), {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (r.status !== 0) {
      log(`[bench] "${full.join(' ')}" failed; skipping the PyTorch reference`);
      return false;
    }
  }
  return ok();
}

function runTorch(c: BenchConfig, threads: number): void {
  const load = os.loadavg()[0];
  log(`[bench] torch ${threads}t ${c.name}...`);
  const r = spawnSync(
    PY,
    [
      path.join(here, 'torch_step.py'),
      '--config',
      JSON.stringify(c),
      '--threads',
      String(threads),
      '--steps',
      String(steps),
      '--warmup',
      String(warmup),
    ],
    { encoding: 'utf8', timeout: 20 * 60_000 },
  );
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !line.startsWith('{')) {
    log(`[bench] torch ${threads}t ${c.name} failed: ${(r.stderr || '').trim().split('\n').slice(-2).join(' | ')}`);
    return;
  }
  const raw = JSON.parse(line);
  cells.push(finish(c, raw, { backend: `torch ${raw.torchVersion}`, threads, load }));
}

const loadAvg: number[][] = [os.loadavg()];
const torchOk = !has('noTorch') && ensureTorch();
for (const name of configNames) {
  const c = configs[name];
  if (torchOk) for (const t of [1, 2]) runTorch(c, t);
  runTfjs(c, 'wasm', 1, 'default', steps, warmup);
  if (has('before')) {
    runTfjs(c, 'wasm', 1, 'nonative', steps, warmup);
    runTfjs(c, 'wasm', 1, 'stock', Math.min(steps, 3), 1);
  }
  if (name === 'A' && !has('noCpu')) runTfjs(c, 'cpu', 1, 'default', 2, 1);
}

loadAvg.push(os.loadavg());

// ratios to PyTorch (same config): 1-thread torch and the best torch
for (const cell of cells) {
  const torch = cells.filter((t) => t.engine === 'torch' && t.config === cell.config);
  const t1 = torch.find((t) => t.threads === 1);
  if (t1) cell.vsTorch1 = cell.tokensPerSec / t1.tokensPerSec;
  if (torch.length) cell.vsTorchBest = cell.tokensPerSec / Math.max(...torch.map((t) => t.tokensPerSec));
}

const f = (x: number | undefined, d = 1) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));
const rows = [
  [
    'config',
    'engine',
    'backend',
    'thr',
    'ms/step',
    'tokens/s',
    'GFLOP/s',
    '% peak',
    'x torch1',
    'x best torch',
    'load',
    'loss 1st→last',
  ],
];
for (const c of cells) {
  rows.push([
    c.config,
    c.engine,
    c.backend + (c.kernels ? ` (${c.kernels})` : ''),
    String(c.threads),
    f(c.msPerStep, 0),
    f(c.tokensPerSec, 0),
    f(c.gflops),
    f(c.pctPeak),
    f(c.vsTorch1, 2),
    f(c.vsTorchBest, 2),
    f(c.load, 2),
    c.error ? `ERROR ${c.error.slice(0, 60)}` : `${f(c.firstLoss, 3)}→${f(c.lastLoss, 3)}`,
  ]);
}
console.log(alignColumns(rows[0], rows.slice(1)));
console.log(
  `\nFLOPs/step: ${configNames.map((n) => `${n} ${(stepFlops(configs[n]) / 1e9).toFixed(2)} G`).join(', ')} (src/model/flops.ts: matmuls only, causal attention, backward = 2x forward)`,
);
console.log(
  `CPU: ${peak.model}, ${peak.cores} cores; peak assumed ${peak.perCoreGflops.toFixed(0)} GFLOP/s per core (${peak.assumption}); % peak uses min(threads, cores) cores`,
);
console.log(
  `load average (1, 5, 15 min) at start ${loadAvg[0].map((x) => x.toFixed(2)).join(' ')}, at end ${loadAvg[1].map((x) => x.toFixed(2)).join(' ')}`,
);
console.log(`median of ${steps} steps after ${warmup} warm-up (cpu backend: 2 steps after 1)`);

if (has('profile')) {
  for (const c of cells.filter((x) => x.profile)) {
    console.log(
      `\nprofile: ${c.engine} ${c.backend} ${c.threads}t ${c.kernels ?? ''} config ${c.config}: ms per step by kernel`,
    );
    for (const k of c.profile!.byKernel.slice(0, 10))
      console.log(
        `  ${k.kernel.padEnd(22)} ${k.ms.toFixed(1).padStart(8)} ms  ${k.calls.toFixed(0).padStart(5)} calls`,
      );
    console.log('  top (kernel, shapes):');
    for (const k of c.profile!.top.slice(0, 12))
      console.log(`  ${k.ms.toFixed(1).padStart(8)} ms  ${k.kernel} ${k.shapes}`);
  }
}

const date = new Date().toISOString().slice(0, 10);
mkdirSync(path.join(here, 'results'), { recursive: true });
const file = path.resolve(root, flags.out ?? path.join('bench', 'results', `${date}-cpu.json`));
writeFileSync(
  file,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      node: process.version,
      cpu: peak,
      steps,
      warmup,
      configs: Object.fromEntries(configNames.map((n) => [n, { ...configs[n], flopsPerStep: stepFlops(configs[n]) }])),
      load: loadAvg,
      cells,
    },
    null,
    2,
  ),
);
console.log(`\nwrote ${path.relative(root, file)}`);
