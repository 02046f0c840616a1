import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initEngine, tf } from '../src/engine/index.js';
import { kernelPatches } from '../src/engine/kernels.js';
import { blasName, loadNative } from '../src/engine/native.js';
import {
  softmaxCrossEntropy,
  crossEntropyTfOps,
  gelu,
  geluTfOps,
  fusedActive,
  adamwUpdate,
  adamwTfOps,
  causalSoftmax,
  causalSoftmaxTfOps,
  sumOfSquares,
  sumOfSquaresTfOps,
} from '../src/engine/fused.js';

/** Deterministic values in [-1, 1). */
function vals(n: number, seed: number): Float32Array {
  const v = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = s / 2 ** 31 - 1;
  }
  return v;
}
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Run `f` on the cpu backend and on (patched) wasm; return both outputs as flat arrays. */
async function onBoth(
  f: () => tf.Tensor[],
): Promise<{ cpu: Float32Array[]; wasm: Float32Array[]; shapes: number[][] }> {
  const run = () =>
    tf
      .tidy(() => f())
      .map((t) => {
        const r = { v: t.dataSync() as Float32Array, s: t.shape };
        t.dispose();
        return r;
      });
  await initEngine({ backend: 'cpu' });
  const cpu = run();
  await initEngine({ backend: 'wasm' });
  const wasm = run();
  assert.deepEqual(
    wasm.map((r) => r.s),
    cpu.map((r) => r.s),
    'shapes differ between wasm and cpu',
  );
  return { cpu: cpu.map((r) => r.v), wasm: wasm.map((r) => r.v), shapes: cpu.map((r) => r.s) };
}

function close(got: Float32Array, want: Float32Array, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    assert.ok(d <= tol * (1 + Math.abs(want[i])), `${what}[${i}]: wasm ${got[i]} vs cpu ${want[i]}`);
  }
}

test('wasm BatchMatMul is replaced (unless CEG_KERNELS=stock)', async () => {
  await initEngine({ backend: 'wasm' });
  if (process.env.CEG_KERNELS === 'stock') return;
  const native = process.env.CEG_NATIVE === '0' ? null : loadNative();
  const blas = native ? blasName() : null;
  assert.deepEqual(kernelPatches('wasm'), [
    'BatchMatMul',
    'Slice',
    'SplitV',
    'Identity',
    'Sum',
    'GatherV2',
    ...(native ? [`BatchMatMul:native-${native.isa}`] : []),
    ...(blas ? [`BatchMatMul:${blas}`] : []),
  ]);
});

/** Plain-loop reference of op(A)·op(B) for one batch entry. */
function refMatMul(
  A: Float32Array,
  B: Float32Array,
  M: number,
  N: number,
  K: number,
  tA: boolean,
  tB: boolean,
): Float32Array {
  const C = new Float32Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (tA ? A[k * M + i] : A[i * K + k]) * (tB ? B[j * K + k] : B[k * N + j]);
      C[i * N + j] = s;
    }
  return C;
}

test('native matmul addon (when built) equals plain loops: transposes, batch strides, broadcast, edge tiles, K > 256; our SGEMM and OpenBLAS', (t) => {
  const native = loadNative();
  if (!native)
    return t.skip(
      process.env.CEG_NATIVE === '0'
        ? 'native addon disabled (CEG_NATIVE=0)'
        : 'native addon not built (npm run build:native)',
    );
  // both SGEMMs the addon can use: ours (mode 0) and, when the system has it, OpenBLAS's cblas_sgemm (mode 1)
  const modes: (0 | 1)[] = native.blasConfig() ? [0, 1] : [0];
  const before = native.setGemm(0);
  try {
    for (const mode of modes) {
      native.setGemm(mode);
      checkNativeMatMul(native, mode ? 'OpenBLAS' : 'ours');
    }
  } finally {
    native.setGemm(before as 0 | 1);
  }
  assert.throws(() => native.matmul(new Float32Array(10), 0, 0, 8, 1, 2, 2, 2, false, false, 0, 0), /outside the heap/);
  assert.throws(() => native.setGemm(2 as 0), /mode must be 0 or 1/);
});

test('OpenBLAS, when the system has it, is connected single-threaded for every product unless CEG_BLAS=0, and named in the kernel set', async (t) => {
  const native = loadNative();
  if (!native) return t.skip('native addon not built');
  await initEngine({ backend: 'wasm' });
  const blas = blasName();
  if (process.env.CEG_BLAS === '0') {
    assert.equal(blas, null);
    assert.equal(native.blasConfig(), '');
    return;
  }
  if (!blas) return t.skip('no OpenBLAS on this system (libopenblas0-pthread)');
  assert.match(blas, /^openblas(-[0-9.]+)?$/);
  assert.match(native.blasConfig(), /OpenBLAS/);
  assert.ok(kernelPatches('wasm').includes(`BatchMatMul:${blas}`));
  assert.equal(native.setGemm(1), 1, 'the engine selected OpenBLAS for every product');
  assert.equal(native.loadBlas('/nonexistent/libopenblas.so.0'), '', 'already loaded: a second load is a no-op');
});

