/**
 * Fused causal attention ("FlashAttention") as WGSL compute shaders for tfjs-backend-webgpu.
 *
 *   q: [B, H, T, hs]   k, v: [B, Hkv, T, hs] (Hkv divides H: MHA, GQA, MQA)  ->  y: [B, H, T, hs]
 *
 * Forward (FlashAttention-2): a workgroup owns a tile of BR query rows of one head (one thread
 * per row); it walks the key tiles up to the diagonal, holding each BC x hs tile of K and V in
 * workgroup memory, and keeps a running max m, sum l and output accumulator per row (online
 * softmax). The T x T score matrix is never written. It also writes the row logsumexp
 * lse = m + log(l) (of the scaled scores), which the backward pass uses to recompute P.
 * Backward (FlashAttention-2, no atomics):
 *   D_i = sum_d dO_i,d O_i,d                       (tf ops: [B*H, T])
 *   pass 1, one workgroup per key tile of one kv head, one thread per key j:
 *     for each query head g of the group, for each query i >= j:
 *       P_ij = exp(s_ij - lse_i);  dV_j += P_ij dO_i;  dS_ij = P_ij (dO_i . v_j - D_i);  dK_j += dS_ij q_i * scale
 *   pass 2, one workgroup per query tile, one thread per query i:
 *       dQ_i = scale * sum_{j <= i} dS_ij k_j
 * GQA is handled inside the shaders: query head h reads kv head h / (H / Hkv); pass 1 sums
 * over the G = H / Hkv query heads of its kv head. The shaders are specialised (constants
 * baked in) per (T, hs, H, Hkv, tile), so each shape compiles once.
 */
import { tf } from '../index.js';
import { webgpuBackend } from '../webgpu.js';

/** What tfjs-backend-webgpu's runWebGPUProgram needs (see its webgpu_program.d.ts). */
interface Program {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[]; y?: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  getUserCode: () => string;
}

interface Dims {
  B: number;
  H: number;
  Hkv: number;
  T: number;
  hs: number;
}

/** Tile size: 32 rows if the workgroup's shared tiles fit the device limit, else 16 or 8. */
export function tileFor(hs: number, maxSharedBytes: number): number {
  for (const t of [32, 16, 8]) if ((2 * t * hs + 2 * t) * 4 <= maxSharedBytes) return t;
  throw new Error(`head size ${hs} too large for ${maxSharedBytes} bytes of workgroup memory (need tile >= 8)`);
}

const f = (x: number) => (Number.isInteger(x) ? `${x}.0` : `${x}`);

function common(d: Dims, tile: number): string {
  return `
const T : i32 = ${d.T};
const HS : i32 = ${d.hs};
const H : i32 = ${d.H};
const HKV : i32 = ${d.Hkv};
const G : i32 = ${d.H / d.Hkv};
const TILE : i32 = ${tile};
const SCALE : f32 = ${f(1 / Math.sqrt(d.hs))};
var<workgroup> wgIdShared : vec2<i32>;
// workgroupId is a private variable to WGSL's uniformity analysis; loops with barriers need
// bounds it can prove uniform, so the id goes through workgroupUniformLoad.
fn uniformWorkgroupId() -> vec2<i32> {
  if (localIndex == 0u) { wgIdShared = vec2<i32>(workgroupId.xy); }
  return workgroupUniformLoad(&wgIdShared);
}
`;
}

