/**
 * One benchmark cell, run in its own process (a wasm module's thread count is fixed at
 * start): `tsx bench/run-one.ts --backend wasm --threads 1 --config A --steps 10 --warmup 3 [--profile]`.
 * Prints one line `RESULT {json}`.
 */
import { initEngine, tf } from '../src/engine/index.js';
import { benchConfig, stepFlops } from './configs.js';
import { makeStep } from './real-step.js';
import { kernelPatches } from '../src/engine/kernels.js';
import { installProfiler, startProfile, stopProfile, byKernel } from './profile.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const backend = arg('backend', 'wasm') as 'wasm' | 'cpu';
const threads = Number(arg('threads', '1'));
const configName = arg('config', 'A');
const steps = Number(arg('steps', '10'));
const warmup = Number(arg('warmup', '3'));
const profile = process.argv.includes('--profile');

const config = benchConfig(configName);

const info = await initEngine({ backend, threads });
/** 'stock' (shipped kernels), 'round1' (round 1's), 'patched' (wasm replacements + fused JS kernels) or 'native-avx512' (+ the native addon) */
function kernelsLabel(): string {
  if (backend !== 'wasm') return process.env.CEG_KERNELS === 'stock' ? 'stock' : 'fused ops';
  if (process.env.CEG_KERNELS === 'stock' || process.env.CEG_KERNELS === 'round1') return process.env.CEG_KERNELS;
  const n = kernelPatches('wasm').find((k) => k.startsWith('BatchMatMul:native-'));
  return n && info.flags.threads === 1 ? n.slice('BatchMatMul:'.length) : 'patched';
}
if (profile) installProfiler(backend);
const { step, dispose } = makeStep(config, 1234);
const losses: number[] = [];
for (let i = 0; i < warmup; i++) losses.push(step());
const ms: number[] = [];
const cpuMs: number[] = [];
if (profile) startProfile();
for (let i = 0; i < steps; i++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  losses.push(step());
  ms.push(performance.now() - t0);
  const c = process.cpuUsage(c0);
  cpuMs.push((c.user + c.system) / 1000);
}
const kernels = profile ? stopProfile(steps) : [];
dispose();
const sorted = [...ms].sort((a, b) => a - b);
const median = sorted[Math.floor(sorted.length / 2)];
const tokens = config.batchSize * config.model.blockSize;
const flops = stepFlops(config);
const result = {
  engine: 'tfjs',
  backend,
  threads: info.backend === 'wasm' ? info.flags.threads : 1,
  kernels: kernelsLabel(),
  config: configName,
  steps,
  warmup,
  msPerStep: median,
  msAll: ms,
  /** CPU time of this process per step (median): the step's cost without other processes' share of the machine */
  cpuMsPerStep: [...cpuMs].sort((a, b) => a - b)[Math.floor(cpuMs.length / 2)],
  tokensPerSec: (tokens / median) * 1000,
  gflops: flops / median / 1e6,
  flopsPerStep: flops,
  firstLoss: losses[0],
  lastLoss: losses[losses.length - 1],
  numTensors: tf.memory().numTensors,
  profile: profile ? { top: kernels.slice(0, 25), byKernel: byKernel(kernels) } : undefined,
};
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
process.exit(0);
