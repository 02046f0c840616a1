/**
 * Fused ops with custom gradients: one kernel forward and one backward instead of chains of
 * elementwise tf ops (each a full pass over memory, plus their gradients).
 *
 *   softmaxCrossEntropy(logits [N, V], targets [N] int32) -> mean_n(logsumexp(logits_n) − logits_n[t_n])
 *       forward: one pass per row (max, Σexp, pick); saves lse [N]
 *       backward: dlogits = (softmax − onehot(t)) · dy / N, one pass
 *   gelu(x) = 0.5·x·(1 + erf(x/√2))   (exact GELU; erf by Abramowitz–Stegun 7.1.26, as tfjs's Erf)
 *       backward: dx = dy·(0.5·(1 + erf(x/√2)) + x·exp(−x²/2)/√(2π))
 *   causalSoftmax(scores [..., T, T], scale) = softmax(scale·scores + causal mask) over the last axis
 *       (query i attends keys j ≤ i; the rest exactly 0, as the additive −1e9 mask gives): one pass
 *       instead of scale, mask-add and softmax; backward dx = scale·y·(dy − Σ dy·y), one pass
 *   causalAttention(qkv [B·T, 3C], B, T, H) -> y [B·T, C]: softmax(q·kᵀ/√hs + causal mask)·v per head,
 *       from the packed projection to the merged heads in one native kernel (and one backward), instead
 *       of a split, head transposes, two batched products, the causal softmax and a transpose back;
 *       native addon on wasm only, else exactly the tf-ops chain of the model (causalAttentionTfOps)
 *   sumOfSquares([t0, t1, ...]) = Σ_i Σ t_i² as one kernel (the global gradient norm of clipping)
 *       instead of a Square and a Sum per tensor and an AddN; no gradient
 *   adamwUpdate(p, m, v, g, h[, gscale]) -> [p', m', v']: one pass of AdamW instead of ~12 elementwise ops,
 *       on the gradient g·gscale (gradient clipping's coefficient folded in: no Multiply per tensor)
 *       m' = β1·m + (1−β1)·g ; v' = β2·v + (1−β2)·g² ; p' = p·decay − lr·(m'/bc1)/(sqrt(v'/bc2) + ε)
 *
 * Kernels run as plain loops over the tensors' memory (the wasm heap or the cpu backend's
 * arrays), registered for 'wasm' and 'cpu' by registerFusedKernels(). On wasm, when the optional
 * native addon is built (native/), the same loops run there, vectorised (AVX-512/AVX2; exp by the
 * Cephes polynomial): JS's Math.exp made the JS version slower than tf ops at a 50k vocabulary. On other backends (webgpu,
 * tensorflow) and with CEG_KERNELS=stock the ops compute the same formulas with tf ops.
 * Tested against plain-loop references, values and gradients (test/kernels.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadNative, type NativeAddon } from './native.js';
import { readEnv } from '../env.js';

const CE = 'CegSoftmaxCrossEntropy';
const CE_GRAD = 'CegSoftmaxCrossEntropyGrad';
const GELU = 'CegGelu';
const GELU_GRAD = 'CegGeluGrad';
const ADAMW = 'CegAdamW';
const CSM = 'CegCausalSoftmax';
const SUMSQ = 'CegSumSquares';
const CSM_GRAD = 'CegCausalSoftmaxGrad';
const ATTN = 'CegCausalAttention';
const ATTN_GRAD = 'CegCausalAttentionGrad';

/** AdamW hyper-parameters of one update (decay = 1 − lr·wd for decayed tensors, else 1; bc = 1 − βᵗ). */
export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  decay: number;
  bc1: number;
  bc2: number;
}

// ---------------------------------------------------------------------------------------
// memory access per backend

interface Mem {
  /** float32 / int32 view of a tensor's data (valid until the next allocation) */
  f32(t: tf.TensorInfo): Float32Array;
  i32(t: tf.TensorInfo): Int32Array;
  /** allocate an output; `fill` writes into its view */
  out(shape: number[], fill: (o: Float32Array) => void): tf.TensorInfo;
}

