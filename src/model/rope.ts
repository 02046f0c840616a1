/**
 * Rotary position embeddings (Su et al. 2021), GPT-NeoX "half-split" pairing:
 * channel i is paired with channel i + hs/2 (i < hs/2), and the pair at position m is
 * rotated by the angle m·θ_i with θ_i = base^(-2i/hs):
 *   out_i        = x_i·cos(mθ_i) − x_{i+hs/2}·sin(mθ_i)
 *   out_{i+hs/2} = x_i·sin(mθ_i) + x_{i+hs/2}·cos(mθ_i)
 * Then q_m·k_n depends on positions only through m − n.
 */
import { tf } from '../engine/index.js';

interface Tables {
  cos: Float32Array; // [T, hs]: cos(mθ_i) in both halves
  sin: Float32Array; // [T, hs]
}
const cache = new Map<string, Tables>();

/** The cos/sin tables for positions 0..T-1 (plain arrays, cached per (T, hs, base)). */
export function ropeTables(T: number, hs: number, base: number): Tables {
  if (hs % 2 !== 0) throw new Error(`RoPE needs an even head size, got ${hs}`);
  const key = `${T}/${hs}/${base}`;
  let t = cache.get(key);
  if (!t) {
    const half = hs / 2;
    const cos = new Float32Array(T * hs);
    const sin = new Float32Array(T * hs);
    for (let m = 0; m < T; m++)
      for (let i = 0; i < half; i++) {
        const a = m * Math.pow(base, (-2 * i) / hs);
        cos[m * hs + i] = cos[m * hs + i + half] = Math.cos(a);
        sin[m * hs + i] = sin[m * hs + i + half] = Math.sin(a);
      }
    t = { cos, sin };
    cache.set(key, t);
  }
  return t;
}

/**
 * x: [B, H, T, hs] -> [B, H, T, hs], rotated. `offset` is the position of x's first token
 * (0 in training; the tests use it to shift positions).
 */
export function applyRope(x: tf.Tensor4D, base: number, offset = 0): tf.Tensor4D {
  return tf.tidy(() => {
    const [, , T, hs] = x.shape;
    const tab = ropeTables(T + offset, hs, base);
    const cos = tf.tensor2d(tab.cos.subarray(offset * hs), [T, hs]); // broadcasts over [B, H]
    const sin = tf.tensor2d(tab.sin.subarray(offset * hs), [T, hs]);
    const [x1, x2] = tf.split(x, 2, 3); // [B, H, T, hs/2] each
    const rotated = tf.concat([tf.neg(x2), x1], 3); // rotate_half(x)
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tf.Tensor4D;
  });
}
