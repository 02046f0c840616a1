/**
 * One benchmark cell, run in its own process (the kernel set is fixed at start):
 * `tsx bench/run-one.ts --backend wasm --config A --steps 10 --warmup 3 [--profile]`.
 * Prints one line `RESULT {json}`.
 */
import { initEngine, tf } from '../src/engine/index.js';
import { benchConfig, stepFlops } from './configs.js';
import { makeStep } from './real-step.js';
import { kernelPatches } from '../src/engine/kernels.js';
import { installProfiler, startProfile, stopProfile, byKernel } from './profile.js';
import { readEnv } from '../src/env.js';
import { parseScriptArgs, type CommandSpec } from '../src/cli/args.js';

const spec = {
  summary: 'one benchmark cell in its own process; prints one line RESULT {json}',
  flags: {
    backend: { type: 'choice', choices: ['wasm', 'cpu'], noun: 'backend', default: 'wasm', help: 'tensor backend' },
    config: { type: 'string', default: 'A', help: 'bench config (bench/configs.ts)' },
    steps: { type: 'int', default: 10, min: 1, help: 'timed steps' },
    warmup: { type: 'int', default: 3, min: 0, help: 'warm-up steps' },
    profile: { type: 'bool', help: 'print the top kernels' },
  },
} as const satisfies CommandSpec;
const { flags } = parseScriptArgs('npx tsx bench/run-one.ts', spec);
const backend = flags.backend as 'wasm' | 'cpu';
const { config: configName, steps, warmup, profile } = flags;

const config = benchConfig(configName);

const info = await initEngine({ backend });
/** 'stock' (shipped kernels), 'patched' (wasm replacements + fused JS kernels) or 'native-avx512' (+ the native addon) */
function kernelsLabel(): string {
  const mode = readEnv('CEG_KERNELS');
  if (backend !== 'wasm') return mode === 'stock' ? 'stock' : 'fused ops';
  if (mode === 'stock') return mode;
  const n = kernelPatches('wasm').find((k) => k.startsWith('BatchMatMul:native-'));
  return n ? n.slice('BatchMatMul:'.length) : 'patched';
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
