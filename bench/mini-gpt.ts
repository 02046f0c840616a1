/**
 * A minimal nanoGPT training step in raw tf ops, for benchmarking until src/model/gpt.ts
 * lands: embeddings + learned positions, L blocks (attention via the project's plain
 * kernel, GELU MLP, residuals, no per-block LayerNorm = the study's baseline), final
 * LayerNorm, tied head, cross-entropy, gradients via tf.variableGrads, grad clip 1.0 and
 * the trainer's AdamW. Deterministic: weights and batches come from an explicit seed.
 */
import { tf } from '../src/engine/index.js';
import { plainAttention } from '../src/model/attention/plain.js';
import { AdamW, clipByGlobalNorm } from '../src/train/adamw.js';
import type { BenchConfig } from './configs.js';

/** Small deterministic generator (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(shape: number[], std: number, next: () => number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    // Box-Muller
    const u = Math.max(next(), 1e-12);
    v[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  }
  return tf.tensor(v, shape);
}

export interface MiniGpt {
  params: Map<string, tf.Variable>;
  /** mean cross-entropy of next-token prediction; idx, targets: [B, T] int32 */
  loss: (idx: tf.Tensor2D, targets: tf.Tensor2D) => tf.Scalar;
}

export function buildMiniGpt(c: BenchConfig, seed: number): MiniGpt {
  const next = rng(seed);
  const C = c.nEmbd;
  const params = new Map<string, tf.Variable>();
  const add = (name: string, t: tf.Tensor) => params.set(name, tf.variable(t, true, name));
  add('wte', normal([c.vocabSize, C], 0.02, next)); // [V, C]
  add('wpe', normal([c.blockSize, C], 0.02, next)); // [T, C]
  const projStd = 0.02 / Math.sqrt(2 * c.nLayer);
  for (let l = 0; l < c.nLayer; l++) {
    add(`h${l}.attn.w`, normal([C, 3 * C], 0.02, next)); // Linear weights stored [in, out]
    add(`h${l}.attn.b`, tf.zeros([3 * C]));
    add(`h${l}.proj.w`, normal([C, C], projStd, next));
    add(`h${l}.proj.b`, tf.zeros([C]));
    add(`h${l}.fc.w`, normal([C, 4 * C], 0.02, next));
    add(`h${l}.fc.b`, tf.zeros([4 * C]));
    add(`h${l}.fc2.w`, normal([4 * C, C], projStd, next));
    add(`h${l}.fc2.b`, tf.zeros([C]));
  }
  add('lnf.g', tf.ones([C]));
  add('lnf.b', tf.zeros([C]));
  const p = (name: string) => params.get(name)!;

  const linear = (x: tf.Tensor2D, name: string) => tf.add(tf.matMul(x, p(`${name}.w`)), p(`${name}.b`)) as tf.Tensor2D;
  const gelu = (x: tf.Tensor) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));

  const loss = (idx: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar => {
    const [B, T] = idx.shape;
    const H = c.nHead;
    const hs = C / H;
    const heads = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [B, T, H, hs]), [0, 2, 1, 3]) as tf.Tensor4D;
    let x = tf.reshape(tf.add(tf.gather(p('wte'), idx), tf.slice(p('wpe'), [0, 0], [T, C])), [B * T, C]) as tf.Tensor2D;
    for (let l = 0; l < c.nLayer; l++) {
      const qkv = linear(x, `h${l}.attn`); // [B·T, 3C]
      const [q, k, v] = tf.split(qkv, 3, 1);
      const y = plainAttention(heads(q), heads(k), heads(v), {
        dropout: 0, training: true, seed: 0, sparse: { blockSize: 16, localBlocks: 1, selectedBlocks: 1 },
      }); // [B, H, T, hs]
      const merged = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B * T, C]) as tf.Tensor2D;
      x = tf.add(x, linear(merged, `h${l}.proj`));
      x = tf.add(x, linear(gelu(linear(x, `h${l}.fc`)) as tf.Tensor2D, `h${l}.fc2`));
    }
    const { mean, variance } = tf.moments(x, -1, true);
    const xn = tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), p('lnf.g')), p('lnf.b'));
    const logits = tf.matMul(xn, p('wte'), false, true); // [B·T, V] tied head
    const flatT = tf.reshape(targets, [B * T]);
    const picked = tf.sum(tf.mul(logits, tf.oneHot(flatT, c.vocabSize)), -1); // [B·T]
    return tf.mean(tf.sub(tf.logSumExp(logits, -1), picked)) as tf.Scalar;
  };
  return { params, loss };
}

/** Fixed random batch of token ids (the same every step: speed does not depend on data). */
export function randomBatch(c: BenchConfig, seed: number): { idx: tf.Tensor2D; targets: tf.Tensor2D } {
  const next = rng(seed);
  const n = c.batchSize * c.blockSize;
  const a = new Int32Array(n + 1);
  for (let i = 0; i <= n; i++) a[i] = Math.floor(next() * c.vocabSize);
  return {
    idx: tf.tensor2d(a.subarray(0, n), [c.batchSize, c.blockSize], 'int32'),
    targets: tf.tensor2d(a.subarray(1, n + 1), [c.batchSize, c.blockSize], 'int32'),
  };
}

/** One full training step; returns the loss. */
export function makeStep(c: BenchConfig, seed: number): { step: () => number; dispose: () => void } {
  const model = buildMiniGpt(c, seed);
  const opt = new AdamW(model.params, {
    beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, decayed: (n) => n.endsWith('.w') || n === 'wte' || n === 'wpe',
  });
  const { idx, targets } = randomBatch(c, seed + 1);
  const step = () => {
    const { value, grads } = tf.variableGrads(() => model.loss(idx, targets), [...model.params.values()]);
    const g = new Map<string, tf.Tensor>(Object.entries(grads));
    clipByGlobalNorm(g, 1.0);
    opt.step(g, 1e-3);
    for (const t of g.values()) t.dispose();
    const l = value.dataSync()[0];
    value.dispose();
    return l;
  };
  const dispose = () => {
    opt.dispose();
    for (const v of model.params.values()) v.dispose();
    idx.dispose();
    targets.dispose();
  };
  return { step, dispose };
}
