/** Measurements shown in the notebooks: time and peak memory of the attention kernels. */
import * as aq from 'arquero';
import { tf } from '../engine/index.js';
import { peakBufferBytes } from '../engine/memory.js';
import { attend, type AttendOptions } from '../model/attention/index.js';

type Table = ReturnType<typeof aq.from>;

/**
 * Time and peak memory of attention kernels, forward + backward (gradients of sum(out ∘ w)
 * with respect to q, k, v, read back), on the running backend. q, k, v: [B, H, T, hs].
 * peak_mib_fwd_bwd: high-water mark of live buffers above the inputs (peakBufferBytes);
 * ms_fwd_bwd: median of `repeats` timed runs after one warm-up; scores_mib: one [B, H, T, T]
 * float32 score matrix, for scale.
 */
export function measureAttention(o: {
  T: number[];
  kernels: ('plain' | 'fused' | 'sparse')[];
  B?: number;
  H?: number;
  hs?: number;
  repeats?: number;
  fusedBlock?: number;
}): Table {
  const B = o.B ?? 4,
    H = o.H ?? 4,
    hs = o.hs ?? 32,
    repeats = o.repeats ?? 3;
  const rows: Record<string, unknown>[] = [];
  for (const T of o.T) {
    const q = tf.randomNormal([B, H, T, hs], 0, 1, 'float32', 1) as tf.Tensor4D;
    const k = tf.randomNormal([B, H, T, hs], 0, 1, 'float32', 2) as tf.Tensor4D;
    const v = tf.randomNormal([B, H, T, hs], 0, 1, 'float32', 3) as tf.Tensor4D;
    const w = tf.randomNormal([B, H, T, hs], 0, 1, 'float32', 4) as tf.Tensor4D;
    for (const kernel of o.kernels) {
      const opts: AttendOptions = {
        dropout: 0,
        training: false,
        seed: 0,
        fusedBlock: o.fusedBlock,
        sparse: { blockSize: Math.max(1, Math.min(32, Math.floor(T / 4))), localBlocks: 1, selectedBlocks: 1 },
      };
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.mul(attend(kernel, a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, opts), w)) as tf.Scalar;
      const once = () => {
        const gs = tf.tidy(() => tf.grads(f)([q, k, v]));
        gs.forEach((g) => g.dataSync());
        tf.dispose(gs);
      };
      const { peak } = peakBufferBytes(once); // also the warm-up
      const times: number[] = [];
      for (let r = 0; r < repeats; r++) {
        const t0 = performance.now();
        once();
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      rows.push({
        T,
        kernel,
        ms_fwd_bwd: times[Math.floor(times.length / 2)],
        peak_mib_fwd_bwd: peak / 2 ** 20,
        scores_mib: (B * H * T * T * 4) / 2 ** 20,
      });
    }
    tf.dispose([q, k, v, w]);
  }
  return aq.from(rows);
}