interface WasmLike {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(d: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}
interface CpuLike {
  data: { get(d: object): { values: tf.backend_util.BackendValues } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

function wasmMem(b: WasmLike): Mem {
  const at = (t: tf.TensorInfo) => b.dataIdMap.get(t.dataId).memoryOffset;
  return {
    f32: (t) => new Float32Array(b.wasm.HEAPU8.buffer, at(t), size(t.shape)),
    i32: (t) => new Int32Array(b.wasm.HEAPU8.buffer, at(t), size(t.shape)),
    out: (shape, fill) => {
      const o = b.makeOutput(shape, 'float32');
      fill(new Float32Array(b.wasm.HEAPU8.buffer, at(o), size(shape)));
      return o;
    },
  };
}

function cpuMem(b: CpuLike): Mem {
  const vals = (t: tf.TensorInfo) => b.data.get(t.dataId).values;
  return {
    f32: (t) => {
      const v = vals(t);
      return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
    },
    i32: (t) => {
      const v = vals(t);
      return v instanceof Int32Array ? v : Int32Array.from(v as ArrayLike<number>);
    },
    out: (shape, fill) => {
      const o = new Float32Array(size(shape));
      fill(o);
      return b.makeTensorInfo(shape, 'float32', o);
    },
  };
}

// ---------------------------------------------------------------------------------------
// plain-loop kernels on arrays

/** loss = mean_n(lse_n − x[n, t_n]); lse written to `lse`. Returns the loss. */
export function ceForward(x: Float32Array, t: Int32Array, N: number, V: number, lse: Float32Array): number {
  let total = 0;
  for (let n = 0; n < N; n++) {
    const base = n * V;
    let m = -Infinity;
    for (let v = 0; v < V; v++) if (x[base + v] > m) m = x[base + v];
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(x[base + v] - m);
    const l = m + Math.log(s);
    lse[n] = l;
    const tn = t[n];
    if (!(tn >= 0 && tn < V))
      throw new Error(`softmaxCrossEntropy: target ${tn} at row ${n} is outside the vocabulary 0..${V - 1}`);
    total += l - x[base + tn];
  }
  return total / N;
}

/** dx[n, v] = (exp(x[n, v] − lse_n) − [v = t_n]) · g / N */
export function ceBackward(
  x: Float32Array,
  t: Int32Array,
  lse: Float32Array,
  g: number,
  N: number,
  V: number,
  dx: Float32Array,
): void {
  const s = g / N;
  for (let n = 0; n < N; n++) {
    const base = n * V;
    const l = lse[n];
    for (let v = 0; v < V; v++) dx[base + v] = Math.exp(x[base + v] - l) * s;
    dx[base + t[n]] -= s;
  }
}

const P = 0.3275911,
  A1 = 0.254829592,
  A2 = -0.284496736,
  A3 = 1.421413741,
  A4 = -1.453152027,
  A5 = 1.061405429;
const INV_SQRT2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

export function geluForward(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) {
    const xi = x[i];
    const z = xi * INV_SQRT2;
    const az = Math.abs(z);
    const t = 1 / (1 + P * az);
    const e = 1 - ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t * Math.exp(-az * az);
    y[i] = 0.5 * xi * (1 + (z < 0 ? -e : e));
  }
}

export function geluBackward(dy: Float32Array, x: Float32Array, dx: Float32Array): void {
  for (let i = 0; i < x.length; i++) {
    const xi = x[i];
    const z = xi * INV_SQRT2;
    const az = Math.abs(z);
    const t = 1 / (1 + P * az);
    const g = Math.exp(-az * az);
    const e = 1 - ((((A5 * t + A4) * t + A3) * t + A2) * t + A1) * t * g;
    dx[i] = dy[i] * (0.5 * (1 + (z < 0 ? -e : e)) + xi * g * INV_SQRT_2PI);
  }
}

/** Causal softmax of x [rows, T] (row r is query r mod T), scaled; plain loops (cpu backend, no addon). */
export function causalSoftmaxLoop(x: Float32Array, rows: number, T: number, scale: number, y: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * T;
    const n = (r % T) + 1;
    let m = -Infinity;
    for (let j = 0; j < n; j++) m = Math.max(m, Math.fround(x[o + j] * scale));
    let s = 0;
    for (let j = 0; j < n; j++) {
      const e = Math.exp(Math.fround(x[o + j] * scale) - m);
      y[o + j] = e;
      s += e;
    }
    for (let j = 0; j < n; j++) y[o + j] /= s;
    y.fill(0, o + n, o + T);
  }
}

/** dx = scale·y·(dy − Σ_j dy·y) per row (zero where y is masked). */
export function causalSoftmaxGradLoop(
  dy: Float32Array,
  y: Float32Array,
  rows: number,
  T: number,
  scale: number,
  dx: Float32Array,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * T;
    const n = (r % T) + 1;
    let d = 0;
    for (let j = 0; j < n; j++) d += dy[o + j] * y[o + j];
    for (let j = 0; j < n; j++) dx[o + j] = scale * y[o + j] * (dy[o + j] - d);
    dx.fill(0, o + n, o + T);
  }
}