test('CEG_BLAS=0 keeps our SGEMM: no OpenBLAS loaded or named, products still exact (child process)', async (t) => {
  const native = loadNative();
  if (!native || !native.blasConfig()) return t.skip('no OpenBLAS connected in this process: nothing to turn off');
  const { spawnSync } = await import('node:child_process');
  const script = `
    import { initEngine, tf } from './src/engine/index.js';
    import { kernelPatches } from './src/engine/kernels.js';
    import { loadNative, blasStatus } from './src/engine/native.js';
    await initEngine({ backend: 'wasm' });
    const y = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]])).dataSync();
    console.log(JSON.stringify({ patches: kernelPatches('wasm'), config: loadNative().blasConfig(), status: blasStatus(), y: Array.from(y) }));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, CEG_BLAS: '0' },
  });
  assert.equal(r.status, 0, r.stderr.slice(-1500));
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    patches: string[];
    config: string;
    status: string;
    y: number[];
  };
  assert.equal(out.config, '', 'OpenBLAS was not loaded');
  assert.ok(!out.patches.some((k) => k.includes('openblas')), `kernel set names no OpenBLAS: ${out.patches}`);
  assert.ok(
    out.patches.some((k) => k.startsWith('BatchMatMul:native-')),
    'our native SGEMM serves',
  );
  assert.match(out.status, /disabled by CEG_BLAS=0/);
  assert.deepEqual(out.y, [19, 22, 43, 50]);
});

function checkNativeMatMul(native: NonNullable<ReturnType<typeof loadNative>>, which: string): void {
  // shapes around the 12 x 32 register tile (AVX-512; 12 x 16 on AVX2), the 120-row, 256-deep and 512-wide blocks
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [5, 3, 7],
    [9, 33, 17],
    [12, 32, 32],
    [25, 64, 257],
    [17, 65, 300],
    [3, 520, 9],
    [130, 40, 5],
    [241, 32, 3],
    // the column tail (N mod NR) through the padded-panel path: attention head sizes, a tail with K > 256 (accumulating)
    [128, 4, 128],
    [37, 18, 300],
    [13, 50, 513],
  ];
  for (const [M, N, K] of shapes)
    for (const tA of [false, true])
      for (const tB of [false, true])
        for (const [batch, sAon, sBon] of [
          [1, 1, 1],
          [3, 1, 1],
          [3, 0, 1],
          [2, 1, 0],
        ]) {
          const aOff = 3,
            bOff = aOff + 3 * M * K + 1,
            cOff = bOff + 3 * K * N + 2;
          const heap = new Float32Array(cOff + batch * M * N + 5);
          heap.set(vals(heap.length, M * 1000 + N * 10 + K));
          const sA = sAon ? M * K : 0,
            sB = sBon ? K * N : 0;
          const guard = heap.slice(cOff + batch * M * N);
          native.matmul(heap, aOff, bOff, cOff, batch, M, N, K, tA, tB, sA, sB);
          for (let b = 0; b < batch; b++) {
            const want = refMatMul(
              heap.subarray(aOff + b * sA, aOff + b * sA + M * K),
              heap.subarray(bOff + b * sB, bOff + b * sB + K * N),
              M,
              N,
              K,
              tA,
              tB,
            );
            const got = heap.subarray(cOff + b * M * N, cOff + (b + 1) * M * N);
            for (let i = 0; i < want.length; i++)
              assert.ok(
                Math.abs(got[i] - want[i]) <= 1e-5 * (K + Math.abs(want[i])),
                `${which}: M${M} N${N} K${K} tA ${tA} tB ${tB} batch ${batch}/${sAon}${sBon} [${b}, ${i}]: ${got[i]} vs ${want[i]}`,
              );
          }
          assert.deepEqual(heap.slice(cOff + batch * M * N), guard, `${which}: wrote past the output`);
        }
}

test('the wasm (XNNPACK) matmul path still equals cpu with the native addon off (CEG_NATIVE=0, child process)', async (t) => {
  if (process.env.CEG_NATIVE === '0') return t.skip('this process already runs with CEG_NATIVE=0');
  if (!loadNative()) return t.skip('native addon not built: the tests above already exercise the wasm path');
  const { spawnSync } = await import('node:child_process');
  // TAP, asked for by name: the default reporter differs between Node versions (tap on 20 when not a
  // terminal, spec with 'ℹ pass 9' from 23 on); TAP's 'ok N - name' lines do not. The summary's
  // '# pass N' is not enough: Node 24 counts the file itself as a passing test when nothing matched.
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      '--test-reporter=tap',
      '--test-reporter-destination=stdout',
      '--test-name-pattern',
      'matmul|matMul|products|fused|Sum',
      'test/kernels.test.ts',
    ],
    {
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, CEG_NATIVE: '0', NODE_TEST_CONTEXT: undefined },
    },
  );
  assert.equal(r.status, 0, `child with CEG_NATIVE=0 failed:\n${(r.stdout + r.stderr).slice(-1500)}`);
  assert.doesNotMatch(r.stdout, /^\s*not ok \d+/m, `child reported failures:\n${r.stdout.slice(-1500)}`);
  const passed = [...r.stdout.matchAll(/^\s*ok \d+ - (.*)$/gm)]
    .map((m) => m[1])
    .filter((name) => !/ # (SKIP|TODO)\b/i.test(name));
  for (const want of [
    '2-D matmul equals a plain triple loop',
    'matMul equals the cpu backend',
    'large products (XNNPACK path',
  ])
    assert.ok(
      passed.some((name) => name.startsWith(want)),
      `child did not pass '${want}…'; passed: ${JSON.stringify(passed)}\n${r.stdout.slice(-1500)}`,
    );
});

test('2-D matmul equals a plain triple loop, all transpose combinations', async () => {
  await initEngine({ backend: 'wasm' });
  const M = 5,
    K = 7,
    N = 3;
  const a = vals(M * K, 1),
    b = vals(K * N, 2);
  const want = new Float32Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[i * K + k] * b[k * N + j];
      want[i * N + j] = s;
    }
  const transpose = (x: Float32Array, r: number, c: number) => {
    const t = new Float32Array(r * c);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = x[i * c + j];
    return t;
  };
  for (const tA of [false, true])
    for (const tB of [false, true]) {
      const got = tf.tidy(() => {
        const A = tA ? tf.tensor2d(transpose(a, M, K), [K, M]) : tf.tensor2d(a, [M, K]);
        const B = tB ? tf.tensor2d(transpose(b, K, N), [N, K]) : tf.tensor2d(b, [K, N]);
        return tf.matMul(A, B, tA, tB).dataSync() as Float32Array;
      });
      close(got, want, 1e-5, `tA=${tA} tB=${tB}`);
    }
});

// [a shape, b shape] before transposition flags are applied to the last two dims
const CASES: { a: number[]; b: number[] }[] = [
  { a: [33, 17], b: [17, 40] }, // 2-D
  { a: [1, 9, 6], b: [1, 6, 4] }, // batch 1 on both sides
  { a: [3, 9, 6], b: [3, 6, 4] }, // 3-D batched
  { a: [2, 3, 12, 8], b: [2, 3, 8, 12] }, // 4-D batched (attention-like)
  { a: [4, 5, 6], b: [6, 7] }, // batched A, unbatched B (folded into one product)
  { a: [5, 6], b: [3, 6, 7] }, // unbatched A, batched B
  { a: [3, 5, 6], b: [1, 6, 7] }, // batch dims broadcast from 1
  { a: [1, 5, 6], b: [3, 6, 7] },
  { a: [2, 4, 5, 6], b: [6, 7] },
];

function shaped(s: number[], t: boolean): number[] {
  if (!t) return s;
  const r = s.slice();
  [r[r.length - 2], r[r.length - 1]] = [r[r.length - 1], r[r.length - 2]];
  return r;
}

test('matMul equals the cpu backend (2-D, 3-D, 4-D, broadcast batch dims) and so do its gradients (equal batch dims), every transpose combination', async () => {
  for (const [ci, c] of CASES.entries())
    for (const tA of [false, true])
      for (const tB of [false, true]) {
        const sa = shaped(c.a, tA),
          sb = shaped(c.b, tB);
        const va = vals(size(sa), 10 + ci),
          vb = vals(size(sb), 20 + ci);
        // tfjs-core's BatchMatMul gradient (on every backend) does not reduce broadcast batch dims
        const sameBatch = c.a.slice(0, -2).join() === c.b.slice(0, -2).join();
        const r = await onBoth(() => {
          const A = tf.tensor(va, sa),
            B = tf.tensor(vb, sb);
          const y = tf.matMul(A, B, tA, tB);
          if (!sameBatch) return [y];
          const w = tf.tensor(vals(size(y.shape), 30 + ci), y.shape); // weights so every output entry matters
          const [gA, gB] = tf.grads((x: tf.Tensor, z: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, z, tA, tB), w)))([A, B]);
          return [y, gA, gB];
        });
        const what = `a=[${sa}] b=[${sb}] tA=${tA} tB=${tB}`;
        close(r.wasm[0], r.cpu[0], 1e-5, `${what} value`);
        if (!sameBatch) continue;
        close(r.wasm[1], r.cpu[1], 1e-5, `${what} dA`);
        close(r.wasm[2], r.cpu[2], 1e-5, `${what} dB`);
      }
});

test('large products (XNNPACK path, both cost-model branches) equal the cpu backend', async () => {
  // tied head shape (x·Wᵀ) and its weight gradient (dyᵀ·x): the two choose different strategies
  const x = vals(64 * 32, 3),
    w = vals(500 * 32, 4),
    dy = vals(64 * 500, 5);
  const r = await onBoth(() => [
    tf.matMul(tf.tensor2d(x, [64, 32]), tf.tensor2d(w, [500, 32]), false, true), // [64, 500]
    tf.matMul(tf.tensor2d(dy, [64, 500]), tf.tensor2d(x, [64, 32]), true, false), // [500, 32]
    tf.matMul(tf.tensor2d(x, [64, 32]), tf.tensor2d(dy, [64, 500]), true, false), // [32, 500]
  ]);
  for (let i = 0; i < 3; i++) close(r.wasm[i], r.cpu[i], 1e-4, `product ${i}`);
});

test('Slice equals the cpu backend for 1-D to 5-D, float32 and int32', async () => {
  const cases: { shape: number[]; begin: number[]; size: number[] }[] = [
    { shape: [10], begin: [3], size: [4] },
    { shape: [6, 9], begin: [1, 2], size: [3, 5] },
    { shape: [6, 9], begin: [2, 0], size: [3, 9] }, // contiguous rows
    { shape: [4, 5, 6], begin: [1, 0, 2], size: [2, 5, 3] },
    { shape: [4, 5, 6], begin: [1, 2, 0], size: [3, 2, 6] },
    { shape: [2, 3, 4, 5], begin: [0, 1, 1, 1], size: [2, 2, 3, 3] },
    { shape: [2, 3, 2, 4, 5], begin: [1, 0, 1, 2, 0], size: [1, 3, 1, 2, 5] },
    { shape: [4, 5], begin: [1, 1], size: [0, 3] }, // empty
  ];
  for (const c of cases)
    for (const dtype of ['float32', 'int32'] as const) {
      const v = Array.from(vals(size(c.shape), 7), (x) => Math.round(x * 1000));
      const r = await onBoth(() => [tf.cast(tf.slice(tf.tensor(v, c.shape, dtype), c.begin, c.size), 'float32')]);
      assert.deepEqual(r.shapes[0], c.size);
      assert.deepEqual(
        Array.from(r.wasm[0]),
        Array.from(r.cpu[0]),
        `${dtype} slice of [${c.shape}] at [${c.begin}] size [${c.size}]`,
      );
    }
});

test('gather (GatherV2, the embedding lookup) equals the cpu backend: axis 0 rows, 1-D/2-D/3-D ids and tables, repeats, float32 and int32; other axes', async () => {
  const cases: { shape: number[]; ids: number[]; idShape: number[]; axis: number }[] = [
    { shape: [7, 5], ids: [3, 0, 6, 3, 3, 1], idShape: [6], axis: 0 },
    { shape: [7, 5], ids: [3, 0, 6, 3, 2, 1], idShape: [2, 3], axis: 0 }, // [B, T] ids as the model has them
    { shape: [9], ids: [8, 0, 4], idShape: [3], axis: 0 },
    { shape: [4, 3, 2], ids: [1, 3], idShape: [2], axis: 0 },
    { shape: [4, 3, 2], ids: [2, 0, 2], idShape: [3], axis: 1 }, // the shipped kernel
    { shape: [6, 4], ids: [], idShape: [0], axis: 0 },
  ];
  for (const c of cases)
    for (const dtype of ['float32', 'int32'] as const) {
      const v = Array.from(vals(size(c.shape), 11), (x) => Math.round(x * 1000));
      const r = await onBoth(() => [
        tf.cast(tf.gather(tf.tensor(v, c.shape, dtype), tf.tensor(c.ids, c.idShape, 'int32'), c.axis), 'float32'),
      ]);
      assert.deepEqual(
        Array.from(r.wasm[0]),
        Array.from(r.cpu[0]),
        `${dtype} gather of [${c.shape}] at [${c.ids}] axis ${c.axis}`,
      );
    }
  await initEngine({ backend: 'wasm' });
  const before = tf.memory().numTensors;
  assert.throws(
    () => tf.tidy(() => tf.gather(tf.ones([3, 2]), tf.tensor1d([0, 3], 'int32')).dataSync()),
    /index 3 at position 1 is not in \[0, 2\]/,
  );
  assert.equal(tf.memory().numTensors, before, 'a refused gather leaks nothing');
  // the embedding's gradient through the gather (UnsortedSegmentSum on wasm) still equals cpu
  const g = await onBoth(() => [
    tf.grad((w: tf.Tensor) =>
      tf.sum(tf.mul(tf.gather(w, tf.tensor1d([2, 0, 2, 1], 'int32')), tf.tensor2d(vals(12, 5), [4, 3]))),
    )(tf.ones([4, 3])),
  ]);
  close(g.wasm[0], g.cpu[0], 1e-6, 'gather gradient');
});

test('split (SplitV) and its gradient equal the cpu backend on every axis', async () => {
  const shape = [3, 4, 6];
  const v = vals(size(shape), 9);
  for (const axis of [0, 1, 2, -1])
    for (const parts of [2, [1, -1]] as (number | number[])[]) {
      const n = shape.at(axis)!;
      const split = typeof parts === 'number' ? (n % 2 === 0 ? 2 : 3) : [1, n - 1];
      const r = await onBoth(() => {
        const x = tf.tensor(v, shape);
        const ys = tf.split(x, split, axis);
        const g = tf.grad((z: tf.Tensor) => tf.sum(tf.mul(tf.split(z, split, axis)[0], 2)))(x);
        return [...ys, g];
      });
      for (let i = 0; i < r.cpu.length; i++)
        assert.deepEqual(Array.from(r.wasm[i]), Array.from(r.cpu[i]), `axis ${axis} split ${split} output ${i}`);
    }
});

test('Sum over leading axes (and others, keepDims) equals a plain loop / the cpu backend, with its gradient', async () => {
  await initEngine({ backend: 'wasm' });
  // plain-loop reference: column sums of [5, 7]
  const v = vals(35, 11);
  const want = new Float64Array(7);
  for (let r = 0; r < 5; r++) for (let c = 0; c < 7; c++) want[c] += v[r * 7 + c];
  const got = tf.tidy(() => tf.sum(tf.tensor2d(v, [5, 7]), 0).dataSync());
  close(got as Float32Array, Float32Array.from(want), 1e-6, 'column sums');
  const cases: [number[], number | number[], boolean][] = [
    [[6, 4], 0, false],
    [[6, 4], 0, true],
    [[3, 4, 5], [0, 1], false],
    [[3, 4, 5], 0, true],
    [[3, 4, 5], [1], false],
    [[3, 4, 5], [0, 2], false],
    [[3, 4, 5], -1, false],
    [[2, 3, 4, 5], [0, 1, 2], true],
    [[7], 0, false],
    [[1100, 3], 0, false],
  ];
  for (const [shape, axis, keep] of cases) {
    const x0 = vals(size(shape), shape.length * 7 + size(shape));
    const r = await onBoth(() => {
      const x = tf.tensor(x0, shape);
      const g = tf.grad((z: tf.Tensor) => tf.sum(tf.mul(tf.sum(z, axis, keep), tf.sum(z, axis, keep))))(x);
      return [tf.sum(x, axis, keep), g];
    });
    close(r.wasm[0], r.cpu[0], 1e-5, `sum ${shape} axis ${axis} keep ${keep}`);
    close(r.wasm[1], r.cpu[1], 1e-4, `sum grad ${shape} axis ${axis} keep ${keep}`);
  }
});

test('Identity shares the buffer (clone) and values stay independent of later ops', async () => {
  await initEngine({ backend: 'wasm' });
  const x = tf.tensor1d([1, 2, 3]);
  const c = tf.clone(x);
  assert.equal(c.dataId, x.dataId, 'clone should share the buffer, not copy it');
  const v = tf.variable(c);
  v.assign(tf.tensor1d([7, 8, 9]));
  assert.deepEqual(Array.from(x.dataSync()), [1, 2, 3]);
  assert.deepEqual(Array.from(c.dataSync()), [1, 2, 3]);
  x.dispose();
  assert.deepEqual(Array.from(c.dataSync()), [1, 2, 3], 'clone survives disposing its source');
  assert.deepEqual(Array.from(v.dataSync()), [7, 8, 9]);
  tf.dispose([c, v]);
});

test('fused softmaxCrossEntropy equals plain loops (value and gradient) on wasm and cpu, and the tf-ops version', async () => {
  for (const [N, V, scale] of [
    [6, 11, 4],
    [5, 37, 40],
    [3, 64, 0.01],
  ])
    await checkCe(N, V, scale);
});

async function checkCe(N: number, V: number, scale: number): Promise<void> {
  const x = vals(N * V, 21 + V).map((v) => scale * v);
  const tg = Int32Array.from({ length: N }, (_, n) => (n * 7 + 3) % V);
  // reference: loss = mean(lse - x[t]); grad = (softmax - onehot) / N
  let loss = 0;
  const grad = new Float32Array(N * V);
  for (let n = 0; n < N; n++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, x[n * V + v]);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(x[n * V + v] - m);
    const lse = m + Math.log(s);
    loss += (lse - x[n * V + tg[n]]) / N;
    for (let v = 0; v < V; v++) grad[n * V + v] = (Math.exp(x[n * V + v] - lse) - (v === tg[n] ? 1 : 0)) / N;
  }
  for (const backend of ['wasm', 'cpu'] as const) {
    await initEngine({ backend });
    assert.ok(fusedActive(), `fused kernels registered on ${backend}`);
    const [l, g, lRef, gRef] = tf.tidy(() => {
      const lg = tf.tensor2d(x, [N, V]);
      const t = tf.tensor1d(tg, 'int32');
      const f = (z: tf.Tensor) => tf.mul(softmaxCrossEntropy(z as tf.Tensor2D, t), 3);
      const fr = (z: tf.Tensor) => tf.mul(crossEntropyTfOps(z as tf.Tensor2D, t), 3);
      return [f(lg), tf.grad(f)(lg), fr(lg), tf.grad(fr)(lg)].map((r) => r.dataSync() as Float32Array);
    });
    const what = `${backend} N${N} V${V} scale ${scale}`;
    close(l, Float32Array.of(3 * loss), 1e-6, `${what} loss`);
    close(
      g,
      grad.map((v) => 3 * v),
      1e-6,
      `${what} grad`,
    );
    close(lRef, l, 1e-5, `${what} tf-ops loss`);
    close(gRef, g, 1e-5, `${what} tf-ops grad`);
  }
  await initEngine({ backend: 'wasm' });
  assert.throws(
    () => tf.tidy(() => softmaxCrossEntropy(tf.zeros([2, 3]) as tf.Tensor2D, tf.tensor1d([0, 3], 'int32'))),
    /target 3 at row 1 is outside the vocabulary 0..2/,
  );
}

test('fused GELU equals known values, the tf-ops version and a finite-difference gradient, on wasm and cpu', async () => {
  const xs = Float32Array.from([-6, -3, -1.5, -0.5, -1e-3, 0, 0.3, 1, 2.5, 7]);
  // exact GELU values (erf from a high-precision table): x·Φ(x)
  const known: [number, number][] = [
    [1, 0.8413447461],
    [-0.5, -0.1542687694],
    [2.5, 2.4844758],
    [-3, -0.004049698],
  ];
  for (const backend of ['wasm', 'cpu'] as const) {
    await initEngine({ backend });
    for (const [xv, yv] of known) {
      const y = tf.tidy(() => gelu(tf.tensor1d([xv])).dataSync()[0]);
      assert.ok(Math.abs(y - yv) < 2e-6, `${backend} gelu(${xv}) = ${y}, want ${yv}`);
    }
    const [y, g, yRef, gRef] = tf.tidy(() => {
      const x = tf.tensor2d(xs, [2, 5]);
      const w = tf.tensor2d(vals(10, 5), [2, 5]);
      const f = (z: tf.Tensor) => tf.sum(tf.mul(gelu(z), w));
      const fr = (z: tf.Tensor) => tf.sum(tf.mul(geluTfOps(z), w));
      return [gelu(x), tf.grad(f)(x), geluTfOps(x), tf.grad(fr)(x)].map((r) => r.dataSync() as Float32Array);
    });
    close(y, yRef, 1e-6, `${backend} gelu vs tf ops`);
    close(g, gRef, 1e-5, `${backend} gelu grad vs tf ops`);
    const w = vals(10, 5);
    for (let i = 0; i < xs.length; i++) {
      const h = 1e-3;
      const gx = (v: number) => tf.tidy(() => gelu(tf.tensor1d([v])).dataSync()[0]);
      const fd = ((gx(xs[i] + h) - gx(xs[i] - h)) / (2 * h)) * w[i];
      assert.ok(
        Math.abs(g[i] - fd) < 2e-3 * (1 + Math.abs(fd)),
        `${backend} gelu'(${xs[i]}): ${g[i]} vs finite difference ${fd}`,
      );
    }
  }
});