/** Forward: inputs q [B*H,T,hs], k, v [B*Hkv,T,hs] -> out [B*H, T, hs+1] (last column: lse). */
function forwardProgram(d: Dims, tile: number): Program {
  return {
    variableNames: ['q', 'k', 'v'],
    outputShape: [d.B * d.H, d.T, d.hs + 1],
    shaderKey: `cegFlashFwd_${d.T}_${d.hs}_${d.H}_${d.Hkv}_${tile}`,
    dispatchLayout: { x: [1], y: [0] },
    dispatch: [Math.ceil(d.T / tile), d.B * d.H, 1],
    workgroupSize: [tile, 1, 1],
    getUserCode: () => `${common(d, tile)}
var<workgroup> Ks : array<f32, ${tile * d.hs}>;
var<workgroup> Vs : array<f32, ${tile * d.hs}>;
fn main() {
  _ = uniforms.NAN; // keep tfjs's uniform binding in the auto layout
  let wg = uniformWorkgroupId();
  let bh = wg.y;
  let kvh = (bh / H) * HKV + (bh % H) / G;
  let qTile = wg.x;
  let row = qTile * TILE + i32(localId.x);
  let valid = row < T;
  var qr : array<f32, ${d.hs}>;
  var acc : array<f32, ${d.hs}>;
  var s : array<f32, ${tile}>;
  if (valid) {
    let qBase = (bh * T + row) * HS;
    for (var c = 0; c < HS; c++) { qr[c] = q[qBase + c] * SCALE; }
  }
  for (var c = 0; c < HS; c++) { acc[c] = 0.0; }
  var m = -1.0e30;
  var l = 0.0;
  let kvBase = kvh * T * HS;
  let keyEnd = min(T, (qTile + 1) * TILE);
  for (var k0 = 0; k0 < keyEnd; k0 += TILE) {
    for (var e = i32(localId.x); e < TILE * HS; e += TILE) {
      let j = k0 + e / HS;
      if (j < T) {
        Ks[e] = k[kvBase + k0 * HS + e];
        Vs[e] = v[kvBase + k0 * HS + e];
      } else {
        Ks[e] = 0.0;
        Vs[e] = 0.0;
      }
    }
    workgroupBarrier();
    var mt = m;
    for (var jj = 0; jj < TILE; jj++) {
      let j = k0 + jj;
      if (j <= row && j < T) {
        var dot = 0.0;
        for (var c = 0; c < HS; c++) { dot += qr[c] * Ks[jj * HS + c]; }
        s[jj] = dot;
        mt = max(mt, dot);
      }
    }
    let alpha = exp(m - mt);
    l = l * alpha;
    for (var c = 0; c < HS; c++) { acc[c] = acc[c] * alpha; }
    for (var jj = 0; jj < TILE; jj++) {
      let j = k0 + jj;
      if (j <= row && j < T) {
        let p = exp(s[jj] - mt);
        l += p;
        for (var c = 0; c < HS; c++) { acc[c] += p * Vs[jj * HS + c]; }
      }
    }
    m = mt;
    workgroupBarrier();
  }
  if (valid) {
    let oBase = (bh * T + row) * (HS + 1);
    let inv = 1.0 / l;
    for (var c = 0; c < HS; c++) { result[oBase + c] = acc[c] * inv; }
    result[oBase + HS] = m + log(l);
  }
}
`,
  };
}

/**
 * Backward pass 1: inputs q, dO [B*H,T,hs], k, v [B*Hkv,T,hs], lse, D [B*H,T]
 * -> out [B*Hkv, T, 2*hs] (dK then dV per key row).
 */
function dkdvProgram(d: Dims, tile: number): Program {
  return {
    variableNames: ['q', 'k', 'v', 'dO', 'lse', 'dd'],
    outputShape: [d.B * d.Hkv, d.T, 2 * d.hs],
    shaderKey: `cegFlashDkDv_${d.T}_${d.hs}_${d.H}_${d.Hkv}_${tile}`,
    dispatchLayout: { x: [1], y: [0] },
    dispatch: [Math.ceil(d.T / tile), d.B * d.Hkv, 1],
    workgroupSize: [tile, 1, 1],
    getUserCode: () => `${common(d, tile)}
var<workgroup> Qs : array<f32, ${tile * d.hs}>;
var<workgroup> dOs : array<f32, ${tile * d.hs}>;
var<workgroup> Ls : array<f32, ${tile}>;
var<workgroup> Ds : array<f32, ${tile}>;
fn main() {
  _ = uniforms.NAN; // keep tfjs's uniform binding in the auto layout
  let wg = uniformWorkgroupId();
  let bkv = wg.y;
  let b = bkv / HKV;
  let hkv = bkv % HKV;
  let kTile = wg.x;
  let j = kTile * TILE + i32(localId.x);
  let valid = j < T;
  var kr : array<f32, ${d.hs}>;
  var vr : array<f32, ${d.hs}>;
  var dk : array<f32, ${d.hs}>;
  var dv : array<f32, ${d.hs}>;
  let kvRow = (bkv * T + j) * HS;
  for (var c = 0; c < HS; c++) {
    if (valid) { kr[c] = k[kvRow + c]; vr[c] = v[kvRow + c]; } else { kr[c] = 0.0; vr[c] = 0.0; }
    dk[c] = 0.0;
    dv[c] = 0.0;
  }
  for (var g = 0; g < G; g++) {
    let bh = b * H + hkv * G + g;
    for (var q0 = kTile * TILE; q0 < T; q0 += TILE) {
      for (var e = i32(localId.x); e < TILE * HS; e += TILE) {
        let i = q0 + e / HS;
        if (i < T) {
          Qs[e] = q[(bh * T + q0) * HS + e];
          dOs[e] = dO[(bh * T + q0) * HS + e];
        } else {
          Qs[e] = 0.0;
          dOs[e] = 0.0;
        }
      }
      let li = q0 + i32(localId.x);
      if (li < T) { Ls[localId.x] = lse[bh * T + li]; Ds[localId.x] = dd[bh * T + li]; }
      workgroupBarrier();
      if (valid) {
        for (var ii = 0; ii < TILE; ii++) {
          let i = q0 + ii;
          if (i >= j && i < T) {
            var sdot = 0.0;
            var pdot = 0.0;
            for (var c = 0; c < HS; c++) {
              sdot += Qs[ii * HS + c] * kr[c];
              pdot += dOs[ii * HS + c] * vr[c];
            }
            let p = exp(sdot * SCALE - Ls[ii]);
            let ds = p * (pdot - Ds[ii]) * SCALE;
            for (var c = 0; c < HS; c++) {
              dv[c] += p * dOs[ii * HS + c];
              dk[c] += ds * Qs[ii * HS + c];
            }
          }
        }
      }
      workgroupBarrier();
    }
  }
  if (valid) {
    let oBase = (bkv * T + j) * (2 * HS);
    for (var c = 0; c < HS; c++) {
      result[oBase + c] = dk[c];
      result[oBase + HS + c] = dv[c];
    }
  }
}
`,
  };
}