export function adamwLoop(
  p: Float32Array,
  m: Float32Array,
  v: Float32Array,
  g: Float32Array,
  h: AdamWHyper,
  p1: Float32Array,
  m1: Float32Array,
  v1: Float32Array,
  gscale = 1,
): void {
  const { lr, beta1, beta2, eps, decay, bc1, bc2 } = h;
  for (let i = 0; i < p.length; i++) {
    const gi = gscale === 1 ? g[i] : Math.fround(g[i] * gscale);
    const mi = Math.fround(beta1 * m[i] + (1 - beta1) * gi);
    const vi = Math.fround(beta2 * v[i] + (1 - beta2) * gi * gi);
    m1[i] = mi;
    v1[i] = vi;
    p1[i] = p[i] * decay - lr * (mi / bc1 / (Math.sqrt(vi / bc2) + eps));
  }
}

// ---------------------------------------------------------------------------------------
// kernel registration

const registered = new Set<string>();

/** Register the fused kernels for 'wasm' or 'cpu' (other backends: nothing; the ops fall back to tf ops). */
export function registerFusedKernels(backendName: string): void {
  if (registered.has(backendName) || (backendName !== 'wasm' && backendName !== 'cpu')) return;
  registered.add(backendName);
  const mem = (b: unknown) => (backendName === 'wasm' ? wasmMem(b as WasmLike) : cpuMem(b as CpuLike));
  const addon = backendName === 'wasm' ? loadNative() : null;
  /** the native addon and offset/heap helpers, when it can serve this wasm backend (heap not shared with threads) */
  const nat = (b: unknown): { a: NativeAddon; heap: Float32Array; off: (t: tf.TensorInfo) => number } | null => {
    if (!addon || readEnv('CEG_NATIVE') === '0') return null;
    const w = b as WasmLike;
    if (w.wasm.HEAPU8.buffer instanceof SharedArrayBuffer) return null;
    return {
      a: addon,
      heap: new Float32Array(w.wasm.HEAPU8.buffer),
      off: (t) => w.dataIdMap.get(t.dataId).memoryOffset / 4,
    };
  };
  const reg = (kernelName: string, kernelFunc: tf.KernelFunc) => {
    if (!tf.getKernel(kernelName, backendName)) tf.registerKernel({ kernelName, backendName, kernelFunc });
  };
  reg(CE, ({ inputs, backend }) => {
    const { logits, targets } = inputs as { logits: tf.TensorInfo; targets: tf.TensorInfo };
    const [N, V] = logits.shape;
    const m = mem(backend);
    const lse = new Float32Array(N);
    let loss = 0;
    const lossOut = m.out([], () => {});
    const lseOut = m.out([N], () => {});
    const n = nat(backend);
    if (n) {
      loss = n.a.ceForward(n.heap, n.off(logits), n.off(targets), N, V, n.off(lseOut));
      if (Number.isNaN(loss)) ceForward(m.f32(logits), m.i32(targets), N, V, lse); // throws the clear error
      m.f32(lossOut)[0] = loss;
      return [lossOut, lseOut];
    }
    loss = ceForward(m.f32(logits), m.i32(targets), N, V, lse);
    m.f32(lossOut)[0] = loss;
    m.f32(lseOut).set(lse);
    return [lossOut, lseOut];
  });
  reg(CE_GRAD, ({ inputs, backend }) => {
    const { dy, logits, targets, lse } = inputs as Record<string, tf.TensorInfo>;
    const [N, V] = logits.shape;
    const m = mem(backend);
    const out = m.out([N, V], () => {});
    const n = nat(backend);
    if (n) {
      n.a.ceBackward(n.heap, n.off(logits), n.off(targets), n.off(lse), m.f32(dy)[0], N, V, n.off(out));
      return out;
    }
    ceBackward(m.f32(logits), m.i32(targets), m.f32(lse), m.f32(dy)[0], N, V, m.f32(out));
    return out;
  });
  reg(GELU, ({ inputs, backend }) => {
    const { x } = inputs as { x: tf.TensorInfo };
    const m = mem(backend);
    const out = m.out(x.shape, () => {});
    const n = nat(backend);
    if (n) n.a.geluForward(n.heap, n.off(x), size(x.shape), n.off(out));
    else geluForward(m.f32(x), m.f32(out));
    return out;
  });
  reg(GELU_GRAD, ({ inputs, backend }) => {
    const { dy, x } = inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
    const m = mem(backend);
    const out = m.out(x.shape, () => {});
    const n = nat(backend);
    if (n) n.a.geluBackward(n.heap, n.off(dy), n.off(x), size(x.shape), n.off(out));
    else geluBackward(m.f32(dy), m.f32(x), m.f32(out));
    return out;
  });
  reg(CSM, ({ inputs, backend, attrs }) => {
    const { x } = inputs as { x: tf.TensorInfo };
    const { scale } = attrs as unknown as { scale: number };
    const T = x.shape[x.shape.length - 1];
    const rows = size(x.shape) / T;
    const m = mem(backend);
    const out = m.out(x.shape, () => {});
    const n = nat(backend);
    if (n?.a.causalSoftmaxForward) n.a.causalSoftmaxForward(n.heap, n.off(x), rows, T, scale, n.off(out));
    else causalSoftmaxLoop(m.f32(x), rows, T, scale, m.f32(out));
    return out;
  });
  reg(CSM_GRAD, ({ inputs, backend, attrs }) => {
    const { dy, y } = inputs as { dy: tf.TensorInfo; y: tf.TensorInfo };
    const { scale } = attrs as unknown as { scale: number };
    const T = y.shape[y.shape.length - 1];
    const rows = size(y.shape) / T;
    const m = mem(backend);
    const out = m.out(y.shape, () => {});
    const n = nat(backend);
    if (n?.a.causalSoftmaxBackward) n.a.causalSoftmaxBackward(n.heap, n.off(dy), n.off(y), rows, T, scale, n.off(out));
    else causalSoftmaxGradLoop(m.f32(dy), m.f32(y), rows, T, scale, m.f32(out));
    return out;
  });
  if (addon && typeof addon.attnForward === 'function') {
    // native only: the op (causalAttention) uses these when nativeAttention() says the addon serves the heap
    const attnDims = (attrs: unknown) => attrs as unknown as { B: number; T: number; H: number; scale: number };
    reg(ATTN, ({ inputs, backend, attrs }) => {
      const { qkv } = inputs as { qkv: tf.TensorInfo };
      const { B, T, H, scale } = attnDims(attrs);
      const C = qkv.shape[1] / 3;
      const m = mem(backend);
      const y = m.out([B * T, C], () => {});
      const p = m.out([B, H, T, T], () => {});
      const n = nat(backend);
      if (!n) throw new Error('causal attention kernel: the native addon does not serve this backend');
      n.a.attnForward(n.heap, n.off(qkv), B, T, H, C / H, scale, n.off(y), n.off(p));
      return [y, p];
    });
    reg(ATTN_GRAD, ({ inputs, backend, attrs }) => {
      const { dy, qkv, p } = inputs as Record<string, tf.TensorInfo>;
      const { B, T, H, scale } = attnDims(attrs);
      const C = qkv.shape[1] / 3;
      const m = mem(backend);
      const out = m.out(qkv.shape, () => {});
      const n = nat(backend);
      if (!n) throw new Error('causal attention kernel: the native addon does not serve this backend');
      n.a.attnBackward(n.heap, n.off(dy), n.off(qkv), n.off(p), B, T, H, C / H, scale, n.off(out));
      return out;
    });
  }
  reg(SUMSQ, ({ inputs, backend }) => {
    const m = mem(backend);
    const xs = Object.keys(inputs)
      .sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)))
      .map((k) => inputs[k] as tf.TensorInfo);
    const n = nat(backend);
    let total = 0;
    for (const x of xs) {
      if (n?.a.sumSquares) total += n.a.sumSquares(n.heap, n.off(x), size(x.shape));
      else {
        const v = m.f32(x);
        for (let i = 0; i < v.length; i++) total += v[i] * v[i];
      }
    }
    const out = m.out([], () => {});
    m.f32(out)[0] = total;
    return out;
  });
  reg(ADAMW, ({ inputs, backend, attrs }) => {
    const {
      p,
      m: mt,
      v,
      g,
      s: gs,
    } = inputs as Record<string, tf.TensorInfo | undefined> as Record<string, tf.TensorInfo>;
    const h = attrs as unknown as AdamWHyper;
    const mm = mem(backend);
    // the gradient's scale (the clipping coefficient), a scalar tensor read from memory: no device sync
    const gscale = gs ? mm.f32(gs)[0] : 1;
    const outs = [mm.out(p.shape, () => {}), mm.out(p.shape, () => {}), mm.out(p.shape, () => {})];
    const n = nat(backend);
    if (n) {
      const o = outs.map(n.off);
      n.a.adamw(
        n.heap,
        n.off(p),
        n.off(mt),
        n.off(v),
        n.off(g),
        size(p.shape),
        o[0],
        o[1],
        o[2],
        h.lr,
        h.beta1,
        h.beta2,
        h.eps,
        h.decay,
        h.bc1,
        h.bc2,
        gscale,
      );
    } else {
      adamwLoop(
        mm.f32(p),
        mm.f32(mt),
        mm.f32(v),
        mm.f32(g),
        h,
        mm.f32(outs[0]),
        mm.f32(outs[1]),
        mm.f32(outs[2]),
        gscale,
      );
    }
    return outs;
  });
}

