/**
 * webgpu measurements (not a test): plain vs WGSL-fused attention forward+backward, and a tiny
 * GPT training step on webgpu vs wasm. Prints a markdown table.
 *   npx tsx bench/webgpu.ts [--B 4 --H 4 --T 256 --hs 32] [--steps 5] [--backends webgpu,wasm]
 * Each timing is the median of --steps runs after one warm-up, synchronised by reading the
 * result back (await data()).
 */
import { mulberry32 } from '../src/ceg/random.js';
import { initEngine, tf, type BackendName } from '../src/engine/index.js';
import { flashAttentionWebGPU } from '../src/engine/wgsl/flash-attention.js';
import { shutdownWebGPU } from '../src/engine/webgpu.js';
import { BACKENDS } from '../src/engine/index.js';
import { parseScriptArgs, type CommandSpec } from '../src/cli/args.js';

const spec = {
  summary: 'webgpu measurements: plain vs WGSL-fused attention, and a tiny GPT training step per backend',
  flags: {
    B: { type: 'int', default: 4, min: 1, help: 'batch' },
    H: { type: 'int', default: 4, min: 1, help: 'heads' },
    T: { type: 'int', default: 256, min: 1, help: 'context length' },
    hs: { type: 'int', default: 32, min: 1, help: 'head size' },
    steps: { type: 'int', default: 5, min: 1, help: 'timed runs (median)' },
    backends: {
      type: 'list',
      choices: BACKENDS,
      noun: 'backend',
      default: ['webgpu', 'wasm'],
      help: 'backends of the training-step table',
    },
  },
} as const satisfies CommandSpec;
const { flags } = parseScriptArgs('npx tsx bench/webgpu.ts', spec);
const { B, H, T, hs, steps } = flags;
const backends = flags.backends as BackendName[];

/** Deterministic values in [-1, 1) from a seed. */
function values(n: number, seed: number): Float32Array {
  const u = mulberry32(seed);
  return Float32Array.from({ length: n }, () => 2 * u() - 1);
}
const rnd = (shape: number[], seed: number, scale = 1) =>
  tf.tensor(
    values(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ).map((x) => x * scale),
    shape,
  );

async function median(fn: () => tf.Tensor[]): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i <= steps; i++) {
    const t0 = performance.now();
    const out = fn();
    await Promise.all(out.map((t) => t.data()));
    tf.dispose(out);
    if (i > 0) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function plainAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor): tf.Tensor {
  const mask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9);
  const att = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hs)), mask)); // [B,H,T,T]
  return tf.matMul(att, v);
}

function attnStep(attn: (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.Tensor) {
  return () =>
    tf.tidy(() => {
      const [q, k, v] = [21, 22, 23].map((s) => rnd([B, H, T, hs], s));
      const w = rnd([B, H, T, hs], 24);
      return tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(attn(a, b, c), w)))([q, k, v]);
    });
}

/** Config A of ENGINE-NOTES (vocab 96, 4 layers, width 128, context 64, batch 16), SGD step. */
function gptStep() {
  const V = 96,
    C = 128,
    L = 4,
    TT = 64,
    BB = 16,
    NH = 4,
    hd = C / NH;
  const p: Record<string, tf.Variable> = {
    wte: tf.variable(rnd([V, C], 1, 0.1)),
    wpe: tf.variable(rnd([TT, C], 2, 0.02)),
  };
  for (let l = 0; l < L; l++) {
    p[`qkv${l}`] = tf.variable(rnd([C, 3 * C], 10 + l, 0.1));
    p[`o${l}`] = tf.variable(rnd([C, C], 20 + l, 0.1));
    p[`fc${l}`] = tf.variable(rnd([C, 4 * C], 30 + l, 0.1));
    p[`pr${l}`] = tf.variable(rnd([4 * C, C], 40 + l, 0.05));
  }
  const toks = Array.from(values(BB * (TT + 1), 7), (x) => Math.floor((x + 1) * 48) % V);
  const x = tf.tensor2d(
    toks.filter((_, i) => i % (TT + 1) < TT),
    [BB, TT],
    'int32',
  );
  const y = tf.oneHot(
    tf.tensor1d(
      toks.filter((_, i) => i % (TT + 1) > 0),
      'int32',
    ),
    V,
  );
  const mask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([TT, TT]), -1, 0)), -1e9);
  const norm = (h: tf.Tensor) => {
    const { mean, variance } = tf.moments(h, -1, true);
    return tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, 1e-5)));
  };
  const heads = (h: tf.Tensor) => tf.transpose(tf.reshape(h, [BB, TT, NH, hd]), [0, 2, 1, 3]);
  const loss = () => {
    let h = tf.reshape(tf.add(tf.gather(p.wte, x), p.wpe), [BB * TT, C]);
    for (let l = 0; l < L; l++) {
      const [q, k, v] = tf.split(tf.reshape(tf.matMul(norm(h), p[`qkv${l}`]), [BB, TT, 3 * C]), 3, -1).map(heads);
      const att = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(hd)), mask));
      const o = tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [BB * TT, C]);
      h = tf.add(h, tf.matMul(o, p[`o${l}`]));
      h = tf.add(h, tf.matMul(tf.relu(tf.matMul(norm(h), p[`fc${l}`])), p[`pr${l}`]));
    }
    return tf.losses.softmaxCrossEntropy(y, tf.matMul(norm(h), p.wte, false, true)) as tf.Scalar;
  };
  const step = () =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(loss);
      for (const v of Object.values(p)) v.assign(tf.sub(v, tf.mul(grads[v.name], 0.1)));
      return [value];
    });
  const dispose = () => tf.dispose([...Object.values(p), x, y, mask]);
  return { step, dispose };
}

const rows: string[] = [];
for (const backend of backends) {
  const info = await initEngine({ backend });
  const dev = backend === 'webgpu' ? String(info.flags.adapter) : `${backend} threads=${info.flags.threads ?? 1}`;
  const plain = await median(attnStep(plainAttention));
  rows.push(`| ${backend} | attention plain fwd+bwd B${B} H${H} T${T} hs${hs} | ${plain.toFixed(1)} | ${dev} |`);
  if (backend === 'webgpu') {
    const fused = await median(attnStep(flashAttentionWebGPU));
    rows.push(`| ${backend} | attention WGSL fused fwd+bwd B${B} H${H} T${T} hs${hs} | ${fused.toFixed(1)} | ${dev} |`);
  }
  const g = gptStep();
  const ms = await median(g.step);
  g.dispose();
  rows.push(`| ${backend} | tiny GPT step (V96 L4 C128 T64 B16, 0.8M params) | ${ms.toFixed(1)} | ${dev} |`);
  process.stderr.write(rows.slice(-3).join('\n') + '\n');
}
console.log(`| backend | what | ms (median of ${steps}) | device |\n|---|---|---|---|\n${rows.join('\n')}`);
shutdownWebGPU();
