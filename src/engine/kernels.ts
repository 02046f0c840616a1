/**
 * Backend-specific kernel additions, registered once when a backend starts.
 *
 * wasm: tfjs-backend-wasm has no UnsortedSegmentSum, so tf.gather (the embedding lookup)
 * has no gradient there. UnsortedSegmentSum(x[N, ...], ids[N], S) equals
 * ScatterNd(indices = ids as [N, 1], updates = x, shape = [S, ...]) because ScatterNd sums
 * duplicate indices; we register that as the wasm kernel (checked against cpu in tests).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendName } from './index.js';

const patched = new Set<BackendName>();

export function patchKernels(backend: BackendName): void {
  if (patched.has(backend)) return;
  patched.add(backend);
  if (backend === 'wasm') registerWasmUnsortedSegmentSum();
}

function registerWasmUnsortedSegmentSum(): void {
  if (tf.getKernel('UnsortedSegmentSum', 'wasm')) return;
  const scatter = tf.getKernel('ScatterNd', 'wasm');
  if (!scatter) throw new Error('wasm backend has no ScatterNd kernel to build UnsortedSegmentSum from');
  tf.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      const { numSegments } = attrs as unknown as { numSegments: number };
      const n = segmentIds.shape.reduce((a, b) => a * b, 1);
      // x: [...ids.shape, ...rest] -> updates [n, ...rest]; indices [n, 1] (same buffer as ids)
      const rest = x.shape.slice(segmentIds.shape.length);
      const indices: tf.TensorInfo = { dataId: segmentIds.dataId, shape: [n, 1], dtype: 'int32' };
      const updates: tf.TensorInfo = { dataId: x.dataId, shape: [n, ...rest], dtype: x.dtype };
      return scatter.kernelFunc({
        inputs: { indices, updates },
        backend,
        attrs: { shape: [numSegments, ...rest] } as unknown as tf.NamedAttrMap,
      });
    },
  });
}