/** Whether the fused kernels serve the current backend (false: the ops use tf ops). */
export function fusedActive(): boolean {
  const mode = readEnv('CEG_KERNELS');
  return mode !== 'stock' && tf.getKernel(CE, tf.getBackend()) !== undefined;
}

// ---------------------------------------------------------------------------------------
// ops

/** Mean cross-entropy of logits [N, V] (float32) against targets [N] (int32): mean_n −log softmax(logits_n)[t_n]. */
export function softmaxCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  if (logits.rank !== 2 || targets.rank !== 1 || targets.shape[0] !== logits.shape[0])
    throw new Error(
      `softmaxCrossEntropy: logits [${logits.shape}] must be [N, V] and targets [${targets.shape}] must be [N]`,
    );
  const t = targets.dtype === 'int32' ? targets : (tf.cast(targets, 'int32') as tf.Tensor1D);
  try {
    if (!fusedActive() || logits.dtype !== 'float32') return crossEntropyTfOps(logits, t);
    const f = tf.customGrad(((lg: tf.Tensor, save: tf.GradSaveFunc) => {
      const [loss, lse] = tf.engine().runKernel(CE, { logits: lg, targets: t }, {}) as tf.Tensor[];
      save([lg, lse]);
      return {
        value: loss,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
          tf.engine().runKernel(CE_GRAD, { dy, logits: saved[0], targets: t, lse: saved[1] }, {}) as tf.Tensor,
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]);
    return f(logits) as tf.Scalar;
  } finally {
    if (t !== targets) t.dispose();
  }
}

/** The same loss with tf ops (other backends; the reference in tests). */
export function crossEntropyTfOps(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const [N, V] = logits.shape;
    const logp = tf.reshape(tf.logSoftmax(logits), [N * V]); // [N·V]
    const flat = tf.add(tf.range(0, N * V, V, 'int32'), tf.cast(targets, 'int32')); // [N]: n·V + t_n
    return tf.neg(tf.mean(tf.gather(logp, flat))) as tf.Scalar;
  });
}

