/**
 * `npm run bench`: our training step against PyTorch's, INTERLEAVED, at micro (config A) and at
 * every rung of the CPU study plan (bench/configs.ts reads them from src/plans.ts).
 *
 * Why interleaved: this 2-core machine is shared, and its load swings by several x within a
 * minute; timing ours and then PyTorch's measures the load as much as the code. Here both run as
 * long-lived workers (bench/worker.ts, bench/torch_step.py --serve) that build the model and warm
 * up once (then one 3-step calibration block each sets the steps per block, the same wall time
 * for both), then the bench alternates short blocks of steps, ours then PyTorch's then PyTorch's
 * then ours ..., so each pair of blocks sees the same load. Per pair it computes ours/PyTorch's
 * tokens/s; it reports the median ratio over pairs with its interquartile spread, and the load
 * average. Single-process (one worker per framework, both single-threaded) and 2-process (two
 * workers per framework running at once, one thread each: how sweeps use the 2 cores).
 *
 * The step is the trainer's (bench/real-step.ts: gptLoss, variableGrads, clip, AdamW); PyTorch's
 * is the same model (bench/torch_step.py: Debian python3-torch 1.13 + OpenBLAS, installed by the
 * bench if missing). FLOPs/step from src/model/flops.ts. Writes bench/results/<date>-interleaved.json
 * (the input of bench/figure.ts, the cost-growth figure).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseFlags, commandUsage, reportUsageError, UsageError, type CommandSpec } from '../src/cli/args.js';
import { alignColumns } from '../src/ceg/tables.js';
import { writeJsonAtomic } from '../src/fsx.js';
import { benchConfigs, benchParams, cpuPlan, rungNames, stepFlops, type BenchConfig } from './configs.js';
import { cpuPeak } from './peak.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);
const PY = '/usr/bin/python3';

const spec = {
  summary: 'interleaved ours-vs-PyTorch training-step benchmark (micro and every CPU study rung)',
  flags: {
    configs: { type: 'list', help: `configs to run (default: A = micro, then the cpu plan's rungs); also A16, B` },
    procs: {
      type: 'list',
      of: 'int',
      default: [1, 2],
      min: 1,
      max: 2,
      help: 'processes per framework: 1 (single-process) and/or 2 (both cores)',
    },
    blocks: { type: 'int', default: 7, min: 2, help: 'pairs of blocks (ours, PyTorch) per config and process count' },
    blockMs: {
      type: 'int',
      default: 600,
      min: 50,
      help: 'target length of one block in ms (steps per block from a 3-step calibration block)',
    },
    warmup: { type: 'int', default: 3, min: 1, help: 'warm-up steps per worker (not timed)' },
    noTorch: { type: 'bool', default: false, help: 'ours only (no ratio)' },
    out: { type: 'string', help: 'JSON results file (default bench/results/<date>-interleaved.json)' },
  },
} as const satisfies CommandSpec;

let parsed;
try {
  parsed = parseFlags(process.argv.slice(2), spec, 'bench');
} catch (e) {
  process.exit(reportUsageError(e));
}
if (parsed.help) {
  console.log(commandUsage('bench', spec).replace('ceg bench', 'npm run bench --'));
  process.exit(0);
}
const flags = parsed.flags;
const all = benchConfigs();
const configNames = flags.configs.length ? flags.configs : ['A', ...rungNames()];
for (const n of configNames)
  if (!(n in all))
    process.exit(
      reportUsageError(new UsageError(`unknown bench config "${n}"; valid: ${Object.keys(all).join(', ')}`)),
    );
const procs = [...new Set(flags.procs)].sort();
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

/** A worker process speaking the READY / run N / BLOCK protocol. */
class Worker {
  private lines: string[] = [];
  private waiting: ((l: string | null) => void) | null = null;
  private closed = false;
  private stderr = '';
  constructor(
    readonly label: string,
    private readonly child: ChildProcessWithoutNullStreams,
  ) {
    createInterface({ input: child.stdout }).on('line', (l) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(l);
      } else this.lines.push(l);
    });
    child.stderr.on('data', (d) => (this.stderr = (this.stderr + String(d)).slice(-2000)));
    child.on('close', () => {
      this.closed = true;
      this.waiting?.(null);
    });
  }
  private next(): Promise<string | null> {
    if (this.lines.length) return Promise.resolve(this.lines.shift()!);
    if (this.closed) return Promise.resolve(null);
    return new Promise((r) => (this.waiting = r));
  }
  /** the next line starting with `tag`, parsed; throws with the worker's stderr if it died or stayed silent for 10 minutes */
  async expect<T>(tag: string): Promise<T> {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const silent = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 10 * 60_000)));
      const l = await Promise.race([this.next(), silent]);
      clearTimeout(timer);
      if (l === 'timeout') {
        this.child.kill();
        throw new Error(`${this.label}: no ${tag} line for 10 minutes; stopped it`);
      }
      if (l === null) throw new Error(`${this.label} exited: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      if (l.startsWith(tag + ' ')) return JSON.parse(l.slice(tag.length + 1)) as T;
    }
  }
  send(s: string): void {
    this.child.stdin.write(s + '\n');
  }
  quit(): void {
    if (!this.closed) this.child.stdin.end('quit\n');
  }
}

interface Ready {
  engine: string;
  kernels: string;
  warmupMs: number[];
}
interface Block {
  ms: number[];
  cpuMs?: number[];
  loss: number;
}

function startOurs(c: BenchConfig, seed: number): Worker {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(here, 'worker.ts'),
      '--config',
      c.name,
      '--warmup',
      String(flags.warmup),
      '--seed',
      String(seed),
    ],
    { cwd: root, env: { ...process.env, CEG_KERNELS: '' } },
  );
  return new Worker(`ours ${c.name}`, child);
}

function startTorch(c: BenchConfig): Worker {
  const flat = {
    vocabSize: c.vocabSize,
    blockSize: c.blockSize,
    nLayer: c.nLayer,
    nHead: c.nHead,
    nEmbd: c.nEmbd,
    batchSize: c.batchSize,
  };
  const child = spawn(
    PY,
    [
      path.join(here, 'torch_step.py'),
      '--config',
      JSON.stringify(flat),
      '--threads',
      '1',
      '--warmup',
      String(flags.warmup),
      '--serve',
    ],
    { cwd: root, env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' } },
  );
  return new Worker(`torch ${c.name}`, child);
}

/** PyTorch importable and multiplying with OpenBLAS (the reference BLAS makes the comparison meaningless); installs both if missing. */
function ensureTorch(): boolean {
  const probe =
    "import torch; torch.ones(64, 64) @ torch.ones(64, 64); print('openblas' in open('/proc/self/maps').read())";
  const ok = () => spawnSync(PY, ['-c', probe], { encoding: 'utf8' }).stdout?.trim() === 'True';
  if (ok()) return true;
  log(
    'PyTorch with OpenBLAS missing: installing Debian python3-torch and libopenblas0-pthread (apt-get; needs root)...',
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
      log(`"${full.join(' ')}" failed; running ours only`);
      return false;
    }
  }
  if (!ok()) log('PyTorch still not using OpenBLAS after the install; running ours only');
  return ok();
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/** linear-interpolated quantile */
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  const i = q * (s.length - 1);
  const lo = Math.floor(i);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (i - lo);
};

export interface Side {
  tokensPerSec: number;
  msPerStep: number /** median over blocks of the median CPU ms per step (process CPU time) */;
  cpuMsPerStep?: number;
  gflops: number;
  blockTokensPerSec: number[];
  steps: number;
  lastLoss: number;
  engine: string;
  kernels: string;
}
export interface Cell {
  config: string;
  procs: number;
  params: number;
  flopsPerStep: number;
  tokensPerStep: number;
  ours?: Side;
  torch?: Side;
  /** ours/PyTorch tokens/s per pair of blocks */
  ratios: number[];
  ratio?: { median: number; q25: number; q75: number; min: number; max: number };
  /** PyTorch's CPU ms per step / ours, per pair of blocks (process CPU time) */
  cpuRatio?: { median: number; q25: number; q75: number; min: number; max: number };
  load: number[];
  error?: string;
}

/** Run `steps` steps on each of `ws` at once; per-process tokens/s summed, and all step times. */
async function block(
  ws: Worker[],
  steps: number,
  tokens: number,
): Promise<{ tps: number; ms: number[]; cpuMs: number[]; loss: number }> {
  for (const w of ws) w.send(`run ${steps}`);
  const bs = await Promise.all(ws.map((w) => w.expect<Block>('BLOCK')));
  const tps = bs.reduce((s, b) => s + (steps * tokens * 1000) / b.ms.reduce((a, x) => a + x, 0), 0);
  return { tps, ms: bs.flatMap((b) => b.ms), cpuMs: bs.flatMap((b) => b.cpuMs ?? []), loss: bs[0].loss };
}

async function runConfig(c: BenchConfig, torchOk: boolean): Promise<Cell[]> {
  const n = Math.max(...procs);
  const tokens = c.batchSize * c.blockSize;
  const flops = stepFlops(c);
  const base = {
    config: c.name,
    params: benchParams(c),
    flopsPerStep: flops,
    tokensPerStep: tokens,
    ratios: [] as number[],
  };
  const ours: Worker[] = [];
  const torch: Worker[] = [];
  try {
    log(`${c.name}: starting ${n} worker(s) per framework, ${flags.warmup} warm-up steps each...`);
    for (let i = 0; i < n; i++) ours.push(startOurs(c, 1234 + i));
    if (torchOk) for (let i = 0; i < n; i++) torch.push(startTorch(c));
    const oursReady = await Promise.all(ours.map((w) => w.expect<Ready>('READY')));
    const torchReady = await Promise.all(torch.map((w) => w.expect<Ready>('READY')));
    // steps per block: from a calibration block of 3 steps by each framework's first worker alone
    // (warm-up times are no guide: all workers warm up at once, and ours' first steps include JIT)
    const per = async (w: Worker) => {
      const b = await block([w], 3, tokens);
      return Math.max(2, Math.round(flags.blockMs / Math.max(0.1, median(b.ms))));
    };
    const kOurs = await per(ours[0]);
    const kTorch = torchOk ? await per(torch[0]) : 0;
    const cells: Cell[] = [];
    for (const p of procs) {
      const load = [os.loadavg()[0]];
      // cpuBlock: median CPU ms per step of each block (process CPU time: what a step costs, whatever the load)
      const o: { tps: number[]; ms: number[]; cpuBlock: number[]; loss: number } = {
        tps: [],
        ms: [],
        cpuBlock: [],
        loss: NaN,
      };
      const t: typeof o = { tps: [], ms: [], cpuBlock: [], loss: NaN };
      log(
        `${c.name} ${p}-process: ${flags.blocks} pairs of blocks (ours ${kOurs} steps, PyTorch ${kTorch} steps), load ${load[0].toFixed(2)}`,
      );
      const runOurs = async () => {
        const b = await block(ours.slice(0, p), kOurs, tokens);
        o.tps.push(b.tps);
        o.ms.push(...b.ms);
        o.cpuBlock.push(median(b.cpuMs));
        o.loss = b.loss;
      };
      const runTorch = async () => {
        const b = await block(torch.slice(0, p), kTorch, tokens);
        t.tps.push(b.tps);
        t.ms.push(...b.ms);
        t.cpuBlock.push(median(b.cpuMs));
        t.loss = b.loss;
      };
      for (let i = 0; i < flags.blocks; i++) {
        if (!torchOk) await runOurs();
        else if (i % 2 === 0) {
          await runOurs();
          await runTorch();
        } else {
          await runTorch();
          await runOurs();
        }
      }
      load.push(os.loadavg()[0]);
      const side = (x: typeof o, k: number, r: Ready): Side => {
        const ms = median(x.ms);
        return {
          tokensPerSec: median(x.tps),
          msPerStep: ms,
          cpuMsPerStep: median(x.cpuBlock),
          gflops: flops / ms / 1e6,
          blockTokensPerSec: x.tps,
          steps: k,
          lastLoss: x.loss,
          engine: r.engine,
          kernels: r.kernels,
        };
      };
      const cell: Cell = { ...base, procs: p, ours: side(o, kOurs, oursReady[0]), load, ratios: [] };
      if (torchOk) {
        cell.torch = side(t, kTorch, torchReady[0]);
        cell.ratios = o.tps.map((x, i) => x / t.tps[i]);
        const r = cell.ratios;
        cell.ratio = {
          median: median(r),
          q25: quantile(r, 0.25),
          q75: quantile(r, 0.75),
          min: Math.min(...r),
          max: Math.max(...r),
        };
        // the same comparison in CPU time per step (PyTorch's / ours per pair: > 1 = ours cheaper), which the load blurs far less
        const cr = o.cpuBlock.map((x, i) => t.cpuBlock[i] / x).filter(Number.isFinite);
        if (cr.length)
          cell.cpuRatio = {
            median: median(cr),
            q25: quantile(cr, 0.25),
            q75: quantile(cr, 0.75),
            min: Math.min(...cr),
            max: Math.max(...cr),
          };
      }
      cells.push(cell);
    }
    return cells;
  } catch (e) {
    const error = (e as Error).message;
    log(`${c.name} failed: ${error}`);
    return procs.map((p) => ({ ...base, procs: p, load: [os.loadavg()[0]], error }));
  } finally {
    for (const w of [...ours, ...torch]) w.quit();
  }
}

const t0 = Date.now();
const loadStart = os.loadavg();
const torchOk = !flags.noTorch && ensureTorch();
log(
  `configs ${configNames.join(', ')} (rungs: ${cpuPlan.source}); processes ${procs.join(', ')}; load ${loadStart.map((x) => x.toFixed(2)).join(' ')}`,
);
const cells: Cell[] = [];
for (const n of configNames) cells.push(...(await runConfig(all[n], torchOk)));
const loadEnd = os.loadavg();

const f = (x: number | undefined, d = 0) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
const header = [
  'config',
  'params',
  'GFLOP/step',
  'procs',
  'ours tok/s',
  'torch tok/s',
  'ours/torch median [IQR]',
  'ours ms/step',
  'torch ms/step',
  'ours GFLOP/s',
  'torch GFLOP/s',
  'CPU ms/step ours',
  'torch',
  'CPU-time ratio [IQR]',
  'load',
];
const body = cells.map((c) => [
  c.config,
  String(c.params),
  f(c.flopsPerStep / 1e9, 3),
  String(c.procs),
  c.error ? 'ERROR' : f(c.ours?.tokensPerSec),
  f(c.torch?.tokensPerSec),
  c.ratio ? `${c.ratio.median.toFixed(2)} [${c.ratio.q25.toFixed(2)}-${c.ratio.q75.toFixed(2)}]` : '-',
  f(c.ours?.msPerStep, 1),
  f(c.torch?.msPerStep, 1),
  f(c.ours?.gflops, 1),
  f(c.torch?.gflops, 1),
  f(c.ours?.cpuMsPerStep, 1),
  f(c.torch?.cpuMsPerStep, 1),
  c.cpuRatio ? `${c.cpuRatio.median.toFixed(2)} [${c.cpuRatio.q25.toFixed(2)}-${c.cpuRatio.q75.toFixed(2)}]` : '-',
  c.load.map((x) => x.toFixed(1)).join('→'),
]);
const peak = cpuPeak();
console.log(alignColumns(header, body));
for (const c of cells.filter((x) => x.error)) console.log(`${c.config} ${c.procs}p: ${c.error}`);
console.log(
  `\ntok/s: median over ${flags.blocks} blocks (2 processes: the sum of both); ratio: median of per-pair ratios, [25th-75th percentile]; ms/step: median step (per process); CPU ms/step: process CPU time per step (median of block medians), CPU-time ratio: PyTorch's/ours per pair (> 1: ours costs less CPU; little affected by load)`,
);
console.log(
  `ours: ${[...new Set(cells.map((c) => c.ours?.kernels).filter(Boolean))].join(' / ') || '-'}; PyTorch: ${cells.find((c) => c.torch)?.torch?.engine ?? 'not run'} (${cells.find((c) => c.torch)?.torch?.kernels ?? '-'}), 1 thread per process`,
);
console.log(
  `FLOPs/step: src/model/flops.ts (matmuls only, causal attention, backward = 2x forward). Rungs: ${cpuPlan.source}`,
);
console.log(
  `CPU: ${peak.model}, ${peak.cores} cores; load average (1, 5, 15 min) at start ${loadStart.map((x) => x.toFixed(2)).join(' ')}, at end ${loadEnd.map((x) => x.toFixed(2)).join(' ')}; ${((Date.now() - t0) / 1000).toFixed(0)} s`,
);

const date = new Date().toISOString().slice(0, 10);
mkdirSync(path.join(here, 'results'), { recursive: true });
const file = path.resolve(root, flags.out ?? path.join('bench', 'results', `${date}-interleaved.json`));
writeJsonAtomic(file, {
  date: new Date().toISOString(),
  node: process.version,
  cpu: peak,
  rungSource: cpuPlan.source,
  flags,
  load: { start: loadStart, end: loadEnd },
  cells,
});
console.log(`wrote ${path.relative(root, file)}`);
process.exit(0);
