/**
 * The MLP variants of a block. All take and return the residual stream as x2d [N, C]
 * (N = B·T tokens) and read their weights from Params by nanoGPT name under `prefix`
 * (e.g. `transformer.h.3.mlp`).
 *
 *  gelu:   c_proj(gelu(c_fc(x)))  with the exact erf GELU (nanoGPT's nn.GELU()); tf.erf runs on wasm.
 *  swiglu: c_proj(silu(c_fc2(x)) ⊙ c_fc(x))   (c_fc2 = gate W1, c_fc = up W3, c_proj = W2)
 *  moe:    router [C, E] -> softmax p -> top-k experts per token; output Σ_chosen w_e·expert_e(x)
 *          where w = the top-k probabilities renormalised to sum 1 when k > 1 (Mixtral), and the
 *          raw probability when k = 1 (Switch; renormalising would leave the router no gradient).
 *          Two implementations of the same math (MoEImpl): 'gather' runs only the chosen experts'
 *          work (tokens gathered per expert after one read of the routing to JS; cpu/wasm), 'dense'
 *          runs every expert and zeroes the unchosen ones with a gate (no read-back; webgpu).
 *          aux (Switch load-balancing loss) = E · Σ_e f_e · P_e, f_e = (top-k assignments to e)/(N·k),
 *          P_e = mean over tokens of p_e; f is a constant (no gradient), P carries the gradient.
 */
import { tf } from '../engine/index.js';
import { gelu as fusedGelu } from '../engine/fused.js';
import type { ModelConfig } from '../config.js';
import { MOE_IMPLS } from '../config.js';
import type { Params } from './params.js';
import { getParam } from './params.js';
import { linear } from './linear.js';

/**
 * Exact GELU: 0.5·x·(1 + erf(x/√2)). One fused kernel forward and one backward on wasm and cpu
 * (src/engine/fused.ts, checked against this formula in tests); the tf-ops formula elsewhere.
 */
export function gelu<T extends tf.Tensor>(x: T): T {
  return fusedGelu(x);
}

/** SiLU (swish): x·sigmoid(x). */
export function silu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)) as T);
}

const w2 = (p: Params, n: string) => getParam(p, n) as unknown as tf.Tensor2D;
const b1 = (p: Params, n: string) => p.get(n) as unknown as tf.Tensor1D | undefined;

/** A Linear read from params: `${name}.weight` [in, out] and optional `${name}.bias`. */
export function linearP(params: Params, name: string, x: tf.Tensor2D): tf.Tensor2D {
  return linear(x, w2(params, `${name}.weight`), b1(params, `${name}.bias`));
}

/** GELU MLP: x [N, C] -> [N, C] */
export function geluMlp(params: Params, prefix: string, x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => linearP(params, `${prefix}.c_proj`, gelu(linearP(params, `${prefix}.c_fc`, x))));
}

/** SwiGLU MLP: x [N, C] -> [N, C] */
export function swigluMlp(params: Params, prefix: string, x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const gate = silu(linearP(params, `${prefix}.c_fc2`, x)); // [N, Hs]
    const up = linearP(params, `${prefix}.c_fc`, x); // [N, Hs]
    return linearP(params, `${prefix}.c_proj`, tf.mul(gate, up) as tf.Tensor2D);
  });
}

/**
 * Which MoE implementation runs (same math; see docs/model.md):
 *  'gather': reads the routing back to JS (one synchronous read per layer) and runs each expert
 *            on its own tokens only: the algorithm's FLOPs. Fastest on cpu/wasm.
 *  'dense':  no read-back: routing by tf.topk on the device, every expert runs on every token
 *            (as two batched matmuls over the concatenated expert weights) and the outputs are
 *            combined with a gate [N, E] that is zero for experts a token did not choose.
 *            E/k times the expert FLOPs, but nothing leaves the device: used on webgpu.
 *  'auto':   'dense' on webgpu, 'gather' elsewhere (the default).
 * The choice is the model config's `moeImpl` (part of the run's identity), not an environment variable.
 */
export type MoEImpl = (typeof MOE_IMPLS)[number];
export { MOE_IMPLS };