/** Exact GELU 0.5·x·(1 + erf(x/√2)) as one fused kernel (and one for its gradient). */
export function gelu<T extends tf.Tensor>(x: T): T {
  if (!fusedActive() || x.dtype !== 'float32') return geluTfOps(x);
  const f = tf.customGrad(((xx: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xx]);
    return {
      value: tf.engine().runKernel(GELU, { x: xx }, {}) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.engine().runKernel(GELU_GRAD, { dy, x: saved[0] }, {}) as tf.Tensor,
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x) as T;
}

/** Exact GELU with tf ops. */
export function geluTfOps<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))) as T);
}

/**
 * softmax(scale·scores + causal mask) over the last axis of scores [..., T, T]: query i (the
 * second-to-last axis) attends keys j ≤ i; the rest are exactly 0. One fused kernel forward and one
 * backward on wasm/cpu; causalSoftmaxTfOps elsewhere.
 */
export function causalSoftmax<T extends tf.Tensor>(scores: T, scale: number): T {
  const r = scores.rank;
  if (r < 2 || scores.shape[r - 1] !== scores.shape[r - 2])
    throw new Error(`causalSoftmax: scores [${scores.shape}] must be [..., T, T]`);
  if (!fusedActive() || scores.dtype !== 'float32') return causalSoftmaxTfOps(scores, scale);
  const f = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    const y = tf.engine().runKernel(CSM, { x }, { scale } as unknown as tf.NamedAttrMap) as tf.Tensor;
    save([y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.engine().runKernel(CSM_GRAD, { dy, y: saved[0] }, { scale } as unknown as tf.NamedAttrMap) as tf.Tensor,
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(scores) as T;
}

/** The same with tf ops: the plain attention's scale, additive −1e9 causal mask and softmax. */
export function causalSoftmaxTfOps<T extends tf.Tensor>(scores: T, scale: number): T {
  return tf.tidy(
    () => tf.softmax(tf.add(tf.mul(scores, scale), additiveCausalMask(scores.shape[scores.rank - 1]))) as T,
  );
}

/** [T, T]: 0 on and below the diagonal, −1e9 above; built once per (backend, T) and kept (a cache, not a leak). */
function additiveCausalMask(T: number): tf.Tensor2D {
  const key = `${tf.getBackend()}:${T}`;
  let m = maskCache.get(key);
  if (!m || m.isDisposed) {
    m = tf.keep(tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([T, T]), -1, 0)), -1e9) as tf.Tensor2D));
    maskCache.set(key, m);
  }
  return m;
}
const maskCache = new Map<string, tf.Tensor2D>();