/** Backward pass 2: inputs q, dO [B*H,T,hs], k, v [B*Hkv,T,hs], lse, D [B*H,T] -> dQ [B*H,T,hs]. */
function dqProgram(d: Dims, tile: number): Program {
  return {
    variableNames: ['q', 'k', 'v', 'dO', 'lse', 'dd'],
    outputShape: [d.B * d.H, d.T, d.hs],
    shaderKey: `cegFlashDq_${d.T}_${d.hs}_${d.H}_${d.Hkv}_${tile}`,
    dispatchLayout: { x: [1], y: [0] },
    dispatch: [Math.ceil(d.T / tile), d.B * d.H, 1],
    workgroupSize: [tile, 1, 1],
    getUserCode: () => `${common(d, tile)}
var<workgroup> Ks : array<f32, ${tile * d.hs}>;
var<workgroup> Vs : array<f32, ${tile * d.hs}>;
fn main() {
  _ = uniforms.NAN; // keep tfjs's uniform binding in the auto layout
  let wg = uniformWorkgroupId();
  let bh = wg.y;
  let kvh = (bh / H) * HKV + (bh % H) / G;
  let qTile = wg.x;
  let row = qTile * TILE + i32(localId.x);
  let valid = row < T;
  var qr : array<f32, ${d.hs}>;
  var dor : array<f32, ${d.hs}>;
  var dq : array<f32, ${d.hs}>;
  var L = 0.0;
  var Dr = 0.0;
  if (valid) {
    let base = (bh * T + row) * HS;
    for (var c = 0; c < HS; c++) { qr[c] = q[base + c] * SCALE; dor[c] = dO[base + c]; }
    L = lse[bh * T + row];
    Dr = dd[bh * T + row];
  }
  for (var c = 0; c < HS; c++) { dq[c] = 0.0; }
  let kvBase = kvh * T * HS;
  let keyEnd = min(T, (qTile + 1) * TILE);
  for (var k0 = 0; k0 < keyEnd; k0 += TILE) {
    for (var e = i32(localId.x); e < TILE * HS; e += TILE) {
      let j = k0 + e / HS;
      if (j < T) {
        Ks[e] = k[kvBase + k0 * HS + e];
        Vs[e] = v[kvBase + k0 * HS + e];
      } else {
        Ks[e] = 0.0;
        Vs[e] = 0.0;
      }
    }
    workgroupBarrier();
    if (valid) {
      for (var jj = 0; jj < TILE; jj++) {
        let j = k0 + jj;
        if (j <= row && j < T) {
          var sdot = 0.0;
          var pdot = 0.0;
          for (var c = 0; c < HS; c++) {
            sdot += qr[c] * Ks[jj * HS + c];
            pdot += dor[c] * Vs[jj * HS + c];
          }
          let ds = exp(sdot - L) * (pdot - Dr) * SCALE;
          for (var c = 0; c < HS; c++) { dq[c] += ds * Ks[jj * HS + c]; }
        }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    let base = (bh * T + row) * HS;
    for (var c = 0; c < HS; c++) { result[base + c] = dq[c]; }
  }
}
`,
  };
}

