import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initEngine, tf } from '../src/engine/index.js';
import { AdamW, clipByGlobalNorm, clipCoefficient } from '../src/train/adamw.js';
import { learningRate } from '../src/train/schedule.js';

const close = (a: number, b: number, tol = 1e-6) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

test('learning rate: warmup, cosine, floor (nanoGPT get_lr)', () => {
  const t = { lr: 1e-3, minLr: 1e-4, warmupSteps: 10, decaySteps: 110 };
  close(learningRate(0, t), (1e-3 * 1) / 11);
  close(learningRate(9, t), (1e-3 * 10) / 11);
  close(learningRate(10, t), 1e-3); // cos(0) = 1
  close(learningRate(60, t), 1e-4 + 0.5 * (1e-3 - 1e-4)); // halfway: cos(pi/2) = 0
  close(learningRate(110, t), 1e-4);
  close(learningRate(500, t), 1e-4);
});

test('AdamW matches a hand-written reference for two steps, decay on decayed params only', async () => {
  await initEngine({ backend: 'cpu' });
  const w0 = [0.5, -1.0, 2.0, 0.25];
  const b0 = [0.1, -0.2];
  const params = new Map<string, tf.Variable>([
    ['w', tf.variable(tf.tensor2d(w0, [2, 2]))],
    ['b', tf.variable(tf.tensor1d(b0))],
  ]);
  const o = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
  const opt = new AdamW(params, { ...o, decayed: (n) => n === 'w' });
  const gradsSeq = [
    { w: [0.1, -0.3, 0.2, 0.05], b: [1.0, -0.5] },
    { w: [-0.2, 0.1, 0.4, -0.1], b: [0.3, 0.3] },
  ];
  const lrs = [0.01, 0.02];
  // reference (torch.optim.AdamW semantics)
  const ref = (p0: number[], gs: number[][], decay: boolean) => {
    const p = p0.slice();
    const m = p.map(() => 0);
    const v = p.map(() => 0);
    gs.forEach((g, k) => {
      const t = k + 1;
      for (let i = 0; i < p.length; i++) {
        if (decay) p[i] *= 1 - lrs[k] * o.weightDecay;
        m[i] = o.beta1 * m[i] + (1 - o.beta1) * g[i];
        v[i] = o.beta2 * v[i] + (1 - o.beta2) * g[i] * g[i];
        const mh = m[i] / (1 - o.beta1 ** t);
        const vh = v[i] / (1 - o.beta2 ** t);
        p[i] -= (lrs[k] * mh) / (Math.sqrt(vh) + o.eps);
      }
    });
    return p;
  };
  gradsSeq.forEach((g, k) => {
    const grads = new Map<string, tf.Tensor>([
      ['w', tf.tensor2d(g.w, [2, 2])],
      ['b', tf.tensor1d(g.b)],
    ]);
    opt.step(grads, lrs[k]);
    for (const t of grads.values()) t.dispose();
  });
  const wRef = ref(
    w0,
    gradsSeq.map((g) => g.w),
    true,
  );
  const bRef = ref(
    b0,
    gradsSeq.map((g) => g.b),
    false,
  );
  Array.from(params.get('w')!.dataSync()).forEach((x, i) => close(x, wRef[i], 1e-5));
  Array.from(params.get('b')!.dataSync()).forEach((x, i) => close(x, bRef[i], 1e-5));
  assert.equal(opt.t, 2);
});

test('global-norm clipping scales all gradients together, and only above the threshold', async () => {
  await initEngine({ backend: 'cpu' });
  const grads = new Map<string, tf.Tensor>([
    ['a', tf.tensor1d([3, 0])],
    ['b', tf.tensor1d([0, 4])],
  ]);
  const n = clipByGlobalNorm(grads, 1.0);
  close(n.dataSync()[0], 5);
  close(grads.get('a')!.dataSync()[0], 3 / (5 + 1e-6));
  close(grads.get('b')!.dataSync()[1], 4 / (5 + 1e-6));
  const small = new Map<string, tf.Tensor>([['a', tf.tensor1d([0.3, 0.4])]]);
  close(clipByGlobalNorm(small, 1.0).dataSync()[0], 0.5);
  close(small.get('a')!.dataSync()[1], 0.4);
});

test('clipCoefficient + AdamW.step(grads, lr, coef) equals clipByGlobalNorm then AdamW.step, bit for bit (wasm and cpu)', async () => {
  for (const backend of ['wasm', 'cpu'] as const) {
    await initEngine({ backend });
    const run = (folded: boolean) => {
      const params = new Map<string, tf.Variable>([
        [
          'w',
          tf.tidy(() =>
            tf.variable(
              tf.tensor2d([
                [0.5, -1.25],
                [2, 0.75],
              ]),
            ),
          ),
        ],
        ['b', tf.tidy(() => tf.variable(tf.tensor1d([0.1, -0.2, 0.3])))],
      ]);
      const opt = new AdamW(params, {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weightDecay: 0.1,
        decayed: (n) => n === 'w',
      });
      for (const k of [1, 2, 3]) {
        const grads = new Map<string, tf.Tensor>([
          [
            'w',
            tf.tensor2d([
              [3 * k, -1],
              [0.5, 2],
            ]),
          ],
          ['b', tf.tensor1d([k, -4, 0.25])],
        ]);
        let norm: tf.Scalar;
        if (folded) {
          const c = clipCoefficient(grads, 1.0);
          opt.step(grads, 1e-2, c.coef ?? undefined);
          c.coef?.dispose();
          norm = c.norm;
        } else {
          norm = clipByGlobalNorm(grads, 1.0);
          opt.step(grads, 1e-2);
        }
        assert.ok(norm.dataSync()[0] > 1, 'the test clips');
        norm.dispose();
        tf.dispose([...grads.values()]);
      }
      const out = [...params.values()].map((p) => Array.from(p.dataSync()));
      opt.dispose();
      tf.dispose([...params.values()]);
      return out;
    };
    const folded = run(true);
    const before = tf.memory().numTensors; // after a first run: backend-level caches exist by now
    assert.deepEqual(folded, run(false), backend);
    run(true);
    assert.equal(tf.memory().numTensors, before, `${backend}: nothing leaks`);
  }
});

test('AdamW state is freed completely: creating and disposing an optimizer leaves no tensor behind', async () => {
  await initEngine({ backend: 'cpu' });
  const p = new Map<string, tf.Variable>([['w', tf.variable(tf.ones([3, 3]))]]);
  const before = tf.memory().numTensors;
  const opt = new AdamW(p, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, decayed: () => true });
  assert.equal(tf.memory().numTensors, before + 2, 'one m and one v per parameter');
  opt.dispose();
  assert.equal(tf.memory().numTensors, before);
});
