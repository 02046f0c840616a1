/**
 * A long-lived benchmark worker for the interleaved bench (bench/bench.ts): builds the training
 * step of bench/real-step.ts once, runs the warm-up, prints `READY {json}`, then serves lines on
 * stdin: `run N` runs N steps and prints `BLOCK {"ms":[...],"cpuMs":[...],"loss":x}`; `quit` exits.
 * bench/torch_step.py --serve speaks the same protocol for PyTorch.
 *
 * `tsx bench/worker.ts --config n33k --warmup 3 [--seed 1234]`
 */
import { createInterface } from 'node:readline';
import { initEngine, tf } from '../src/engine/index.js';
import { kernelPatches } from '../src/engine/kernels.js';
import { benchConfig } from './configs.js';
import { makeStep } from './real-step.js';
import { parseScriptArgs, type CommandSpec } from '../src/cli/args.js';

const spec = {
  summary: 'a long-lived worker of the interleaved bench (bench/bench.ts): READY, then "run N" -> BLOCK lines',
  flags: {
    config: { type: 'string', default: 'A', help: 'bench config (bench/configs.ts)' },
    warmup: { type: 'int', default: 3, min: 0, help: 'warm-up steps' },
    seed: { type: 'int', default: 1234, help: 'initialisation seed' },
  },
} as const satisfies CommandSpec;
const { flags } = parseScriptArgs('npx tsx bench/worker.ts', spec);
const config = benchConfig(flags.config);
const { warmup, seed } = flags;
await initEngine({ backend: 'wasm' });
const { step, dispose } = makeStep(config, seed);
const warm: number[] = [];
for (let i = 0; i < warmup; i++) {
  const t0 = performance.now();
  step();
  warm.push(performance.now() - t0);
}
const kernels =
  kernelPatches('wasm')
    .filter((k) => k.startsWith('BatchMatMul:'))
    .map((k) => k.slice('BatchMatMul:'.length))
    .join('+') || 'wasm';
process.stdout.write(`READY ${JSON.stringify({ engine: 'tfjs wasm', kernels, warmupMs: warm })}\n`);

for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, n] = line.trim().split(/\s+/);
  if (cmd === 'quit') break;
  if (cmd !== 'run') continue;
  const ms: number[] = [];
  const cpuMs: number[] = []; // this process's CPU time per step (user + system, all threads)
  let loss = NaN;
  for (let i = 0; i < Number(n); i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    loss = step();
    ms.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpuMs.push((c.user + c.system) / 1000);
  }
  process.stdout.write(`BLOCK ${JSON.stringify({ ms, cpuMs, loss, numTensors: tf.memory().numTensors })}\n`);
}
dispose();
process.exit(0);