function dimsOf(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor): Dims {
  const q4 = q.rank === 3 ? [1, ...q.shape] : q.shape;
  const k4 = k.rank === 3 ? [1, ...k.shape] : k.shape;
  const v4 = v.rank === 3 ? [1, ...v.shape] : v.shape;
  if (q4.length !== 4 || k4.length !== 4) {
    throw new Error(
      `flash attention wants q [B,H,T,hs] (or [B*H,T,hs]) and k, v [B,Hkv,T,hs]; got q ${q.shape}, k ${k.shape}`,
    );
  }
  const [B, H, T, hs] = q4;
  const [Bk, Hkv, Tk, hsk] = k4;
  if (Bk !== B || Tk !== T || hsk !== hs || v4.join() !== k4.join() || H % Hkv !== 0) {
    throw new Error(
      `flash attention shapes disagree: q ${q.shape}, k ${k.shape}, v ${v.shape} (need same B, T, hs and Hkv dividing H)`,
    );
  }
  if (q.dtype !== 'float32' || k.dtype !== 'float32' || v.dtype !== 'float32') {
    throw new Error(`flash attention wants float32 tensors, got ${q.dtype}, ${k.dtype}, ${v.dtype}`);
  }
  return { B, H, Hkv, T, hs };
}

function run(program: Program, inputs: tf.Tensor[]): tf.Tensor {
  const backend = webgpuBackend();
  const info = backend.runWebGPUProgram(program, inputs, 'float32');
  return tf.engine().makeTensorFromTensorInfo(info);
}

function tileForDevice(hs: number): number {
  return tileFor(hs, webgpuBackend().device.limits.maxComputeWorkgroupStorageSize);
}

/** Forward only: y [same shape as q] and lse [B*H, T] (natural log, of the scaled scores). */
export function flashAttentionForward(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor): { y: tf.Tensor; lse: tf.Tensor } {
  const d = dimsOf(q, k, v);
  const tile = tileForDevice(d.hs);
  return tf.tidy(() => {
    const packed = run(forwardProgram(d, tile), [q, k, v]); // [B*H, T, hs+1]
    const y = tf.reshape(tf.slice(packed, [0, 0, 0], [d.B * d.H, d.T, d.hs]), q.shape);
    const lse = tf.reshape(tf.slice(packed, [0, 0, d.hs], [d.B * d.H, d.T, 1]), [d.B * d.H, d.T]);
    return { y, lse };
  });
}

/** Gradients of sum(y * dy) with respect to q, k, v, from the saved forward results. */
export function flashAttentionBackward(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  y: tf.Tensor,
  lse: tf.Tensor,
  dy: tf.Tensor,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const d = dimsOf(q, k, v);
  const tile = tileForDevice(d.hs);
  return tf.tidy(() => {
    const dd = tf.reshape(tf.sum(tf.mul(dy, y), -1), [d.B * d.H, d.T]); // D_i = dO_i . O_i
    const ins = [q, k, v, dy, lse, dd];
    const dq = tf.reshape(run(dqProgram(d, tile), ins), q.shape);
    const dkdv = run(dkdvProgram(d, tile), ins); // [B*Hkv, T, 2*hs]
    const dk = tf.reshape(tf.slice(dkdv, [0, 0, 0], [d.B * d.Hkv, d.T, d.hs]), k.shape);
    const dv = tf.reshape(tf.slice(dkdv, [0, 0, d.hs], [d.B * d.Hkv, d.T, d.hs]), v.shape);
    return [dq, dk, dv];
  });
}

/**
 * Exact causal attention on webgpu with a fused WGSL kernel and its own gradient.
 * q [B,H,T,hs] with k, v [B,Hkv,T,hs] (or all three [B*H,T,hs]) -> y, shaped like q.
 */
export function flashAttentionWebGPU<R extends tf.Rank>(
  q: tf.Tensor<R>,
  k: tf.Tensor<R>,
  v: tf.Tensor<R>,
): tf.Tensor<R> {
  const body = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, save: tf.GradSaveFunc) => {
    const { y, lse } = flashAttentionForward(qq, kk, vv);
    save([qq, kk, vv, y, lse]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sq, sk, sv, sy, slse] = saved;
        return flashAttentionBackward(sq, sk, sv, sy, slse, dy);
      },
    };
  };
  const fn = tf.customGrad(body as unknown as Parameters<typeof tf.customGrad>[0]);
  return fn(q, k, v) as tf.Tensor<R>;
}

/**
 * The fused attention kernel for a backend, or null where this module has none.
 * Wiring (src/model/attention/index.ts, case 'fused'):
 *   const wgsl = fusedAttentionFor(tf.getBackend());
 *   if (wgsl && !(opts.training && opts.dropout > 0)) return wgsl(q, k, v);
 * (the WGSL kernel has no attention-probability dropout; fall back to the tf-ops kernel then).
 */
export function fusedAttentionFor(
  backend: string,
): ((q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D) => tf.Tensor4D) | null {
  return backend === 'webgpu' ? (q, k, v) => flashAttentionWebGPU(q, k, v) : null;
}
