import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initEngine, tf } from '../src/engine/index.js';
import { attend, type AttendOptions } from '../src/model/attention/index.js';
import { plainAttention, repeatKv } from '../src/model/attention/plain.js';
import { fusedAttention, fusedDropoutTile } from '../src/model/attention/fused.js';
import {
  sparseAttention,
  sparseMask,
  sparseBlocksUsed,
  sparseSelection,
  sparseDropoutTile,
  SPARSE_GROUP,
} from '../src/model/attention/sparse.js';
import type { SparseConfig } from '../src/config.js';

// ---------- helpers ----------

/** Deterministic uniform(-1, 1) numbers from a seed (LCG), no Math.random. */
function rand(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}
const t4 = (shape: number[], seed: number, amp = 1) =>
  tf.tensor4d(
    rand(
      shape.reduce((a, b) => a * b),
      seed,
    ).map((x) => x * amp),
    shape as [number, number, number, number],
  );

const SP0: SparseConfig = { blockSize: 4, localBlocks: 1, selectedBlocks: 1 };
const opts = (o: Partial<AttendOptions> = {}): AttendOptions => ({
  dropout: 0,
  training: false,
  seed: 0,
  sparse: SP0,
  ...o,
});

/** Relative closeness: |got - want| <= tol · (|want| + mean|want|), so entries near zero are judged at the vector's scale. */
function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale += Math.abs(want[i]) / want.length;
  let worst = 0;
  let at = -1;
  for (let i = 0; i < got.length; i++) {
    const e = Math.abs(got[i] - want[i]) / (Math.abs(want[i]) + scale);
    if (!(e <= worst) || Number.isNaN(got[i])) [worst, at] = [Number.isNaN(got[i]) ? Infinity : e, i];
  }
  assert.ok(
    worst <= tol,
    `${what}: element ${at} got ${got[at]} want ${want[at]} (rel err ${worst.toExponential(2)} > ${tol})`,
  );
}

/**
 * Independent reference with plain loops (float64):
 * y[b,h,t] = Σ_s softmax_s(q·k/sqrt(hs) over allowed s) · keep(b,h,t,s) · v[b, h/g, s].
 */
function loopAttention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  allowed: (b: number, h: number, t: number, s: number) => boolean,
  keep: (b: number, h: number, t: number, s: number) => number = () => 1,
): Float64Array {
  const [B, H, T, hs] = q.shape;
  const Hkv = k.shape[1];
  const g = H / Hkv;
  const Q = q.dataSync(),
    K = k.dataSync(),
    V = v.dataSync();
  const y = new Float64Array(B * H * T * hs);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / g);
      for (let t = 0; t < T; t++) {
        const sc = new Float64Array(T).fill(-Infinity);
        for (let s = 0; s < T; s++) {
          if (!allowed(b, h, t, s)) continue;
          let d = 0;
          for (let c = 0; c < hs; c++) d += Q[((b * H + h) * T + t) * hs + c] * K[((b * Hkv + hk) * T + s) * hs + c];
          sc[s] = d / Math.sqrt(hs);
        }
        const mx = Math.max(...sc);
        let z = 0;
        for (let s = 0; s < T; s++) z += Math.exp(sc[s] - mx);
        for (let s = 0; s < T; s++) {
          const p = (Math.exp(sc[s] - mx) / z) * keep(b, h, t, s);
          if (p === 0) continue;
          for (let c = 0; c < hs; c++) y[((b * H + h) * T + t) * hs + c] += p * V[((b * Hkv + hk) * T + s) * hs + c];
        }
      }
    }
  return y;
}
const causal = (_b: number, _h: number, t: number, s: number) => s <= t;

