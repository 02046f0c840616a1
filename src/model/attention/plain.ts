/**
 * Plain masked-softmax causal attention, as nanoGPT's non-flash path:
 *   att = softmax(mask(q·kᵀ / sqrt(hs))) ; dropout(att) ; y = att·v
 * Grouped K/V (MQA/GQA) are expanded to the query heads by repetition.
 */
import { tf } from '../../engine/index.js';
import type { AttendOptions } from './index.js';
import { causalSoftmax } from '../../engine/fused.js';

/** Repeat each of Hkv key/value heads H/Hkv times: [B, Hkv, T, hs] -> [B, H, T, hs]. */
export function repeatKv(x: tf.Tensor4D, nHead: number): tf.Tensor4D {
  const [B, Hkv, T, hs] = x.shape;
  if (Hkv === nHead) return x;
  const g = nHead / Hkv;
  // [B·Hkv, 1, T, hs] -> tile -> [B·Hkv, g, T, hs] -> [B, H, T, hs]; head h uses kv head floor(h / g).
  // (rank 4, because tfjs has no gradient for tile of rank 5)
  return tf.reshape(tf.tile(tf.reshape(x, [B * Hkv, 1, T, hs]), [1, g, 1, 1]), [B, nHead, T, hs]);
}

/** Additive causal mask [T, T]: 0 on and below the diagonal, -1e9 above. Built once per (backend, T) and kept. */
export function causalMask(T: number): tf.Tensor2D {
  const key = `${tf.getBackend()}:${T}`;
  let m = maskCache.get(key);
  if (!m || m.isDisposed) {
    m = tf.keep(
      tf.tidy(() => {
        const lower = tf.linalg.bandPart(tf.ones([T, T]), -1, 0) as tf.Tensor2D;
        return tf.mul(tf.sub(1, lower), -1e9) as tf.Tensor2D;
      }),
    );
    maskCache.set(key, m);
  }
  return m;
}
const maskCache = new Map<string, tf.Tensor2D>();

export function plainAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, opts: AttendOptions): tf.Tensor4D {
  return tf.tidy(() => {
    const [, H, , hs] = q.shape;
    const kk = repeatKv(k, H);
    const vv = repeatKv(v, H);
    // softmax(q·kᵀ/sqrt(hs) + causal mask) as one fused kernel (src/engine/fused.ts; tf ops off wasm/cpu)
    let att = causalSoftmax(tf.matMul(q, kk, false, true), 1 / Math.sqrt(hs)); // [B, H, T, T]
    if (opts.training && opts.dropout > 0) att = tf.dropout(att, opts.dropout, undefined, opts.seed);
    return tf.matMul(att, vv) as tf.Tensor4D; // [B, H, T, hs]
  });
}