/** Whether causalAttention runs the native kernel here (wasm, fused ops on, the addon serving an unshared heap). */
export function nativeAttention(): boolean {
  if (!fusedActive() || tf.getBackend() !== 'wasm' || !tf.getKernel(ATTN, 'wasm') || readEnv('CEG_NATIVE') === '0')
    return false;
  const b = tf.backend() as unknown as WasmLike;
  return !(b.wasm.HEAPU8.buffer instanceof SharedArrayBuffer);
}

/**
 * Causal self-attention of H heads from the packed projection qkv [B·T, 3C] (columns q | k | v, head
 * h at h·hs .. h·hs+hs of each, hs = C/H) to y [B·T, C] with the heads merged:
 *   y_h = softmax(q_h·k_hᵀ/√hs + causal mask)·v_h
 * One native kernel forward and one backward (wasm with the addon: nativeAttention()); elsewhere
 * causalAttentionTfOps, the model's own chain of ops. No dropout on the probabilities: callers use
 * it only when attention dropout is off.
 */
export function causalAttention(qkv: tf.Tensor2D, B: number, T: number, H: number): tf.Tensor2D {
  const C = qkv.shape[1] / 3;
  if (qkv.rank !== 2 || qkv.shape[0] !== B * T || !Number.isInteger(C) || C % H !== 0)
    throw new Error(`causalAttention: qkv [${qkv.shape}] must be [B·T, 3C] = [${B * T}, 3·${H}·hs]`);
  const scale = 1 / Math.sqrt(C / H);
  if (!nativeAttention() || qkv.dtype !== 'float32') return causalAttentionTfOps(qkv, B, T, H);
  const attrs = { B, T, H, scale } as unknown as tf.NamedAttrMap;
  const f = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    const [y, p] = tf.engine().runKernel(ATTN, { qkv: x }, attrs) as tf.Tensor[];
    save([x, p]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.engine().runKernel(ATTN_GRAD, { dy, qkv: saved[0], p: saved[1] }, attrs) as tf.Tensor,
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(qkv) as tf.Tensor2D;
}

/** The same with tf ops, as src/model/gpt.ts's plain attention path: split, heads, q·kᵀ, causal softmax, ·v, merge. */
export function causalAttentionTfOps(qkv: tf.Tensor2D, B: number, T: number, H: number): tf.Tensor2D {
  return tf.tidy(() => {
    const C = qkv.shape[1] / 3;
    const hs = C / H;
    const heads = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [B, T, H, hs]), [0, 2, 1, 3]) as tf.Tensor4D;
    const [q, k, v] = tf.split(qkv, [C, C, C], 1).map(heads);
    const att = causalSoftmax(tf.matMul(q, k, false, true), 1 / Math.sqrt(hs));
    return tf.reshape(tf.transpose(tf.matMul(att, v), [0, 2, 1, 3]), [B * T, C]) as tf.Tensor2D;
  });
}