type Kernel = (q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D) => tf.Tensor4D;
/** Output and gradients of sum(out ∘ w) w.r.t. q, k, v, as plain arrays. */
function valueAndGrads(f: Kernel, q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, wSeed = 99) {
  return tf.tidy(() => {
    const out = f(q, k, v);
    const w = t4(out.shape, wSeed);
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      tf.sum(tf.mul(f(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D), w)),
    )([q, k, v]);
    return {
      y: Array.from(out.dataSync()),
      dq: Array.from(grads[0].dataSync()),
      dk: Array.from(grads[1].dataSync()),
      dv: Array.from(grads[2].dataSync()),
    };
  });
}
function assertSame(
  a: ReturnType<typeof valueAndGrads>,
  b: ReturnType<typeof valueAndGrads>,
  tol: number,
  what: string,
) {
  for (const key of ['y', 'dq', 'dk', 'dv'] as const) assertClose(a[key], b[key], tol, `${what} ${key}`);
}

/** Dense masked-softmax attention with an explicit mask [B, Hkv, T, T] (bool) and optional prob multiplier [B, H, T, T]. */
function denseMasked(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  mask: tf.Tensor4D,
  mult?: tf.Tensor4D,
): tf.Tensor4D {
  const H = q.shape[1];
  const hs = q.shape[3];
  const allowed = tf.cast(repeatKv(tf.cast(mask, 'float32') as tf.Tensor4D, H), 'bool');
  const s = tf.mul(tf.matMul(q, repeatKv(k, H), false, true), 1 / Math.sqrt(hs));
  let p = tf.softmax(tf.where(allowed, s, tf.fill(s.shape, -1e9)));
  if (mult) p = tf.mul(p, mult);
  return tf.matMul(p, repeatKv(v, H)) as tf.Tensor4D;
}

// ---------- tests ----------

test('plain kernel equals a plain-loop reference (GQA, T odd)', async () => {
  await initEngine({ backend: 'cpu' });
  const q = t4([2, 4, 7, 5], 1),
    k = t4([2, 2, 7, 5], 2),
    v = t4([2, 2, 7, 5], 3);
  const y = plainAttention(q, k, v, opts());
  assertClose(y.dataSync(), loopAttention(q, k, v, causal), 1e-5, 'plain');
  // hand check: the first position can only see itself, so y[.., 0, :] = v[.., 0, :]
  assertClose(
    tf.slice(y, [0, 3, 0, 0], [1, 1, 1, 5]).dataSync(),
    tf.slice(v, [0, 1, 0, 0], [1, 1, 1, 5]).dataSync(),
    1e-6,
    'first row',
  );
  tf.dispose([q, k, v, y]);
});

test('every kernel is causal: changing future queries/keys/values leaves earlier outputs unchanged', async () => {
  await initEngine({ backend: 'cpu' });
  // t0 = 8 is the first token of a 4-token sparse block: its block-mates 9..11 are the future
  const T = 16,
    t0 = 8;
  const q = t4([1, 2, T, 4], 4, 2),
    k = t4([1, 2, T, 4], 5, 2),
    v = t4([1, 2, T, 4], 6);
  const future = tf.concat([tf.zeros([1, 2, t0 + 1, 4]), t4([1, 2, T - t0 - 1, 4], 7, 5)], 2);
  const q2 = tf.add(q, future) as tf.Tensor4D,
    k2 = tf.add(k, future) as tf.Tensor4D,
    v2 = tf.add(v, future) as tf.Tensor4D;
  const o = opts({ fusedBlock: 4, sparse: { blockSize: 4, localBlocks: 1, selectedBlocks: 1 } });
  for (const kernel of ['plain', 'fused', 'sparse'] as const) {
    const a = tf.slice(attend(kernel, q, k, v, o), [0, 0, 0, 0], [1, 2, t0 + 1, 4]).dataSync();
    const b = attend(kernel, q2, k2, v2, o);
    assertClose(tf.slice(b, [0, 0, 0, 0], [1, 2, t0 + 1, 4]).dataSync(), a, 1e-6, `${kernel} past`);
    // and the future outputs do change (the test can fail)
    const late = Math.abs(
      tf.slice(b, [0, 0, T - 1, 0], [1, 1, 1, 1]).dataSync()[0] -
        tf.slice(attend(kernel, q, k, v, o), [0, 0, T - 1, 0], [1, 1, 1, 1]).dataSync()[0],
    );
    assert.ok(kernel !== 'sparse' || T / 4 > 2, 'sparse selection must be active (more blocks than local + selected)');
    assert.ok(late > 1e-3, `${kernel}: last output should depend on the changed values`);
  }
});

