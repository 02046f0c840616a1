import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyCeg, classifyFromFits, lsSlope, type CegPoint } from '../src/ceg/classify.js';
import type { ScalingFit } from '../src/ceg/fit.js';
import { mulberry32, normalSampler } from '../src/ceg/random.js';

const rungs = [1e12, 4e12, 1.6e13, 6.4e13]; // ~1.8 decades
const fit = (E: number, A: number, alpha: number): ScalingFit => ({
  E,
  A,
  alpha,
  loss: 0,
  converged: true,
  range: [1e12, 6.4e13],
});

test('least-squares slope by hand', () => {
  assert.equal(lsSlope([0, 1, 2], [1, 3, 5]), 2);
  assert.equal(lsSlope([0, 1, 2, 3], [0, 1, 1, 2]), 0.6); // sxy 3 / sxx 5
  assert.ok(Number.isNaN(lsSlope([1, 1], [0, 2])));
});

test('equal exponents and a constant multiplier per seed: compute-independent', () => {
  const g = normalSampler(mulberry32(3));
  const fits = Array.from({ length: 5 }, (_, seed) => {
    const k = 1.8 * Math.exp(0.05 * g()); // this seed's constant CEG
    return { seed, baseline: fit(1.8, 6768, 0.3), variant: fit(1.8, 6768 * k ** -0.3, 0.3) };
  });
  const c = classifyFromFits(fits);
  assert.equal(c.verdict, 'compute-independent', c.reason);
  assert.ok(Math.abs(c.slope) < 1e-9);
  assert.ok(c.ci[0] >= -0.05 && c.ci[1] <= 0.05);
  assert.match(c.reason, /within the flat band ±0.05/);
  // the same family from noisy per-seed points (CEG 1.8 with 3% noise) is still flat
  const pts: CegPoint[] = [];
  for (let seed = 0; seed < 6; seed++) for (const C of rungs) pts.push({ seed, C, ceg: 1.8 * Math.exp(0.03 * g()) });
  assert.equal(classifyCeg(pts).verdict, 'compute-independent');
});

test('diverging exponents (variant steeper, hurts when small): compute-dependent, rising', () => {
  const g = normalSampler(mulberry32(4));
  const fits = Array.from({ length: 4 }, (_, seed) => {
    const a = 0.36 * Math.exp(0.02 * g());
    // the variant is worse than the baseline at 1e12 and catches up as compute grows
    return { seed, baseline: fit(1.8, 6768, 0.3), variant: fit(1.8, 6768 * 1.1 * 1e12 ** (a - 0.3), a) };
  });
  const c = classifyFromFits(fits);
  assert.equal(c.verdict, 'compute-dependent', c.reason);
  assert.equal(c.direction, 'rising');
  assert.ok(c.ci[0] > 0, `CI ${c.ci}`);
  assert.ok(c.cegAtSmallest < 1, `CEG at smallest ${c.cegAtSmallest}`);
  // and a gain that fades with compute is dependent too (falling)
  const falling = classifyFromFits(fits.map((f) => ({ seed: f.seed, baseline: f.variant, variant: f.baseline })));
  assert.equal(falling.verdict, 'compute-dependent');
  assert.equal(falling.direction, 'falling');
});

test('pure noise: undetermined', () => {
  const g = normalSampler(mulberry32(5));
  const pts: CegPoint[] = [];
  for (let seed = 0; seed < 4; seed++) for (const C of rungs) pts.push({ seed, C, ceg: Math.exp(0.5 * g()) });
  const c = classifyCeg(pts);
  assert.equal(c.verdict, 'undetermined', c.reason);
  assert.ok(c.ci[0] < -0.05 || c.ci[1] > 0.05);
  // deterministic per bootstrap seed
  assert.deepEqual(classifyCeg(pts).ci, c.ci);
});

test('CEG below 1 at small compute with a positive slope: compute-dependent even when the slope CI straddles 0', () => {
  const pts: CegPoint[] = [
    { seed: 0, C: 1e12, ceg: 0.5 },
    { seed: 0, C: 1e13, ceg: 0.6 },
    { seed: 1, C: 1e12, ceg: 0.52 },
    { seed: 1, C: 1e13, ceg: 3 },
    { seed: 2, C: 1e12, ceg: 0.48 },
    { seed: 2, C: 1e13, ceg: 0.45 },
  ];
  const c = classifyCeg(pts);
  assert.ok(c.ci[0] < 0 && c.ci[1] > 0, `CI ${c.ci}`);
  assert.ok(c.slope > 0);
  assert.equal(c.verdict, 'compute-dependent', c.reason);
  assert.match(c.reason, /< 1 at the smallest compute/);
  // with a wide flat band the same points would be... still not independent (CI too wide)
  assert.notEqual(classifyCeg(pts, { flatTol: 0.1 }).verdict, 'compute-independent');
});

test('classification input errors', () => {
  assert.throws(
    () =>
      classifyCeg([
        { seed: 0, C: 1, ceg: 1 },
        { seed: 1, C: 1, ceg: 2 },
      ]),
    /2 or more compute values, got 1/,
  );
  assert.throws(() => classifyCeg([{ seed: 0, C: 1, ceg: 0 }]), /CEG=0/);
});
