/**
 * Normalisations over the last axis (the channel axis C), any leading shape.
 *   layerNorm: (x - mean) / sqrt(var + eps) · g + b     (biased variance, as torch LayerNorm)
 *   rmsNorm:   x / sqrt(mean(x²) + eps) · g
 */
import { tf } from '../engine/index.js';

/** x: [..., C], g: [C], b: [C] or undefined (nanoGPT bias=False) -> [..., C] */
export function layerNorm<T extends tf.Tensor>(x: T, g: tf.Tensor1D, b?: tf.Tensor1D, eps = 1e-5): T {
  return tf.tidy(() => {
    const mean = tf.mean(x, -1, true); // [..., 1]
    const xc = tf.sub(x, mean); // [..., C]
    const variance = tf.mean(tf.square(xc), -1, true); // [..., 1]
    const y = tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, eps))), g);
    return (b ? tf.add(y, b) : y) as T;
  });
}

/** x: [..., C], g: [C] -> [..., C] */
export function rmsNorm<T extends tf.Tensor>(x: T, g: tf.Tensor1D, eps = 1e-5): T {
  return tf.tidy(() => {
    const ms = tf.mean(tf.square(x), -1, true); // [..., 1]
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), g) as T;
  });
}