test('fused equals plain in values and gradients (MHA, GQA, MQA, T not a multiple of the block, B>1)', async () => {
  await initEngine({ backend: 'cpu' });
  const cases = [
    // B, H, Hkv, T, hs, block
    [1, 2, 2, 8, 4, 4],
    [2, 4, 2, 13, 8, 4],
    [2, 4, 1, 10, 6, 3],
    [1, 2, 2, 5, 4, 16],
    [2, 3, 3, 33, 8, 8],
  ];
  for (const [B, H, Hkv, T, hs, bs] of cases) {
    const q = t4([B, H, T, hs], 10 + T, 2),
      k = t4([B, Hkv, T, hs], 20 + T, 2),
      v = t4([B, Hkv, T, hs], 30 + T);
    const ref = valueAndGrads((a, b, c) => plainAttention(a, b, c, opts()), q, k, v);
    const got = valueAndGrads((a, b, c) => fusedAttention(a, b, c, opts(), bs), q, k, v);
    assertSame(got, ref, 2e-5, `fused B${B} H${H} Hkv${Hkv} T${T} hs${hs} block${bs}`);
    tf.dispose([q, k, v]);
  }
});

test('fused attention frees its temporaries (no leaked tensors after forward+backward)', async () => {
  await initEngine({ backend: 'cpu' });
  const q = t4([1, 2, 9, 4], 1),
    k = t4([1, 1, 9, 4], 2),
    v = t4([1, 1, 9, 4], 3);
  const before = tf.memory().numTensors;
  const g = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
    tf.sum(fusedAttention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, opts(), 4)),
  )([q, k, v]);
  assert.equal(tf.memory().numTensors, before + 3, 'only the three gradients remain');
  tf.dispose([...g, q, k, v]);
});

