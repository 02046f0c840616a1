/**
 * Attention kernels bench: peak tensor memory and time, forward and forward+backward.
 *
 *   npx tsx bench/attention.ts [--backend wasm|cpu] [--B 4] [--H 4] [--Hkv 4] [--T 512] [--hs 32]
 *                              [--block 64] [--reps 3] [--sparse 32,2,4]
 *
 * Peak memory, two ways, both minus what was alive before the call (q, k, v, w):
 *  - "handles": the engine's byte count tf.memory().numBytes sampled after every kernel by
 *    tf.profile. It counts every tensor handle, so a reshape/clone view of a buffer counts twice.
 *  - "buffers": bytes of distinct live data buffers, tracked exactly by watching the engine
 *    register and free buffers (what the backend really holds, views counted once).
 * Time = median wall-clock of `reps` runs after one warm-up, with the result read back.
 * Not a test: it prints a table.
 */
import { initEngine, tf, type BackendName } from '../src/engine/index.js';
import { peakBufferBytes } from '../src/engine/memory.js';
import { plainAttention } from '../src/model/attention/plain.js';
import { fusedAttention } from '../src/model/attention/fused.js';
import { sparseAttention, sparseBlocksUsed } from '../src/model/attention/sparse.js';
import type { AttendOptions } from '../src/model/attention/index.js';
import { backendFlag, parseScriptArgs, type CommandSpec } from '../src/cli/args.js';
import { formatRows } from '../src/report/formats.js';

const spec = {
  summary: 'attention kernels (plain, fused, sparse): peak tensor memory and time, forward and forward+backward',
  flags: {
    backend: backendFlag({ default: 'wasm' }),
    B: { type: 'int', default: 4, min: 1, help: 'batch' },
    H: { type: 'int', default: 4, min: 1, help: 'query heads' },
    Hkv: { type: 'int', default: 4, min: 1, help: 'key/value heads' },
    T: { type: 'int', default: 512, min: 1, help: 'context length' },
    hs: { type: 'int', default: 32, min: 1, help: 'head size' },
    block: { type: 'int', default: 64, min: 1, help: 'fused kernel block' },
    reps: { type: 'int', default: 3, min: 1, help: 'timed runs (median)' },
    sparse: {
      type: 'list',
      of: 'int',
      default: [32, 2, 4],
      min: 1,
      help: 'sparse blockSize,localBlocks,selectedBlocks',
    },
  },
} as const satisfies CommandSpec;
const { flags } = parseScriptArgs('npx tsx bench/attention.ts', spec);
const backend = flags.backend as BackendName;
const { B, H, Hkv, T, hs, block, reps } = flags;
const [sbs, sl, ss] = flags.sparse;
const sparse = { blockSize: sbs, localBlocks: sl, selectedBlocks: ss };
const opts: AttendOptions = { dropout: 0, training: false, seed: 0, sparse, fusedBlock: block };

type Kernel = (q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D) => tf.Tensor4D;
const kernels: [string, Kernel][] = [
  ['plain', (q, k, v) => plainAttention(q, k, v, opts)],
  [`fused (block ${block})`, (q, k, v) => fusedAttention(q, k, v, opts)],
  [`sparse (${sbs}/${sl}/${ss})`, (q, k, v) => sparseAttention(q, k, v, opts)],
];

function randn(shape: [number, number, number, number], seed: number): tf.Tensor4D {
  return tf.randomNormal(shape, 0, 1, 'float32', seed) as tf.Tensor4D;
}

async function measure(run: () => tf.Tensor[]): Promise<{ peakMiB: number; bufMiB: number; ms: number }> {
  const before = tf.memory().numBytes;
  // exact high-water mark of distinct live buffers above what was live (src/engine/memory.ts)
  const { peak } = peakBufferBytes(() => tf.dispose(run()));
  const prof = await tf.profile(() => {
    const out = run();
    tf.dispose(out);
    return 0;
  });
  const peakMiB = (prof.peakBytes - before) / 2 ** 20;
  const bufMiB = peak / 2 ** 20;
  const times: number[] = [];
  for (let r = 0; r <= reps; r++) {
    const t0 = performance.now();
    const out = run();
    for (const o of out) o.dataSync();
    tf.dispose(out);
    if (r > 0) times.push(performance.now() - t0); // r = 0 is the warm-up
  }
  times.sort((a, b) => a - b);
  return { peakMiB, bufMiB, ms: times[Math.floor(times.length / 2)] };
}

async function main() {
  const info = await initEngine({ backend });
  const q = randn([B, H, T, hs], 1),
    k = randn([B, Hkv, T, hs], 2),
    v = randn([B, Hkv, T, hs], 3);
  const w = randn([B, H, T, hs], 4);
  const mib = (n: number) => (n * 4) / 2 ** 20;
  console.log(
    `attention bench: backend ${info.backend} (${JSON.stringify(info.flags)}), B=${B} H=${H} Hkv=${Hkv} T=${T} hs=${hs}`,
  );
  console.log(
    `one [B,H,T,T] float32 matrix = ${mib(B * H * T * T).toFixed(1)} MiB; q = ${mib(B * H * T * hs).toFixed(1)} MiB`,
  );
  console.log(`sparse key blocks per query block: [${sparseBlocksUsed(T, sparse).join(', ')}]`);
  const rows: string[][] = [];
  for (const [name, f] of kernels) {
    const fwd = await measure(() => [f(q, k, v)]);
    const both = await measure(() =>
      tf.tidy(() =>
        tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
          tf.sum(tf.mul(f(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D), w)),
        )([q, k, v]),
      ),
    );
    const f1 = (x: number) => x.toFixed(1);
    rows.push([
      name,
      f1(fwd.bufMiB),
      f1(both.bufMiB),
      f1(fwd.peakMiB),
      f1(both.peakMiB),
      fwd.ms.toFixed(0),
      both.ms.toFixed(0),
    ]);
  }
  const head = [
    'kernel',
    'buffers MiB fwd',
    'buffers MiB fwd+bwd',
    'handles MiB fwd',
    'handles MiB fwd+bwd',
    'ms fwd',
    'ms fwd+bwd',
  ];
  // a markdown table (docs/attention.md), by the CLI's printer (ceg report --format md)
  process.stdout.write(
    formatRows(
      rows.map((r) => Object.fromEntries(head.map((h, i) => [h, r[i]]))),
      head,
      'md',
    ),
  );
  tf.dispose([q, k, v, w]);
}

await main();
