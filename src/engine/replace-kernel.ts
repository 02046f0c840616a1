/**
 * Replace a backend's kernel with a wrapper that may fall back to the original: the one
 * mechanism behind every kernel replacement in src/engine (wasm matmul, slices, sums; webgpu
 * Tile and AddN). The kernel's other config (setup/dispose functions) is kept.
 */
import * as tf from '@tensorflow/tfjs-core';

export function replaceKernel(
  kernelName: string,
  backendName: string,
  make: (original: tf.KernelFunc) => tf.KernelFunc,
): void {
  const k = tf.getKernel(kernelName, backendName);
  if (!k) throw new Error(`backend "${backendName}" has no ${kernelName} kernel to replace`);
  tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({ ...k, kernelFunc: make(k.kernelFunc) });
}