test('fused causal softmax equals plain float64 loops and the tf-ops attention (values and gradients), on wasm and cpu', async () => {
  // T = 21 and 37: rows shorter and longer than a vector, with a tail; 3-D and 4-D scores
  for (const shape of [
    [2, 3, 21, 21],
    [3, 37, 37],
  ]) {
    const T = shape[shape.length - 1];
    const n = size(shape);
    const x = vals(n, 11).map((v) => 4 * v);
    const w = vals(n, 12);
    const scale = 1 / Math.sqrt(5);
    // reference, float64: y = softmax over j <= i of scale·x; dL/dx for L = Σ w·y
    const yRef = new Float64Array(n);
    const gRef = new Float64Array(n);
    for (let r = 0; r < n / T; r++) {
      const i = r % T;
      const o = r * T;
      const m = Math.max(...Array.from(x.subarray(o, o + i + 1), (v) => v * scale));
      let s = 0;
      for (let j = 0; j <= i; j++) s += Math.exp(x[o + j] * scale - m);
      for (let j = 0; j <= i; j++) yRef[o + j] = Math.exp(x[o + j] * scale - m) / s;
      let d = 0;
      for (let j = 0; j <= i; j++) d += w[o + j] * yRef[o + j];
      for (let j = 0; j <= i; j++) gRef[o + j] = scale * yRef[o + j] * (w[o + j] - d);
    }
    for (const backend of ['wasm', 'cpu'] as const) {
      await initEngine({ backend });
      assert.ok(fusedActive(), `${backend}: fused kernels registered`);
      const [y, g, yTf, gTf] = tf.tidy(() => {
        const xt = tf.tensor(x, shape);
        const wt = tf.tensor(w, shape);
        const f = (z: tf.Tensor) => tf.sum(tf.mul(causalSoftmax(z, scale), wt));
        const fr = (z: tf.Tensor) => tf.sum(tf.mul(causalSoftmaxTfOps(z, scale), wt));
        return [causalSoftmax(xt, scale), tf.grad(f)(xt), causalSoftmaxTfOps(xt, scale), tf.grad(fr)(xt)].map(
          (t) => t.dataSync() as Float32Array,
        );
      });
      const ref = (a: Float64Array) => Float32Array.from(a);
      close(y, ref(yRef), 2e-6, `${backend} ${shape} causal softmax vs float64 loops`);
      close(g, ref(gRef), 2e-6, `${backend} ${shape} causal softmax grad vs float64 loops`);
      close(y, yTf, 2e-6, `${backend} ${shape} causal softmax vs tf ops`);
      close(g, gTf, 2e-6, `${backend} ${shape} causal softmax grad vs tf ops`);
      for (let r = 0; r < n / T; r++)
        for (let j = (r % T) + 1; j < T; j++) assert.equal(y[r * T + j], 0, 'masked entries are exactly 0');
    }
  }
  assert.throws(() => causalSoftmax(tf.zeros([2, 3, 4]), 1), /must be \[\.\.\., T, T\]/);
});