test('fused dropout: rate 0 in training equals plain; rate>0 is deterministic per seed and exact under its mask', async () => {
  await initEngine({ backend: 'cpu' });
  const [B, H, Hkv, T, hs, bs] = [2, 4, 2, 7, 4, 3];
  const q = t4([B, H, T, hs], 41),
    k = t4([B, Hkv, T, hs], 42),
    v = t4([B, Hkv, T, hs], 43);
  const train0 = opts({ training: true, dropout: 0, seed: 5 });
  assertSame(
    valueAndGrads((a, b, c) => fusedAttention(a, b, c, train0, bs), q, k, v),
    valueAndGrads((a, b, c) => plainAttention(a, b, c, train0), q, k, v),
    2e-5,
    'dropout 0',
  );
  const rate = 0.3;
  const run = (seed: number) =>
    valueAndGrads((a, b, c) => fusedAttention(a, b, c, opts({ training: true, dropout: rate, seed }), bs), q, k, v);
  const a1 = run(7),
    a2 = run(7),
    b1 = run(8);
  assert.deepEqual(a1, a2, 'same seed, same numbers');
  assert.notDeepEqual(a1.y, b1.y, 'another seed drops other entries');
  // dropout off at eval even with a rate
  assertClose(
    fusedAttention(q, k, v, opts({ dropout: rate, training: false }), bs).dataSync(),
    loopAttention(q, k, v, causal),
    1e-5,
    'eval',
  );
  // rebuild the full [B, H, T, T] keep-multiplier from the kernel's tiles, then compare with a dense reference
  const g = H / Hkv;
  const mult = new Float32Array(B * H * T * T);
  const nb = Math.ceil(T / bs);
  for (let i = 0; i < nb; i++)
    for (let j = 0; j <= i; j++) {
      const nr = Math.min(bs, T - i * bs),
        nc = Math.min(bs, T - j * bs);
      const tile = fusedDropoutTile(7, rate, i, j, [B, Hkv, g * nr, nc]).dataSync();
      for (let b = 0; b < B; b++)
        for (let hk = 0; hk < Hkv; hk++)
          for (let gi = 0; gi < g; gi++)
            for (let r = 0; r < nr; r++)
              for (let c = 0; c < nc; c++)
                mult[((b * H + hk * g + gi) * T + i * bs + r) * T + j * bs + c] =
                  tile[((b * Hkv + hk) * g * nr + gi * nr + r) * nc + c];
    }
  const multT = tf.tensor4d(mult, [B, H, T, T]);
  const causalMaskB = tf.cast(
    tf.tile(tf.reshape(tf.linalg.bandPart(tf.ones([T, T]), -1, 0), [1, 1, T, T]), [B, Hkv, 1, 1]),
    'bool',
  ) as tf.Tensor4D;
  const ref = valueAndGrads((a, b, c) => denseMasked(a, b, c, causalMaskB, multT), q, k, v);
  assertSame(a1, ref, 2e-5, 'dropout vs dense with the same mask');
  assertClose(
    a1.y,
    loopAttention(q, k, v, causal, (b, h, t, s) => mult[((b * H + h) * T + t) * T + s]),
    1e-5,
    'dropout vs loops',
  );
  // expectation preserved: the mean over many seeds approaches the no-dropout output
  const small = [
    tf.slice(q, [0, 0, 0, 0], [1, 2, T, hs]),
    tf.slice(k, [0, 0, 0, 0], [1, 1, T, hs]),
    tf.slice(v, [0, 0, 0, 0], [1, 1, T, hs]),
  ] as tf.Tensor4D[];
  const N = 300;
  const mean = new Float64Array(2 * T * hs);
  for (let s = 0; s < N; s++) {
    const y = tf.tidy(() =>
      fusedAttention(
        small[0],
        small[1],
        small[2],
        opts({ training: true, dropout: rate, seed: 1000 + s }),
        bs,
      ).dataSync(),
    );
    for (let i = 0; i < y.length; i++) mean[i] += y[i] / N;
  }
  const exact = loopAttention(small[0], small[1], small[2], causal);
  let maxErr = 0;
  for (let i = 0; i < mean.length; i++) maxErr = Math.max(maxErr, Math.abs(mean[i] - exact[i]));
  assert.ok(maxErr < 0.12, `mean over ${N} seeds deviates by ${maxErr} from the no-dropout output`);
  tf.dispose([q, k, v, multT, causalMaskB, ...small]);
});

test('sparseBlocksUsed: n_i = min(i+1, local+selected), hand-computed', () => {
  assert.deepEqual(sparseBlocksUsed(24, { blockSize: 4, localBlocks: 2, selectedBlocks: 1 }), [1, 2, 3, 3, 3, 3]);
  assert.deepEqual(sparseBlocksUsed(10, { blockSize: 4, localBlocks: 1, selectedBlocks: 0 }), [1, 1, 1]);
  assert.deepEqual(
    sparseBlocksUsed(1024, { blockSize: 64, localBlocks: 1, selectedBlocks: 16 }),
    Array.from({ length: 16 }, (_, i) => i + 1),
  );
  assert.throws(
    () => sparseBlocksUsed(8, { blockSize: 0, localBlocks: 1, selectedBlocks: 1 }),
    /sparse.blockSize must be a positive integer, got 0/,
  );
  assert.throws(() => sparseBlocksUsed(8, { blockSize: 2, localBlocks: 0, selectedBlocks: 1 }), /sparse.localBlocks/);
});

