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
 *          Only the chosen experts' work is computed: tokens are gathered per expert.
 *          aux (Switch load-balancing loss) = E · Σ_e f_e · P_e, f_e = (top-k assignments to e)/(N·k),
 *          P_e = mean over tokens of p_e; f is a constant (no gradient), P carries the gradient.
 */
import { tf } from '../engine/index.js';
import type { ModelConfig } from '../config.js';
import type { Params } from './params.js';
import { getParam } from './params.js';
import { linear } from './linear.js';

/** Exact GELU: 0.5·x·(1 + erf(x/√2)). */
export function gelu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))) as T);
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

export interface MoEResult {
  y: tf.Tensor2D; // [N, C]
  aux: tf.Scalar; // load-balancing loss of this layer
  /** tokens routed to each expert (top-k assignments; sums to N·k) */
  counts: number[];
}

/** Top-k routing decisions as plain arrays: idx[n*k + j] = expert of token n's j-th choice. */
function routeTopK(probs: tf.Tensor2D, k: number): Int32Array {
  return tf.tidy(() => tf.topk(probs, k, true).indices.dataSync() as Int32Array);
}

/** Mixture of experts: x [N, C] -> y [N, C], aux, per-expert token counts. */
export function moeMlp(params: Params, prefix: string, x: tf.Tensor2D, moe: ModelConfig['moe']): MoEResult {
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
      const tokens = tf.tensor1d(rows[e].map((a) => Math.floor(a / k)), 'int32'); // [n_e]
      parts.push(geluMlp(params, `${prefix}.experts.${e}`, tf.gather(x, tokens) as tf.Tensor2D)); // [n_e, C]
      rows[e].forEach((a, r) => (pos[a] = offset + r));
      offset += rows[e].length;
    }
    const all = parts.length === 1 ? parts[0] : tf.concat(parts, 0); // [N·k, C]
    const chosen = tf.reshape(tf.gather(all, tf.tensor1d(pos, 'int32')), [N, k, -1]); // [N, k, C]
    const y = tf.sum(tf.mul(chosen, tf.expandDims(w, 2)), 1) as tf.Tensor2D; // [N, C]

    const f = tf.tensor1d(counts.map((c) => c / (N * k))); // [E], constant
    const P = tf.mean(probs, 0); // [E]
    const aux = tf.mul(E, tf.sum(tf.mul(f, P))) as tf.Scalar;
    return { y, aux };
  });
  return { ...out, counts };
}