test('fused sum of squares over many tensors equals float64 loops and the tf-ops version, on wasm and cpu', async () => {
  // lengths around the vector width and the 4096-element accumulation block, and a scalar
  const shapes = [[3], [16], [17], [5, 7], [4097], [64, 130], []];
  const data = shapes.map((s, i) => vals(Math.max(1, size(s)), 40 + i).map((v) => 3 * v));
  let want = 0;
  for (const d of data) for (const v of d) want += v * v;
  for (const backend of ['wasm', 'cpu'] as const) {
    await initEngine({ backend });
    const [got, ref] = tf.tidy(() => {
      const ts = shapes.map((s, i) => tf.tensor(data[i], s));
      return [sumOfSquares(ts).dataSync()[0], sumOfSquaresTfOps(ts).dataSync()[0]];
    });
    assert.ok(Math.abs(got - want) <= 1e-6 * want, `${backend}: ${got} vs float64 ${want}`);
    assert.ok(Math.abs(ref - want) <= 1e-5 * want, `${backend}: tf ops ${ref} vs float64 ${want}`);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      sumOfSquares([tf.ones([3])]);
    });
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
  }
});

test('fused AdamW update equals plain loops (float64) and the tf-ops formula, on wasm and cpu', async () => {
  const n = 37;
  const p = vals(n, 31),
    m = vals(n, 32).map((x) => 0.1 * x),
    v = vals(n, 33).map((x) => 0.01 * x * x),
    g = vals(n, 34);
  const h = {
    lr: 3e-3,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    decay: 1 - 3e-3 * 0.1,
    bc1: 1 - 0.9 ** 3,
    bc2: 1 - 0.95 ** 3,
  };
  const want = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
  for (let i = 0; i < n; i++) {
    const mi = h.beta1 * m[i] + (1 - h.beta1) * g[i];
    const vi = h.beta2 * v[i] + (1 - h.beta2) * g[i] * g[i];
    want[0][i] = p[i] * h.decay - (h.lr * (mi / h.bc1)) / (Math.sqrt(vi / h.bc2) + h.eps);
    want[1][i] = mi;
    want[2][i] = vi;
  }
  for (const backend of ['wasm', 'cpu'] as const) {
    await initEngine({ backend });
    assert.ok(fusedActive());
    const [got, ref] = tf.tidy(() => {
      const ts = [p, m, v, g].map((a) => tf.tensor2d(a, [1, n]));
      const f = adamwUpdate(ts[0], ts[1], ts[2], ts[3], h).map((t) => t.dataSync() as Float32Array);
      const r = adamwTfOps(ts[0], ts[1], ts[2], ts[3], h).map((t) => t.dataSync() as Float32Array);
      return [f, r];
    });
    ['p', 'm', 'v'].forEach((name, k) => {
      close(got[k], want[k], 1e-6, `${backend} adamw ${name}`);
      close(ref[k], got[k], 1e-6, `${backend} adamw ${name} vs tf ops`);
    });
  }
});

