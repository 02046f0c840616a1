/**
 * Child-process check used by test/kernels.test.ts (a wasm module's thread count is fixed
 * per process): starts wasm with 2 threads, runs a product on the thread pool and prints
 * `THREADS {json}` with the thread count, the pool's running workers, CPU and wall ms and a
 * checksum of the product (compared by the test with the cpu backend).
 */
import { initEngine, tf } from '../src/engine/index.js';

const info = await initEngine({ backend: 'wasm', threads: 2 });
const n = 512;
const a = tf.tensor2d(Float32Array.from({ length: n * n }, (_, i) => ((i * 7) % 13) / 13 - 0.5), [n, n]);
const b = tf.tensor2d(Float32Array.from({ length: n * n }, (_, i) => ((i * 5) % 11) / 11 - 0.5), [n, n]);
const c0 = process.cpuUsage();
const t0 = performance.now();
let sum = 0;
for (let i = 0; i < 4; i++) {
  const c = tf.matMul(a, b, i % 2 === 1, false);
  sum += tf.sum(c).dataSync()[0];
  c.dispose();
}
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(c0);
const pthread = (tf.backend() as unknown as { wasm: { PThread?: { runningWorkers: unknown[] } } }).wasm.PThread;
process.stdout.write(`THREADS ${JSON.stringify({ threads: info.flags.threads, runningWorkers: pthread?.runningWorkers.length ?? 0, cpuMs: (cpu.user + cpu.system) / 1000, wallMs, sum })}\n`);
process.exit(0);
