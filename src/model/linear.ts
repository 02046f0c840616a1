/**
 * A Linear layer as the model computes it: x2d[N, in] · W[in, out] (+ b[out]).
 * Always a plain, untransposed 2-D product: the wasm backend's fast path.
 */
import { tf } from '../engine/index.js';

export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor2D {
  if (x.rank !== 2 || w.rank !== 2 || x.shape[1] !== w.shape[0])
    throw new Error(`linear: x [${x.shape}] · W [${w.shape}] needs x [N, in] and W [in, out] with matching in`);
  const y = tf.matMul(x, w) as tf.Tensor2D; // [N, out]
  return b ? (tf.add(y, b) as tf.Tensor2D) : y;
}
