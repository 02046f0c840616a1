/**
 * Backend-specific kernel additions and replacements, registered once when a backend starts.
 *
 * wasm: tfjs-backend-wasm has no UnsortedSegmentSum, so tf.gather (the embedding lookup)
 * has no gradient there. UnsortedSegmentSum(x[N, ...], ids[N], S) equals
 * ScatterNd(indices = ids as [N, 1], updates = x, shape = [S, ...]) because ScatterNd sums
 * duplicate indices; we register that as the wasm kernel (checked against cpu in tests).
 *
 * wasm BatchMatMul: the shipped kernel reaches XNNPACK (fast, SIMD, threaded) only for
 * an untransposed product with batch 1 on both sides; every transposed or batched product
 * (all gradient products, the tied head x·Wᵀ, attention) runs a scalar loop 10-20x slower.
 * The replacement below re-expresses every product as untransposed ones:
 *   - transposes are materialised with the wasm Transpose kernel, choosing between
 *     out = op(A)·op(B) and out = (op(B)ᵀ·op(A)ᵀ)ᵀ by the number of floats moved;
 *   - a batched A against an unbatched B is folded into one [batch·M, K] product;
 *   - other batched products run one XNNPACK product per batch entry on zero-copy views
 *     (tensor ids registered at offsets inside the batched buffers).
 * Results equal the original kernel's to float rounding (test/kernels.test.ts).
 * If the optional native addon is built (native/, src/engine/native.ts), BatchMatMul runs there
 * instead (AVX-512/AVX2 register-blocked SGEMM on the wasm heap, 3-5x XNNPACK's wasm SIMD);
 * CEG_NATIVE=0 turns it off. Its absence is announced once and the wasm path is used.
 *
 * wasm Slice / SplitV: the shipped Slice copies the whole input out of the wasm heap
 * (readSync) for every slice, so splitting qkv [B·T, 3C] in three copied it three times.
 * The replacement moves only the sliced rows, inside the heap (copyWithin); SplitV uses it.
 *
 * wasm Identity (tf.clone, and many gradients): the shipped kernel copies the tensor; the
 * replacement shares the buffer by reference count, as the cpu backend and wasm's own Reshape do
 * (tfjs kernels never write into their inputs).
 *
 * wasm Sum over leading axes (every bias gradient: Σ over the B·T rows of dy [B·T, C]): the
 * shipped kernel transposes the whole input first; the replacement accumulates rows in place.
 * Set CEG_KERNELS=stock to keep the shipped kernels (for before/after measurements).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendName } from './index.js';
import { replaceKernel } from './replace-kernel.js';
import { blasName, loadNative, type NativeAddon } from './native.js';
import { registerFusedKernels } from './fused.js';
import { readEnv } from '../env.js';

const patched = new Set<BackendName>();

export function patchKernels(backend: BackendName): void {
  if (patched.has(backend)) return;
  patched.add(backend);
  registerFusedKernels(backend);
  if (backend === 'wasm') {
    registerWasmUnsortedSegmentSum();
    const mode = readEnv('CEG_KERNELS');
    if (mode !== 'stock') {
      registerWasmBatchMatMul();
      registerWasmSlice();
      registerWasmIdentity();
      registerWasmSum();
      registerWasmGather();
    }
  }
}

/** Which optional kernel replacements are active for a backend (for run metadata). */
export function kernelPatches(backend: BackendName): string[] {
  if (backend !== 'wasm' || !patched.has('wasm')) return [];
  if (!replacedMatMul) return [];
  const blas = nativeMatMul ? blasName() : null; // the system OpenBLAS's cblas_sgemm serves the addon's products
  return [
    'BatchMatMul',
    'Slice',
    'SplitV',
    'Identity',
    'Sum',
    'GatherV2',
    ...(nativeMatMul ? [`BatchMatMul:native-${nativeMatMul.isa}`] : []),
    ...(blas ? [`BatchMatMul:${blas}`] : []),
  ];
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

// ---------------------------------------------------------------------------------------
// BatchMatMul on wasm

/** The parts of tfjs-backend-wasm's BackendWasm this file uses (pinned 4.22.0). */
interface WasmBackendLike {
  wasm: {
    cwrap: (name: string, ret: null, args: string[]) => (...a: unknown[]) => void;
    tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void };
  };
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

type RawMatMul = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: boolean,
  transposeB: boolean,
  outId: number,
) => void;