test('fused AdamW with a gradient scale (clipping folded in) equals scaling first, bit for bit, and float64 loops, on wasm and cpu', async () => {
  const n = 53; // longer than a vector, with a tail
  const p = vals(n, 41),
    m = vals(n, 42).map((x) => 0.1 * x),
    v = vals(n, 43).map((x) => 0.01 * x * x),
    g = vals(n, 44).map((x) => 7 * x);
  const h = {
    lr: 1e-2,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    decay: 1 - 1e-2 * 0.1,
    bc1: 1 - 0.9 ** 2,
    bc2: 1 - 0.95 ** 2,
  };
  const scale = Math.fround(0.3712);
  const want = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
  for (let i = 0; i < n; i++) {
    const gi = g[i] * scale;
    const mi = h.beta1 * m[i] + (1 - h.beta1) * gi;
    const vi = h.beta2 * v[i] + (1 - h.beta2) * gi * gi;
    want[0][i] = p[i] * h.decay - (h.lr * (mi / h.bc1)) / (Math.sqrt(vi / h.bc2) + h.eps);
    want[1][i] = mi;
    want[2][i] = vi;
  }
  for (const backend of ['wasm', 'cpu'] as const) {
    await initEngine({ backend });
    assert.ok(fusedActive());
    const [folded, scaledFirst, tfops, unscaled] = tf.tidy(() => {
      const ts = [p, m, v, g].map((a) => tf.tensor1d(a));
      const s = tf.scalar(scale);
      const read = (r: tf.Tensor[]) => r.map((t) => t.dataSync() as Float32Array);
      return [
        read(adamwUpdate(ts[0], ts[1], ts[2], ts[3], h, s)),
        read(adamwUpdate(ts[0], ts[1], ts[2], tf.mul(ts[3], s), h)),
        read(adamwTfOps(ts[0], ts[1], ts[2], ts[3], h, s)),
        read(adamwUpdate(ts[0], ts[1], ts[2], ts[3], h)),
      ];
    });
    ['p', 'm', 'v'].forEach((name, k) => {
      assert.deepEqual(folded[k], scaledFirst[k], `${backend} ${name}: folded scale differs from Multiply then AdamW`);
      close(folded[k], want[k], 1e-6, `${backend} adamw(scaled) ${name}`);
      close(tfops[k], folded[k], 1e-6, `${backend} adamw(scaled) ${name} vs tf ops`);
    });
    assert.notDeepEqual(unscaled[1], folded[1], 'the scale is applied');
  }
});