test('sparse selection picks the block whose mean key best matches the mean query (hand-built)', async () => {
  await initEngine({ backend: 'cpu' });
  // T=8, blockSize 2 -> 4 blocks; local 1, selected 1. Queries 6, 7 point along e0 (others 0.1 e0), so
  // the pooled query of block 3 (positions 5, 6) and of block 2 (positions 3, 4) point along +e0;
  // key block 1 points along e0, blocks 0 and 2 along -e0: block 1 must be selected for query blocks 2 and 3.
  const T = 8,
    hs = 2;
  const qd = new Float32Array(T * hs),
    kd = new Float32Array(T * hs);
  for (let t = 0; t < T; t++) {
    qd[t * hs] = t >= 6 ? 1 : 0.1;
    kd[t * hs] = t === 2 || t === 3 ? 2 : -1;
  }
  const q = tf.tensor4d(qd, [1, 1, T, hs]),
    k = tf.tensor4d(kd, [1, 1, T, hs]);
  const sp = { blockSize: 2, localBlocks: 1, selectedBlocks: 1 };
  const sel = sparseSelection(q, k, sp);
  assert.deepEqual(sel.blocks[0][0], [[0], [0, 1], [1, 2], [1, 3]]);
  const m = sparseMask(q, k, sp);
  assert.deepEqual(m.shape, [1, 1, T, T]);
  const rows = (m.arraySync() as number[][][][])[0][0].map((r) => r.map((x) => (x ? 1 : 0)).join(''));
  assert.deepEqual(rows, [
    '10000000',
    '11000000',
    '11100000',
    '11110000',
    '00111000',
    '00111100',
    '00110010',
    '00110011',
  ]);
});

test('sparse selection is causal: a later query in the same block cannot change which blocks earlier tokens attend', async () => {
  await initEngine({ backend: 'cpu' });
  // T=8, blockSize 2, local 1, selected 1: block 2 (tokens 4, 5) picks one of blocks 0 (keys along e1) and 1 (along e0).
  // Queries 3 and 4 point along e0, so block 1 is the right choice for token 4; query 5 then swings to e1.
  // Pooling over the whole block (4, 5) would follow query 5 and switch token 4 to block 0.
  const T = 8,
    hs = 2;
  const kd = new Float32Array(T * hs),
    vd = new Float32Array(T * hs);
  for (let t = 0; t < T; t++) {
    kd[t * hs + (t < 2 ? 1 : 0)] = 1;
    vd[t * hs] = t;
  }
  const qOf = (q5: [number, number]) => {
    const qd = new Float32Array(T * hs);
    for (let t = 0; t < T; t++) qd[t * hs] = 1;
    qd[5 * hs] = q5[0];
    qd[5 * hs + 1] = q5[1];
    return tf.tensor4d(qd, [1, 1, T, hs]);
  };
  const k = tf.tensor4d(kd, [1, 1, T, hs]),
    v = tf.tensor4d(vd, [1, 1, T, hs]);
  const sp = { blockSize: 2, localBlocks: 1, selectedBlocks: 1 };
  const qa = qOf([1, 0]),
    qb = qOf([0, 100]);
  assert.deepEqual(sparseSelection(qa, k, sp).blocks[0][0][2], [1, 2]);
  assert.deepEqual(
    sparseSelection(qb, k, sp).blocks[0][0][2],
    [1, 2],
    'token 5 must not steer the selection of block 2',
  );
  const ya = sparseAttention(qa, k, v, opts({ sparse: sp })),
    yb = sparseAttention(qb, k, v, opts({ sparse: sp }));
  assertClose(
    tf.slice(yb, [0, 0, 0, 0], [1, 1, 5, hs]).dataSync(),
    tf.slice(ya, [0, 0, 0, 0], [1, 1, 5, hs]).dataSync(),
    1e-6,
    'tokens 0..4',
  );
  tf.dispose([qa, qb, k, v, ya, yb]);
});