let replacedMatMul = false;
/** the native addon serving BatchMatMul, if loaded (and the heap is not shared with wasm threads) */
let nativeMatMul: NativeAddon | null = null;
const F32 = 4;

function registerWasmBatchMatMul(): void {
  const transposeK = tf.getKernel('Transpose', 'wasm');
  if (!transposeK) throw new Error('wasm backend lacks Transpose; cannot patch matmul');
  let raw: RawMatMul | null = null;
  nativeMatMul = loadNative();
  replaceKernel('BatchMatMul', 'wasm', (origFunc) => (args) => {
    const backend = args.backend as unknown as WasmBackendLike;
    raw ??= backend.wasm.cwrap('BatchMatMul', null, [
      'number',
      'array',
      'number',
      'number',
      'array',
      'number',
      'number',
      'number',
      'number',
    ]) as unknown as RawMatMul;
    if (nativeMatMul) {
      const r = nativeBatchMatMul(args, backend as WasmHeapBackend, nativeMatMul);
      if (r) return r;
    }
    return fastBatchMatMul(args, backend, raw, origFunc, transposeK.kernelFunc);
  });
  replacedMatMul = true;
}

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
const bytes = (shape: number[]) => new Uint8Array(new Int32Array(shape).buffer);

/**
 * BatchMatMul by the native addon, reading and writing the wasm heap in place. Returns null for
 * what it does not handle (other dtypes, batch shapes that broadcast other than one side being 1,
 * a heap shared with wasm threads), which then goes to the wasm path.
 */
function nativeBatchMatMul(
  args: Parameters<tf.KernelFunc>[0],
  backend: WasmHeapBackend,
  addon: NativeAddon,
): tf.TensorInfo | null {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return null;
  if (backend.wasm.HEAPU8.buffer instanceof SharedArrayBuffer) return null;
  const ar = a.shape.length;
  const br = b.shape.length;
  const batchA = prod(a.shape.slice(0, -2));
  const batchB = prod(b.shape.slice(0, -2));
  const M = transposeA ? a.shape[ar - 1] : a.shape[ar - 2];
  const K = transposeA ? a.shape[ar - 2] : a.shape[ar - 1];
  const Kb = transposeB ? b.shape[br - 1] : b.shape[br - 2];
  const N = transposeB ? b.shape[br - 2] : b.shape[br - 1];
  if (K !== Kb || M * N * K === 0) return null;
  const sameBatch = batchA === batchB && a.shape.slice(0, -2).join() === b.shape.slice(0, -2).join();
  if (!sameBatch && batchA !== 1 && batchB !== 1) return null;
  const outShape = [...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), M, N];
  const batch = Math.max(batchA, batchB);
  const out = backend.makeOutput(outShape, 'float32'); // may grow the heap: read offsets and the heap after
  const off = (t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset / F32;
  const heap = new Float32Array(backend.wasm.HEAPU8.buffer);
  if (batchB === 1 && !transposeA) {
    // A's batch entries are contiguous rows: one [batch·M, K] product
    addon.matmul(heap, off(a), off(b), off(out), 1, batch * M, N, K, false, transposeB, 0, 0);
  } else {
    addon.matmul(
      heap,
      off(a),
      off(b),
      off(out),
      batch,
      M,
      N,
      K,
      transposeA,
      transposeB,
      batchA === 1 ? 0 : M * K,
      batchB === 1 ? 0 : K * N,
    );
  }
  return out;
}

/** A float32 tensor seen as [batch, rows, cols] (same buffer). */
interface M3 {
  info: tf.TensorInfo;
  batch: number;
  rows: number;
  cols: number;
  /** created here: dispose after use */
  temp: boolean;
}