/**
 * Σ over all tensors of Σ x² (float32 tensors), as a scalar tensor, with no read-back: one kernel
 * on wasm/cpu (accumulated in float64), tf ops elsewhere. No gradient (for the clipping norm).
 */
export function sumOfSquares(ts: tf.Tensor[]): tf.Scalar {
  if (!fusedActive() || ts.length === 0 || ts.some((t) => t.dtype !== 'float32')) return sumOfSquaresTfOps(ts);
  const inputs = Object.fromEntries(ts.map((t, i) => [`x${i}`, t]));
  return tf.engine().runKernel(SUMSQ, inputs, {}) as tf.Scalar;
}

/** The same with tf ops: a Square and a Sum per tensor, and their AddN. */
export function sumOfSquaresTfOps(ts: tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => (ts.length ? tf.addN(ts.map((g) => tf.sum(tf.square(g)))) : tf.scalar(0)) as tf.Scalar);
}

/**
 * One AdamW update of a parameter: returns [p', m', v'] (new tensors; the caller assigns them).
 * The gradient used is g·gscale when a scalar `gscale` is given (gradient clipping's coefficient,
 * folded into the same pass instead of a Multiply per tensor). One fused kernel on wasm/cpu; the
 * same formula in tf ops elsewhere.
 */
export function adamwUpdate(
  p: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  g: tf.Tensor,
  h: AdamWHyper,
  gscale?: tf.Scalar,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  if (
    fusedActive() &&
    [p, m, v, g].every((t) => t.dtype === 'float32' && t.size === p.size) &&
    (!gscale || (gscale.dtype === 'float32' && gscale.size === 1))
  )
    return tf
      .engine()
      .runKernel(ADAMW, gscale ? { p, m, v, g, s: gscale } : { p, m, v, g }, h as unknown as tf.NamedAttrMap) as [
      tf.Tensor,
      tf.Tensor,
      tf.Tensor,
    ];
  return adamwTfOps(p, m, v, g, h, gscale);
}

/** AdamW update with tf ops (the formula of src/train/adamw.ts), on g·gscale when given. */
export function adamwTfOps(
  p: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  gIn: tf.Tensor,
  h: AdamWHyper,
  gscale?: tf.Scalar,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  return tf.tidy(() => {
    const g = gscale ? tf.mul(gIn, gscale) : gIn;
    const m1 = tf.add(tf.mul(m, h.beta1), tf.mul(g, 1 - h.beta1));
    const v1 = tf.add(tf.mul(v, h.beta2), tf.mul(tf.square(g), 1 - h.beta2));
    const update = tf.div(tf.div(m1, h.bc1), tf.add(tf.sqrt(tf.div(v1, h.bc2)), h.eps));
    return [tf.sub(tf.mul(p, h.decay), tf.mul(update, h.lr)), m1, v1] as [tf.Tensor, tf.Tensor, tf.Tensor];
  });
}