test('sparse equals dense attention under its mask (values and gradients; GQA/MQA; T not a multiple)', async () => {
  await initEngine({ backend: 'cpu' });
  const cases: [number, number, number, number, number, SparseConfig][] = [
    [2, 4, 2, 24, 4, { blockSize: 4, localBlocks: 1, selectedBlocks: 2 }],
    [1, 3, 1, 22, 6, { blockSize: 4, localBlocks: 2, selectedBlocks: 1 }],
    [2, 2, 2, 16, 4, { blockSize: 2, localBlocks: 2, selectedBlocks: 0 }],
    [1, 2, 2, 20, 8, { blockSize: 2, localBlocks: 1, selectedBlocks: 3 }],
  ];
  for (const [B, H, Hkv, T, hs, sp] of cases) {
    const q = t4([B, H, T, hs], 50 + T, 2),
      k = t4([B, Hkv, T, hs], 60 + T, 2),
      v = t4([B, Hkv, T, hs], 70 + T);
    const mask = sparseMask(q, k, sp);
    const M = mask.dataSync();
    // the pattern really is sparse here, and each row attends exactly the blocks counted
    const used = sparseBlocksUsed(T, sp);
    let allowedCount = 0;
    for (let i = 0; i < M.length; i++) allowedCount += M[i];
    assert.ok(allowedCount < (B * Hkv * T * (T + 1)) / 2, `case T${T}: the mask should drop some causal entries`);
    const lastRow = Array.from(M.slice((T - 1) * T, T * T)).reduce((a, b) => a + b, 0);
    const lastBlockStart = Math.floor((T - 1) / sp.blockSize) * sp.blockSize;
    assert.equal(
      lastRow,
      (used[used.length - 1] - 1) * sp.blockSize + (T - lastBlockStart),
      `case T${T}: last row attends n blocks`,
    );
    const o = opts({ sparse: sp });
    const got = valueAndGrads((a, b, c) => sparseAttention(a, b, c, o), q, k, v);
    const ref = valueAndGrads((a, b, c) => denseMasked(a, b, c, mask), q, k, v);
    assertSame(got, ref, 2e-5, `sparse B${B} H${H} Hkv${Hkv} T${T}`);
    const g = H / Hkv;
    const loops = loopAttention(q, k, v, (b, h, t, s) => M[((b * Hkv + Math.floor(h / g)) * T + t) * T + s] === 1);
    assertClose(got.y, loops, 1e-5, `sparse vs loops T${T}`);
    tf.dispose([q, k, v, mask]);
  }
});

test('sparse dropout is exact under its own mask (values and gradients vs dense)', async () => {
  await initEngine({ backend: 'cpu' });
  const [B, H, Hkv, T, hs] = [2, 4, 2, 20, 4];
  const sp = { blockSize: 2, localBlocks: 1, selectedBlocks: 2 };
  const bs = sp.blockSize,
    g = H / Hkv,
    rate = 0.3,
    seed = 11;
  const q = t4([B, H, T, hs], 111, 2),
    k = t4([B, Hkv, T, hs], 112, 2),
    v = t4([B, Hkv, T, hs], 113);
  const blocks = sparseSelection(q, k, sp).blocks;
  const used = sparseBlocksUsed(T, sp);
  // rebuild the kernel's [B, H, T, T] keep-multiplier from its group tiles [B·Hkv, ng, g·bs, n·bs]
  const mult = new Float32Array(B * H * T * T);
  for (let i0 = 0; i0 < used.length; ) {
    const n = used[i0];
    let i1 = i0 + 1;
    while (i1 < used.length && used[i1] === n && i1 - i0 < SPARSE_GROUP) i1++;
    const ng = i1 - i0;
    const tile = sparseDropoutTile(seed, rate, i0, [B * Hkv, ng, g * bs, n * bs]).dataSync();
    for (let bh = 0; bh < B * Hkv; bh++)
      for (let ii = 0; ii < ng; ii++)
        for (let gi = 0; gi < g; gi++)
          for (let r = 0; r < bs; r++)
            for (let c = 0; c < n * bs; c++) {
              const [b, hk] = [Math.floor(bh / Hkv), bh % Hkv];
              const t = (i0 + ii) * bs + r,
                sIdx = blocks[b][hk][i0 + ii][Math.floor(c / bs)] * bs + (c % bs);
              mult[((b * H + hk * g + gi) * T + t) * T + sIdx] =
                tile[(((bh * ng + ii) * g + gi) * bs + r) * n * bs + c];
            }
    i0 = i1;
  }
  const multT = tf.tensor4d(mult, [B, H, T, T]);
  const mask = sparseMask(q, k, sp);
  const o = opts({ training: true, dropout: rate, seed, sparse: sp });
  assertSame(
    valueAndGrads((a, b, c) => sparseAttention(a, b, c, o), q, k, v),
    valueAndGrads((a, b, c) => denseMasked(a, b, c, mask, multT), q, k, v),
    2e-5,
    'sparse dropout',
  );
  tf.dispose([q, k, v, multT, mask]);
});

