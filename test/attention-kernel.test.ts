/**
 * The native causal-attention kernel (src/engine/fused.ts causalAttention, native/sgemm.cc
 * attnForward/attnBackward) against an independent float64 reference (values, and a central
 * finite difference of the gradient) and against the tf-ops chain the model used before
 * (causalAttentionTfOps: values and autodiff gradients).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initEngine, tf } from '../src/engine/index.js';
import { causalAttention, causalAttentionTfOps, nativeAttention } from '../src/engine/fused.js';
import { loadNative } from '../src/engine/native.js';

function vals(n: number, seed: number, amp = 1): Float32Array {
  const v = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = amp * (s / 2 ** 31 - 1);
  }
  return v;
}

/** y [B·T, C] from qkv [B·T, 3C] in float64 loops: per head softmax_j≤i(q_i·k_j/√hs)·v_j */
function reference(qkv: ArrayLike<number>, B: number, T: number, H: number): Float64Array {
  const C = qkv.length / (B * T) / 3,
    hs = C / H,
    ld = 3 * C,
    scale = 1 / Math.sqrt(hs);
  const y = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < T; i++) {
        const s: number[] = [];
        for (let j = 0; j <= i; j++) {
          let dot = 0;
          for (let d = 0; d < hs; d++)
            dot += qkv[(b * T + i) * ld + h * hs + d] * qkv[(b * T + j) * ld + C + h * hs + d];
          s.push(dot * scale);
        }
        const m = Math.max(...s);
        const e = s.map((x) => Math.exp(x - m));
        const z = e.reduce((a, c) => a + c, 0);
        for (let d = 0; d < hs; d++) {
          let acc = 0;
          for (let j = 0; j <= i; j++) acc += (e[j] / z) * qkv[(b * T + j) * ld + 2 * C + h * hs + d];
          y[(b * T + i) * C + h * hs + d] = acc;
        }
      }
  return y;
}

const rel = (got: number, want: number, scale: number) => Math.abs(got - want) / (Math.abs(want) + scale);

// [B, T, H, hs]: a row length off the vector width, the study's head sizes 4 and 18 at T = 128
// and head sizes >= 32, which go through OpenBLAS's products when it is connected (both paths are run)
const SHAPES: [number, number, number, number][] = [
  [2, 37, 3, 5],
  [1, 128, 4, 4],
  [1, 128, 4, 18],
  [3, 17, 2, 16],
  [2, 128, 2, 32],
  [1, 41, 2, 36],
];

test('native causal attention equals float64 loops and the tf-ops chain (values and gradients)', async (t) => {
  await initEngine({ backend: 'wasm' });
  if (!nativeAttention()) return t.skip('native addon not serving wasm (not built, CEG_NATIVE=0, or wasm threads)');
  const native = loadNative()!;
  const modes: (0 | 1)[] = native.blasConfig() ? [1, 0] : [0];
  const before0 = native.setGemm(modes[0]);
  try {
    for (const mode of modes) {
      native.setGemm(mode);
      checkShapes(t, mode ? 'OpenBLAS' : 'ours');
    }
  } finally {
    native.setGemm(before0 as 0 | 1);
  }
});

function checkShapes(t: { diagnostic(s: string): void }, gemm: string): void {
  for (const [B, T, H, hs] of SHAPES) {
    const C = H * hs;
    const qkv = vals(B * T * 3 * C, 1000 * T + 10 * hs + B, 1.5);
    const w = vals(B * T * C, 7 + hs); // loss = Σ y ∘ w
    const before = tf.memory().numTensors;
    const [y, yRef, g, gRef] = tf.tidy(() => {
      const x = tf.tensor2d(qkv, [B * T, 3 * C]);
      const wt = tf.tensor2d(w, [B * T, C]);
      const fused = (a: tf.Tensor) => tf.sum(tf.mul(causalAttention(a as tf.Tensor2D, B, T, H), wt));
      const ops = (a: tf.Tensor) => tf.sum(tf.mul(causalAttentionTfOps(a as tf.Tensor2D, B, T, H), wt));
      return [
        causalAttention(x, B, T, H).dataSync(),
        causalAttentionTfOps(x, B, T, H).dataSync(),
        tf.grad(fused)(x).dataSync(),
        tf.grad(ops)(x).dataSync(),
      ] as Float32Array[];
    });
    assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
    const want = reference(qkv, B, T, H);
    const what = `B${B} T${T} H${H} hs${hs} (${gemm} SGEMM)`;
    let worst = 0;
    for (let i = 0; i < want.length; i++) {
      worst = Math.max(worst, rel(y[i], want[i], 1));
      assert.ok(rel(y[i], want[i], 1) < 2e-6, `${what} y[${i}]: ${y[i]} vs float64 ${want[i]}`);
      assert.ok(rel(y[i], yRef[i], 1) < 2e-6, `${what} y[${i}]: ${y[i]} vs tf ops ${yRef[i]}`);
    }
    const gScale = Math.max(...Array.from(gRef, Math.abs));
    for (let i = 0; i < g.length; i++)
      assert.ok(Math.abs(g[i] - gRef[i]) <= 2e-5 * gScale, `${what} dqkv[${i}]: ${g[i]} vs tf ops ${gRef[i]}`);
    // independent of both: central differences of the float64 forward at a few q, k and v entries
    for (const col of [0, hs - 1, C + 1, C + C - 1, 2 * C, 3 * C - 1]) {
      for (const row of [0, T - 1, B * T - 1]) {
        const i = row * 3 * C + col;
        const f = (delta: number) => {
          const x = Float64Array.from(qkv);
          x[i] += delta;
          return reference(x, B, T, H).reduce((a, yv, k) => a + yv * w[k], 0);
        };
        const fd = (f(1e-4) - f(-1e-4)) / 2e-4;
        assert.ok(
          Math.abs(g[i] - fd) <= 1e-3 * (Math.abs(fd) + gScale),
          `${what} dqkv[${row}, ${col}]: ${g[i]} vs finite difference ${fd}`,
        );
      }
    }
    t.diagnostic(`${what}: worst relative value error ${worst.toExponential(1)}`);
  }
}

test('causal attention: the tf-ops fallback serves cpu, and bad shapes are one clear error', async () => {
  await initEngine({ backend: 'cpu' });
  assert.equal(nativeAttention(), false);
  const [B, T, H, hs] = [2, 9, 2, 3];
  const qkv = vals(B * T * 3 * H * hs, 5);
  const y = tf.tidy(() => causalAttention(tf.tensor2d(qkv, [B * T, 3 * H * hs]), B, T, H).dataSync());
  const want = reference(qkv, B, T, H);
  for (let i = 0; i < want.length; i++) assert.ok(rel(y[i], want[i], 1) < 2e-6, `cpu y[${i}]`);
  assert.throws(() => causalAttention(tf.zeros([B * T, 10]) as tf.Tensor2D, B, T, H), /must be \[B·T, 3C\]/);
  assert.throws(() => causalAttention(tf.zeros([B * T + 1, 18]) as tf.Tensor2D, B, T, H), /must be \[B·T, 3C\]/);
});