function fastBatchMatMul(
  args: Parameters<tf.KernelFunc>[0],
  backend: WasmBackendLike,
  raw: RawMatMul,
  origFunc: tf.KernelFunc,
  transposeFunc: tf.KernelFunc,
): tf.TensorInfo | tf.TensorInfo[] {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) {
    return origFunc(args);
  }
  const ar = a.shape.length;
  const br = b.shape.length;
  const batchA = prod(a.shape.slice(0, -2));
  const batchB = prod(b.shape.slice(0, -2));
  const M = transposeA ? a.shape[ar - 1] : a.shape[ar - 2];
  const K = transposeA ? a.shape[ar - 2] : a.shape[ar - 1];
  const Kb = transposeB ? b.shape[br - 1] : b.shape[br - 2];
  const N = transposeB ? b.shape[br - 2] : b.shape[br - 1];
  const plain = !transposeA && !transposeB && batchA === 1 && batchB === 1;
  // Shapes the original handles best, or rejects with its own message.
  if (plain || K !== Kb || (batchA !== batchB && batchA !== 1 && batchB !== 1) || M * N * K === 0) {
    return origFunc(args);
  }
  const outShape = [...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), M, N];
  const batch = Math.max(batchA, batchB);
  const A: M3 = { info: a, batch: batchA, rows: transposeA ? K : M, cols: transposeA ? M : K, temp: false };
  const B: M3 = { info: b, batch: batchB, rows: transposeB ? N : K, cols: transposeB ? K : N, temp: false };
  const T = (x: M3): M3 => {
    const info = transposeFunc({
      inputs: { x: { dataId: x.info.dataId, shape: [x.batch, x.rows, x.cols], dtype: 'float32' } },
      backend: args.backend,
      attrs: { perm: [0, 2, 1] } as unknown as tf.NamedAttrMap,
    }) as tf.TensorInfo;
    return { info, batch: x.batch, rows: x.cols, cols: x.rows, temp: true };
  };
  // Floats moved (transposes, XNNPACK weight packing of the right operand, output transpose).
  const costDirect = (transposeA ? batchA * M * K : 0) + (transposeB ? batchB * K * N : 0) + batchB * K * N;
  const costSwapped =
    (transposeB ? 0 : batchB * K * N) + (transposeA ? 0 : batchA * M * K) + batchA * K * M + batch * M * N;
  const temps: M3[] = [];
  const keep = (x: M3) => {
    if (x.temp) temps.push(x);
    return x;
  };
  let out: tf.TensorInfo;
  if (costDirect <= costSwapped) {
    const X = keep(transposeA ? T(A) : A); // [batchA, M, K]
    const Y = keep(transposeB ? T(B) : B); // [batchB, K, N]
    out = plainProduct(X, Y, backend, raw);
  } else {
    const X = keep(transposeB ? B : T(B)); // op(B)ᵀ: [batchB, N, K]
    const Y = keep(transposeA ? A : T(A)); // op(A)ᵀ: [batchA, K, M]
    const outT = plainProduct(X, Y, backend, raw); // [batch, N, M]
    const o = T({ info: outT, batch, rows: N, cols: M, temp: true });
    backend.disposeData(outT.dataId);
    out = o.info;
  }
  for (const t of temps) backend.disposeData(t.info.dataId);
  return { dataId: out.dataId, shape: outShape, dtype: 'float32' };
}

