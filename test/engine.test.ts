import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initEngine, tf, EngineError, requestedBackend } from '../src/engine/index.js';

test('unknown backend is a clear error naming the valid choices', () => {
  assert.throws(
    () => requestedBackend({ backend: 'cuda' as never }),
    (e: Error) => {
      assert.ok(e instanceof EngineError);
      assert.match(e.message, /unknown backend "cuda".*wasm, webgpu, tensorflow, cpu/);
      return true;
    },
  );
});

test('tensorflow backend without tfjs-node says what to install', async () => {
  await assert.rejects(initEngine({ backend: 'tensorflow' }), /tfjs-node-gpu.*npm install/);
});

test('wasm starts with SIMD and gather has a gradient equal to the cpu one', async () => {
  const gradOf = () =>
    tf.tidy(() => {
      const emb = tf.tensor2d(
        [...Array(12).keys()].map((i) => i * 0.1),
        [4, 3],
      );
      const idx = tf.tensor2d(
        [
          [1, 1],
          [3, 0],
        ],
        [2, 2],
        'int32',
      );
      const w = tf.tensor3d(
        [...Array(12).keys()].map((i) => (i % 5) - 2),
        [2, 2, 3],
      );
      const g = tf.grad((e: tf.Tensor) => tf.sum(tf.mul(tf.gather(e, idx), w)))(emb);
      return Array.from(g.dataSync());
    });
  await initEngine({ backend: 'cpu' });
  const ref = gradOf();
  const info = await initEngine({ backend: 'wasm' });
  assert.equal(info.backend, 'wasm');
  assert.equal(info.flags.simd, true);
  const got = gradOf();
  // hand check: row 1 gets w[0,0]+w[0,1], row 3 gets w[1,0], row 0 gets w[1,1], row 2 nothing
  assert.deepEqual(got.slice(6, 9), [0, 0, 0]);
  for (let i = 0; i < ref.length; i++)
    assert.ok(Math.abs(ref[i] - got[i]) < 1e-6, `grad[${i}] ${got[i]} vs cpu ${ref[i]}`);
});