test('fused ops leak nothing, with and without gradients', async () => {
  await initEngine({ backend: 'wasm' });
  const lg = tf.tensor2d(vals(4 * 5, 3), [4, 5]);
  const t = tf.tensor1d([0, 1, 4, 2], 'int32');
  const v = tf.variable(lg);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 2; i++) {
    tf.tidy(() => {
      softmaxCrossEntropy(lg, t);
      gelu(lg);
    });
    const { value, grads } = tf.variableGrads(
      () => tf.add(softmaxCrossEntropy(tf.mul(v, 1) as tf.Tensor2D, t), tf.sum(gelu(v))) as tf.Scalar,
      [v],
    );
    tf.dispose([value, ...Object.values(grads)]);
    const gg = tf.grad((z: tf.Tensor) => tf.add(softmaxCrossEntropy(z as tf.Tensor2D, t), tf.sum(gelu(z))))(lg);
    gg.dispose();
  }
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([lg, t, v]);
});

test('no tensors leak from the replaced kernels', async () => {
  await initEngine({ backend: 'wasm' });
  const a = tf.tensor(vals(2 * 3 * 8 * 5, 1), [2, 3, 8, 5]);
  const b = tf.tensor(vals(2 * 3 * 8 * 5, 2), [2, 3, 8, 5]);
  const before = tf.memory().numTensors;
  const bytesBefore = tf.memory().numBytes;
  for (let i = 0; i < 3; i++)
    tf.tidy(() => {
      tf.matMul(a, b, false, true);
      tf.matMul(a, b, true, false);
      tf.matMul(tf.reshape(a, [6, 8, 5]), tf.reshape(b, [48, 5]), false, true);
      tf.split(a, [2, 3], 3);
      tf.sum(a, [0, 1]);
      tf.clone(a);
    });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(tf.memory().numBytes, bytesBefore);
  tf.dispose([a, b]);
});