test('sparse with enough selected blocks equals full causal attention', async () => {
  await initEngine({ backend: 'cpu' });
  const q = t4([2, 4, 18, 4], 81, 2),
    k = t4([2, 2, 18, 4], 82, 2),
    v = t4([2, 2, 18, 4], 83);
  const o = opts({ sparse: { blockSize: 4, localBlocks: 1, selectedBlocks: 5 } });
  assertSame(
    valueAndGrads((a, b, c) => sparseAttention(a, b, c, o), q, k, v),
    valueAndGrads((a, b, c) => plainAttention(a, b, c, o), q, k, v),
    2e-5,
    'sparse covering all',
  );
  tf.dispose([q, k, v]);
});

test('determinism: same inputs and seed give identical outputs (sparse with dropout)', async () => {
  await initEngine({ backend: 'cpu' });
  const q = t4([1, 2, 16, 4], 91),
    k = t4([1, 2, 16, 4], 92),
    v = t4([1, 2, 16, 4], 93);
  const o = opts({
    training: true,
    dropout: 0.25,
    seed: 3,
    sparse: { blockSize: 4, localBlocks: 1, selectedBlocks: 1 },
  });
  assert.deepEqual(
    Array.from(sparseAttention(q, k, v, o).dataSync()),
    Array.from(sparseAttention(q, k, v, o).dataSync()),
  );
  assert.notDeepEqual(
    Array.from(sparseAttention(q, k, v, o).dataSync()),
    Array.from(sparseAttention(q, k, v, { ...o, seed: 4 }).dataSync()),
  );
  tf.dispose([q, k, v]);
});

test('clear errors for bad shapes and options', async () => {
  await initEngine({ backend: 'cpu' });
  const q = t4([1, 3, 4, 2], 1),
    k = t4([1, 2, 4, 2], 2);
  assert.throws(() => fusedAttention(q, k, k, opts()), /key\/value heads 2 must divide query heads 3/);
  assert.throws(() => sparseAttention(q, k, k, opts()), /key\/value heads 2 must divide query heads 3/);
  assert.throws(() => fusedAttention(q, q, q, opts(), 0), /fused block size must be a positive integer, got 0/);
  assert.throws(
    () => attend('dense' as never, q, q, q, opts()),
    /unknown attention kernel "dense"; valid: plain, fused, sparse/,
  );
  tf.dispose([q, k]);
});

test('wasm: fused and sparse match the cpu results (values and gradients)', async () => {
  const [B, H, Hkv, T, hs] = [2, 4, 2, 19, 8];
  const sp = { blockSize: 4, localBlocks: 1, selectedBlocks: 2 };
  const compute = () => {
    const q = t4([B, H, T, hs], 101, 2),
      k = t4([B, Hkv, T, hs], 102, 2),
      v = t4([B, Hkv, T, hs], 103);
    const r = {
      fused: valueAndGrads((a, b, c) => fusedAttention(a, b, c, opts(), 8), q, k, v),
      sparse: valueAndGrads((a, b, c) => sparseAttention(a, b, c, opts({ sparse: sp })), q, k, v),
      plain: valueAndGrads((a, b, c) => plainAttention(a, b, c, opts()), q, k, v),
    };
    tf.dispose([q, k, v]);
    return r;
  };
  await initEngine({ backend: 'cpu' });
  const cpu = compute();
  await initEngine({ backend: 'wasm' });
  const wasm = compute();
  await initEngine({ backend: 'cpu' });
  assertSame(wasm.fused, cpu.fused, 2e-5, 'wasm fused');
  assertSame(wasm.sparse, cpu.sparse, 2e-5, 'wasm sparse');
  assertSame(wasm.fused, cpu.plain, 2e-5, 'wasm fused vs cpu plain');
});
