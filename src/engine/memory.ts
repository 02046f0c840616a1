/** Exact tensor-buffer memory of a computation, by watching the engine (notebooks, benches). */
import { tf } from './index.js';

/**
 * High-water mark of the bytes of distinct live tensor buffers while `run` executes, minus
 * what was live before (also what bench/attention.ts measures): the engine's trackTensor and
 * removeDataId are wrapped for the duration, so every buffer the backend allocates is counted
 * once (a reshape view shares its buffer and is not counted twice), and the peak is exact,
 * not sampled after the fact. Returns the peak in bytes and run's result.
 */
export function peakBufferBytes<T>(run: () => T): { peak: number; result: T } {
  type Eng = {
    trackTensor(a: tf.Tensor, backend: unknown): void;
    removeDataId(dataId: object, backend: unknown): void;
  };
  const eng = tf.engine() as unknown as Eng;
  const live = new Map<object, number>();
  let bytes = 0;
  let peak = 0;
  const track = eng.trackTensor;
  const remove = eng.removeDataId;
  eng.trackTensor = function (a, backend) {
    if (!live.has(a.dataId) && a.dtype !== 'string') {
      const n = a.size * (a.dtype === 'complex64' ? 8 : 4);
      live.set(a.dataId, n);
      bytes += n;
      peak = Math.max(peak, bytes);
    }
    return track.call(this, a, backend);
  };
  eng.removeDataId = function (dataId, backend) {
    bytes -= live.get(dataId) ?? 0;
    live.delete(dataId);
    return remove.call(this, dataId, backend);
  };
  try {
    const result = run();
    return { peak, result };
  } finally {
    eng.trackTensor = track;
    eng.removeDataId = remove;
  }
}