/** The implementation that `impl` (default 'auto') means on the current backend. */
export function resolveMoEImpl(impl?: MoEImpl): 'gather' | 'dense' {
  const want = impl ?? 'auto';
  if (!MOE_IMPLS.includes(want))
    throw new Error(`MoE implementation "${want}" (model.moeImpl) is unknown; valid: ${MOE_IMPLS.join(', ')}`);
  if (want !== 'auto') return want;
  return tf.getBackend() === 'webgpu' ? 'dense' : 'gather';
}

export interface MoEResult {
  y: tf.Tensor2D; // [N, C]
  aux: tf.Scalar; // load-balancing loss of this layer
  /** tokens routed to each expert (top-k assignments; sums to N·k), on the device: [E] float32 */
  load: tf.Tensor1D;
  /**
   * the same counts as plain numbers. The 'gather' path has them for free; on the 'dense' path
   * reading them is a synchronous read of `load` (throws on webgpu: read `load` with await).
   */
  readonly counts: number[];
}

/** Top-k routing decisions as plain arrays: idx[n*k + j] = expert of token n's j-th choice. */
function routeTopK(probs: tf.Tensor2D, k: number): Int32Array {
  return tf.tidy(() => tf.topk(probs, k, true).indices.dataSync() as Int32Array);
}

/** Mixture of experts: x [N, C] -> y [N, C], aux, per-expert token counts. */
export function moeMlp(
  params: Params,
  prefix: string,
  x: tf.Tensor2D,
  moe: ModelConfig['moe'],
  impl?: MoEImpl,
): MoEResult {
  return resolveMoEImpl(impl) === 'dense' ? moeDense(params, prefix, x, moe) : moeGather(params, prefix, x, moe);
}

/** Switch aux loss E·Σ_e f_e·P_e from the per-expert counts [E] (constant) and the probabilities [N, E]. */
function switchAux(counts: tf.Tensor1D, probs: tf.Tensor2D, N: number, E: number, k: number): tf.Scalar {
  const f = tf.div(counts, N * k); // [E], no gradient (counts are constants)
  const P = tf.mean(probs, 0); // [E]
  return tf.mul(E, tf.sum(tf.mul(f, P))) as tf.Scalar;
}

/** 'gather' path: tokens gathered per expert after reading the routing to JS. */
function moeGather(params: Params, prefix: string, x: tf.Tensor2D, moe: ModelConfig['moe']): MoEResult {
  const E = moe.experts;
  const k = moe.topK;
  const [N] = x.shape;
  const counts = new Array<number>(E).fill(0);
  const out = tf.tidy(() => {
    const logits = linearP(params, `${prefix}.router`, x); // [N, E]
    const probs = tf.softmax(logits) as tf.Tensor2D; // [N, E]
    const idx = routeTopK(probs, k); // [N·k] expert ids
    // chosen weights w[n, j] = probs[n, idx[n, j]], gathered from the flat [N·E] probabilities
    const flatIdx = new Int32Array(N * k);
    for (let n = 0; n < N; n++) for (let j = 0; j < k; j++) flatIdx[n * k + j] = n * E + idx[n * k + j];
    let w = tf.reshape(tf.gather(tf.reshape(probs, [N * E]), tf.tensor1d(flatIdx, 'int32')), [N, k]); // [N, k]
    if (k > 1) w = tf.div(w, tf.sum(w, 1, true));

    // tokens per expert, in token order; pos[n·k + j] = row of (n, j) in the concatenated outputs
    const rows: number[][] = Array.from({ length: E }, () => []);
    for (let a = 0; a < N * k; a++) rows[idx[a]].push(a);
    const pos = new Int32Array(N * k);
    const parts: tf.Tensor2D[] = [];
    let offset = 0;
    for (let e = 0; e < E; e++) {
      counts[e] = rows[e].length;
      if (rows[e].length === 0) continue;
      const tokens = tf.tensor1d(
        rows[e].map((a) => Math.floor(a / k)),
        'int32',
      ); // [n_e]
      parts.push(geluMlp(params, `${prefix}.experts.${e}`, tf.gather(x, tokens) as tf.Tensor2D)); // [n_e, C]
      rows[e].forEach((a, r) => (pos[a] = offset + r));
      offset += rows[e].length;
    }
    const all = parts.length === 1 ? parts[0] : tf.concat(parts, 0); // [N·k, C]
    const chosen = tf.reshape(tf.gather(all, tf.tensor1d(pos, 'int32')), [N, k, -1]); // [N, k, C]
    const y = tf.sum(tf.mul(chosen, tf.expandDims(w, 2)), 1) as tf.Tensor2D; // [N, C]

    const load = tf.tensor1d(counts); // [E]
    const aux = switchAux(load, probs, N, E, k);
    return { y, aux, load };
  });
  return { ...out, counts };
}

