import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitScaling, cegCurve, computeForLoss, huber, predictLoss, type ScalingFit } from '../src/ceg/fit.js';
import { mulberry32, normalSampler } from '../src/ceg/random.js';

const truth = { E: 1.8, A: 6768, alpha: 0.3 };
const ladder = (n: number, lo: number, hi: number) =>
  Array.from({ length: n }, (_, i) => 10 ** (lo + ((hi - lo) * i) / (n - 1)));

/** Huber objective written out independently of fit.ts's internals. */
function objective(p: { E: number; A: number; alpha: number }, pts: { C: number; L: number }[], delta = 1e-3) {
  let s = 0;
  for (const { C, L } of pts) {
    const r = Math.log(p.E + p.A * C ** -p.alpha) - Math.log(L);
    s += Math.abs(r) <= delta ? 0.5 * r * r : delta * (Math.abs(r) - 0.5 * delta);
  }
  return s;
}

test('huber is quadratic inside delta and linear outside', () => {
  assert.equal(huber(0.5e-3, 1e-3), 0.125e-6);
  assert.equal(huber(-3e-3, 1e-3), 1e-3 * (3e-3 - 0.5e-3));
});

test('exact data: the fit recovers E, A, alpha and converges', () => {
  const pts = ladder(10, 11, 14).map((C) => ({ C, L: truth.E + truth.A * C ** -truth.alpha }));
  const f = fitScaling(pts);
  assert.ok(f.converged);
  assert.ok(Math.abs(f.E - truth.E) < 1e-6, `E ${f.E}`);
  assert.ok(Math.abs(f.alpha - truth.alpha) < 1e-6, `alpha ${f.alpha}`);
  assert.ok(Math.abs(f.A / truth.A - 1) < 1e-4, `A ${f.A}`);
  assert.deepEqual(f.range, [1e11, 1e14]);
});

test('noisy data (seeded): the fit recovers the parameters within tolerance and is a local minimum', () => {
  const g = normalSampler(mulberry32(1));
  const pts = ladder(12, 11, 14).map((C) => ({
    C,
    L: (truth.E + truth.A * C ** -truth.alpha) * Math.exp(0.002 * g()),
  }));
  const f = fitScaling(pts);
  assert.ok(Math.abs(f.E - truth.E) < 0.05, `E ${f.E}`);
  assert.ok(Math.abs(f.alpha / truth.alpha - 1) < 0.05, `alpha ${f.alpha}`);
  assert.ok(Math.abs(Math.log(f.A / truth.A)) < 0.2, `A ${f.A}`);
  const at = objective(f, pts);
  assert.ok(Math.abs(at - f.loss) < 1e-12, `reported loss ${f.loss} vs recomputed ${at}`);
  for (const k of ['E', 'A', 'alpha'] as const)
    for (const m of [0.99, 1.01]) {
      const p = { ...f, [k]: f[k] * m };
      assert.ok(objective(p, pts) >= at, `moving ${k} by ${m} lowers the objective`);
    }
});

test('fit input errors name the bad value', () => {
  assert.throws(
    () =>
      fitScaling([
        { C: 1, L: 3 },
        { C: 2, L: 2 },
      ]),
    /at least 3 points/,
  );
  assert.throws(
    () =>
      fitScaling([
        { C: 1, L: 3 },
        { C: 0, L: 2 },
        { C: 3, L: 1 },
      ]),
    /C=0, L=2/,
  );
});

test('CEG(C) from two fits: constant for equal exponents and a compute multiplier; extrapolation flagged', () => {
  const k = 1.7;
  const base: ScalingFit = { ...truth, loss: 0, converged: true, range: [1e11, 1e14] };
  // the variant reaches every loss with k times less compute: L_v(C) = L_b(k·C)
  const vari: ScalingFit = { ...truth, A: truth.A * k ** -truth.alpha, loss: 0, converged: true, range: [1e11, 1e14] };
  const curve = cegCurve(base, vari, { points: 7, extendTo: 3e14 });
  assert.equal(curve.length, 7);
  for (const p of curve) assert.ok(Math.abs(p.ceg - k) < 1e-9, `CEG ${p.ceg} at C=${p.C}`);
  assert.deepEqual(
    curve.map((p) => p.extrapolated),
    curve.map((p) => p.C > 1e14 * (1 + 1e-9)),
  );
  assert.ok(curve.some((p) => p.extrapolated) && curve.some((p) => !p.extrapolated));
  // never more than half a decade past the data
  assert.throws(() => cegCurve(base, vari, { extendTo: 1e16 }), /more than half a decade past the measured range/);
  assert.throws(() => cegCurve(base, vari, { range: [1e10, 1e14] }), /more than half a decade/);
  assert.equal(cegCurve(base, vari, { extendTo: 1e14 * Math.sqrt(10), points: 2 }).length, 2);
  // inverse check: C_b(L_b(C)) = C
  assert.ok(Math.abs(computeForLoss(base, predictLoss(base, 3e12)) / 3e12 - 1) < 1e-12);
});

test('CEG(C) rises for a steeper variant and is Infinity below the baseline floor', () => {
  const base: ScalingFit = { E: 1.8, A: 6768, alpha: 0.3, loss: 0, converged: true, range: [1e11, 1e14] };
  const steep: ScalingFit = {
    E: 1.8,
    A: 6768 * 1e12 ** 0.06,
    alpha: 0.36,
    loss: 0,
    converged: true,
    range: [1e11, 1e14],
  };
  const c = cegCurve(base, steep, { points: 5 });
  for (let i = 1; i < c.length; i++) assert.ok(c[i].ceg > c[i - 1].ceg, 'CEG should rise with C');
  // hand: with equal E, CEG(C) = (A_b/(A_v C^-a_v))^(1/a_b) / C
  const C = c[2].C;
  const expected = (6768 / (steep.A * C ** -0.36)) ** (1 / 0.3) / C;
  assert.ok(Math.abs(c[2].ceg / expected - 1) < 1e-9);
  const lowFloor: ScalingFit = { ...base, E: 1.0, A: 1e3 };
  const far: [number, number] = [1e20, 1e21];
  assert.equal(cegCurve({ ...base, range: far }, { ...lowFloor, range: far }, { points: 2 })[1].ceg, Infinity);
  assert.equal(computeForLoss(base, 1.8), Infinity);
});
