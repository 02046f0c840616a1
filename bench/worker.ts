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

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const config = benchConfig(arg('config', 'A'));
const warmup = Number(arg('warmup', '3'));
const seed = Number(arg('seed', '1234'));
await initEngine({ backend: 'wasm', threads: 1 });
const { step, dispose } = makeStep(config, seed);
const warm: number[] = [];
for (let i = 0; i < warmup; i++) {
  const t0 = performance.now();
  step();
  warm.push(performance.now() - t0);
}
const kernels = kernelPatches('wasm').filter((k) => k.startsWith('BatchMatMul:')).map((k) => k.slice('BatchMatMul:'.length)).join('+') || 'wasm';
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