/** out[b] = X[b]·Y[b] with XNNPACK; X [bx, m, k], Y [by, k, n], bx == by or one of them 1. */
function plainProduct(X: M3, Y: M3, backend: WasmBackendLike, raw: RawMatMul): tf.TensorInfo {
  const m = X.rows;
  const k = X.cols;
  const n = Y.cols;
  const batch = Math.max(X.batch, Y.batch);
  const out = backend.makeOutput([batch, m, n], 'float32');
  const outId = backend.dataIdMap.get(out.dataId).id;
  const xd = backend.dataIdMap.get(X.info.dataId);
  const yd = backend.dataIdMap.get(Y.info.dataId);
  if (Y.batch === 1) {
    // one product: [batch·m, k]·[k, n] (X's batch entries are contiguous rows)
    raw(xd.id, bytes([1, X.batch * m, k]), 3, yd.id, bytes([1, k, n]), 3, false, false, outId);
    return out;
  }
  const od = backend.dataIdMap.get(out.dataId);
  const { tfjs } = backend.wasm;
  const xShape = bytes([1, m, k]);
  const yShape = bytes([1, k, n]);
  for (let i = 0; i < batch; i++) {
    const xi = X.batch === 1 ? xd.id : view(backend, xd.memoryOffset + i * m * k * F32, m * k);
    const yi = view(backend, yd.memoryOffset + i * k * n * F32, k * n);
    const oi = view(backend, od.memoryOffset + i * m * n * F32, m * n);
    raw(xi, xShape, 3, yi, yShape, 3, false, false, oi);
    // disposing the view ids also drops XNNPACK's operator cached on the weights id
    if (xi !== xd.id) tfjs.disposeData(xi);
    tfjs.disposeData(yi);
    tfjs.disposeData(oi);
  }
  return out;
}

/** Register a tensor id over `size` floats at byte `offset` inside an existing buffer (no copy, no ownership). */
function view(backend: WasmBackendLike, offset: number, size: number): number {
  const id = backend.dataIdNextNumber++;
  backend.wasm.tfjs.registerTensor(id, size, offset);
  return id;
}

// ---------------------------------------------------------------------------------------
// Slice and SplitV on wasm

interface WasmHeapBackend extends WasmBackendLike {
  wasm: WasmBackendLike['wasm'] & { HEAPU8: Uint8Array };
}

function registerWasmSlice(): void {
  replaceKernel('Slice', 'wasm', (origSlice) => (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string') return origSlice(args);
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
    const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    return heapSlice(args.backend as unknown as WasmHeapBackend, x, b, s);
  });
  replaceKernel('SplitV', 'wasm', (origSplit) => (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string') return origSplit(args);
    const { numOrSizeSplits, axis } = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
    const begin = new Array(x.shape.length).fill(0);
    return sizes.map((n) => {
      const size = x.shape.slice();
      size[ax] = n;
      const out = heapSlice(args.backend as unknown as WasmHeapBackend, x, begin.slice(), size);
      begin[ax] += n;
      return out;
    });
  });
}

/**
 * wasm GatherV2 along axis 0 without batch dims (the embedding lookup x[ids]): the shipped kernel
 * spends ~2 us per gathered row at the study's sizes (4.5 ms for 2048 rows of 72 floats, 4% of
 * an n270k step); rows are copied inside the heap instead. Indices out of range throw, as tf.gather
 * documents for CPU backends. Other cases go to the shipped kernel.
 */
function registerWasmGather(): void {
  replaceKernel('GatherV2', 'wasm', (origGather) => (args) => {
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = args.attrs as unknown as { axis: number; batchDims: number };
    if (
      x.dtype === 'string' ||
      indices.dtype !== 'int32' ||
      (batchDims ?? 0) !== 0 ||
      x.shape.length < 1 ||
      tf.util.parseAxisParam(axis, x.shape)[0] !== 0
    )
      return origGather(args);
    const backend = args.backend as unknown as WasmHeapBackend;
    const rows = x.shape[0];
    const run = prod(x.shape.slice(1));
    const n = prod(indices.shape);
    const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype); // may grow the heap
    if (n === 0 || run === 0) return out;
    const bpe = tf.util.bytesPerElement(x.dtype);
    const heap = backend.wasm.HEAPU8;
    const src = backend.dataIdMap.get(x.dataId).memoryOffset;
    const dst = backend.dataIdMap.get(out.dataId).memoryOffset;
    const ids = new Int32Array(heap.buffer, backend.dataIdMap.get(indices.dataId).memoryOffset, n);
    const bytes = run * bpe;
    for (let i = 0; i < n; i++) {
      const r = ids[i];
      if (!(r >= 0 && r < rows)) {
        backend.disposeData(out.dataId);
        throw new Error(`GatherV2: index ${r} at position ${i} is not in [0, ${rows - 1}]`);
      }
      heap.copyWithin(dst + i * bytes, src + r * bytes, src + (r + 1) * bytes);
    }
    return out;
  });
}