/**
 * The routing as a mask [N, E]: 1 where e is one of token n's top-k experts (tf.topk: ties go to
 * the lower expert index on cpu/wasm). A routing decision, so no gradient flows through it
 * (tfjs has no TopK gradient: the custom gradient returns zeros).
 */
function topKMask(probs: tf.Tensor2D, k: number): tf.Tensor2D {
  const E = probs.shape[1];
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const p = args[0] as tf.Tensor2D;
    const { indices } = tf.topk(p, k, true); // [N, k] int32
    // one-hot by comparison (wasm's OneHot writes int bits into a float32 output), made float by
    // tf.where (webgpu's bool->float32 cast only relabels the buffer, and a transpose of it fails)
    const hit = tf.equal(tf.expandDims(indices, 2), tf.range(0, E, 1, 'int32')); // [N, k, E] bool
    const value = tf.sum(tf.where(hit, tf.ones(hit.shape), tf.zeros(hit.shape)), 1); // [N, E]
    return { value, gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
  });
  return f(probs) as tf.Tensor2D;
}

/**
 * 'dense' path: nothing is read back. gate [N, E] = p ⊙ chosen (renormalised over the chosen
 * experts when k > 1), chosen = the top-k mask from tf.topk; then
 *   y = Σ_e gate[:, e] · (gelu(x·W1_e + b1_e)·W2_e + b2_e)
 *     = (gelu(x·W1cat + b1cat) ⊙ gate repeated per expert's hidden units)·W2cat + gate·B2
 * with W1cat [C, E·Hd] (experts side by side), W2cat [E·Hd, C] (stacked), B2 [E, C].
 */
function moeDense(params: Params, prefix: string, x: tf.Tensor2D, moe: ModelConfig['moe']): MoEResult {
  const E = moe.experts;
  const k = moe.topK;
  const [N] = x.shape;
  const out = tf.tidy(() => {
    const logits = linearP(params, `${prefix}.router`, x); // [N, E]
    const probs = tf.softmax(logits) as tf.Tensor2D; // [N, E]
    const mask = topKMask(probs, k); // [N, E] 0/1, on the device
    let gate = tf.mul(probs, mask) as tf.Tensor2D; // [N, E]
    if (k > 1) gate = tf.div(gate, tf.sum(gate, 1, true));

    const ex = (e: number, name: string) => getParam(params, `${prefix}.experts.${e}.${name}`) as unknown as tf.Tensor;
    const hasBias = params.has(`${prefix}.experts.0.c_fc.bias`);
    const Hd = ex(0, 'c_fc.weight').shape[1] as number;
    const W1 = tf.concat(
      Array.from({ length: E }, (_, e) => ex(e, 'c_fc.weight')),
      1,
    ) as tf.Tensor2D; // [C, E·Hd]
    const W2 = tf.concat(
      Array.from({ length: E }, (_, e) => ex(e, 'c_proj.weight')),
      0,
    ) as tf.Tensor2D; // [E·Hd, C]
    const b1 = hasBias
      ? (tf.concat(
          Array.from({ length: E }, (_, e) => ex(e, 'c_fc.bias')),
          0,
        ) as tf.Tensor1D)
      : undefined; // [E·Hd]
    const h = gelu(linear(x, W1, b1)); // [N, E·Hd]
    const hg = tf.reshape(tf.mul(tf.reshape(h, [N, E, Hd]), tf.expandDims(gate, 2)), [N, E * Hd]) as tf.Tensor2D; // [N, E·Hd]
    let y = linear(hg, W2); // [N, C]
    if (hasBias)
      y = tf.add(
        y,
        linear(
          gate,
          tf.stack(
            Array.from({ length: E }, (_, e) => ex(e, 'c_proj.bias')),
            0,
          ) as tf.Tensor2D,
        ),
      ) as tf.Tensor2D;

    const load = tf.sum(mask, 0) as tf.Tensor1D; // [E]
    const aux = switchAux(load, probs, N, E, k);
    return { y, aux, load };
  });
  const { load } = out;
  return {
    ...out,
    get counts(): number[] {
      return Array.from(load.dataSync());
    },
  };
}