/** out = x[begin : begin + size], copied row by row inside the wasm heap. */
function heapSlice(backend: WasmHeapBackend, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
  const out = backend.makeOutput(size, x.dtype); // may grow the heap: read offsets and HEAPU8 after
  const n = prod(size);
  if (n === 0) return out;
  const bpe = tf.util.bytesPerElement(x.dtype);
  const src = backend.dataIdMap.get(x.dataId).memoryOffset;
  const dst = backend.dataIdMap.get(out.dataId).memoryOffset;
  const heap = backend.wasm.HEAPU8;
  const rank = x.shape.length;
  // merge trailing dimensions taken whole into one contiguous run
  let d = rank - 1;
  let run = size[d];
  while (d > 0 && size[d] === x.shape[d] && begin[d] === 0) {
    d -= 1;
    run *= size[d];
  }
  // d is the innermost dimension not taken whole (run covers dims d..rank-1 of the slice)
  const strides = tf.util.computeStrides(x.shape); // strides of dims 0..rank-2, in elements
  const stride = (i: number) => (i === rank - 1 ? 1 : strides[i]);
  let base = 0;
  for (let i = 0; i < rank; i++) base += begin[i] * stride(i);
  const rows = n / run;
  const idx = new Array(d).fill(0); // odometer over dims 0..d-1
  let off = base;
  for (let r = 0; r < rows; r++) {
    heap.copyWithin(dst + r * run * bpe, src + off * bpe, src + (off + run) * bpe);
    for (let i = d - 1; i >= 0; i--) {
      idx[i] += 1;
      off += stride(i);
      if (idx[i] < size[i]) break;
      off -= size[i] * stride(i);
      idx[i] = 0;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Identity and Sum on wasm

function registerWasmIdentity(): void {
  replaceKernel('Identity', 'wasm', (orig) => (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string') return orig(args);
    (args.backend as unknown as { incRef(d: object): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
  });
}

function registerWasmSum(): void {
  replaceKernel('Sum', 'wasm', (orig) => (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    if (x.dtype !== 'float32') return orig(args);
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const r = axes.length;
    // only leading axes 0..r-1, with something left over (other reductions go to the shipped kernel)
    if (r === 0 || r >= x.shape.length || axes.some((a, i) => a !== i)) return orig(args);
    const rows = prod(x.shape.slice(0, r));
    const cols = prod(x.shape.slice(r));
    const backend = args.backend as unknown as WasmHeapBackend;
    const outShape = keepDims ? [...new Array(r).fill(1), ...x.shape.slice(r)] : x.shape.slice(r);
    const out = backend.makeOutput(outShape, 'float32'); // may grow the heap: read offsets after
    const heap = new Float32Array(backend.wasm.HEAPU8.buffer);
    const src = backend.dataIdMap.get(x.dataId).memoryOffset / F32;
    const dst = backend.dataIdMap.get(out.dataId).memoryOffset / F32;
    if (nativeMatMul && !(heap.buffer instanceof SharedArrayBuffer)) nativeMatMul.colsum(heap, src, rows, cols, dst);
    else columnSums(heap, src, rows, cols, dst);
    return out;
  });
}

/** heap[dst + c] = Σ_r heap[src + r·cols + c], accumulated in float64 blocks of columns. */
function columnSums(heap: Float32Array, src: number, rows: number, cols: number, dst: number): void {
  const BLOCK = 1024;
  const acc = new Float64Array(Math.min(cols, BLOCK));
  for (let c0 = 0; c0 < cols; c0 += BLOCK) {
    const w = Math.min(BLOCK, cols - c0);
    acc.fill(0, 0, w);
    for (let r = 0; r < rows; r++) {
      const base = src + r * cols + c0;
      for (let c = 0; c < w; c++) acc[c] += heap[base + c];
    }
    for (let c = 0; c < w; c++) heap[dst + c0 + c] = acc[c];
  }
}
