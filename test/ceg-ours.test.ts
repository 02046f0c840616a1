import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bestSoFar, computeToReach, ceg, cegSeeds } from '../src/ceg/ceg.js';
import { mulberry32, normalSampler } from '../src/ceg/random.js';
import type { MetricRow } from '../src/ceg/types.js';
import type { SeedCurve } from '../src/ceg/ceg.js';
import type { MetricRow as StoreRow } from '../src/runs/run.js';

// compile-time check: the run store's rows are accepted as they are
const storeRowsFit: (rows: StoreRow[]) => MetricRow[] = (rows) => rows;
void storeRowsFit;

const close = (a: number, b: number, tol = 1e-9) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

/** Rows whose every axis is proportional to compute C (steps = C, flops = 1e9·C, ...). */
function rows(cs: number[], losses: number[]): MetricRow[] {
  return cs.map((C, i) => ({
    step: C,
    tokens: 1000 * C,
    flops: 1e9 * C,
    seconds: 0.01 * C,
    trainLoss: losses[i],
    valLoss: losses[i],
    lr: 1e-3,
  }));
}

test('bestSoFar is the running minimum', () => {
  assert.deepEqual(bestSoFar([5, 4, 4.5, 2, 3]), [5, 4, 4, 2, 2]);
});

test('computeToReach interpolates in log-compute, worked by hand', () => {
  const xs = [0, 1, 10, 100];
  // between (1, 4) and (10, 2): target 3 is half-way, so log x = 0.5·ln 10: x = sqrt(10)
  close(computeToReach(xs, [5, 4, 2, 1], 3)!, Math.sqrt(10));
  // crossing between compute 0 and the first positive point: reported at that point
  assert.equal(computeToReach(xs, [5, 4, 2, 1], 4.5), 1);
  // reached at initialisation
  assert.equal(computeToReach(xs, [5, 4, 2, 1], 5), 0);
  assert.equal(computeToReach(xs, [5, 4, 2, 1], 0.5), null);
  // non-monotone curve: running min [5,4,4,2], crossing between (10, 4) and (100, 2): sqrt(1000)
  close(computeToReach(xs, [5, 4, 4.5, 2], 3)!, Math.sqrt(1000));
});

test('analytic curve with compute scaled by 2 gives CEG exactly 2 on every axis', () => {
  const L = (C: number) => 2 + 10 * Math.pow(C, -0.5);
  const cs = [0, ...Array.from({ length: 11 }, (_, k) => 2 ** k)]; // 0, 1, 2, ..., 1024
  const base = rows(
    cs,
    cs.map((C) => (C === 0 ? 12 : L(C))),
  );
  const vari = rows(
    cs,
    cs.map((C) => (C === 0 ? 12 : L(2 * C))),
  );
  for (const axis of ['steps', 'tokens', 'flops', 'seconds'] as const) {
    for (const target of [
      { kind: 'baseline-final' } as const,
      { kind: 'baseline-best' } as const,
      { kind: 'value', loss: 3 } as const,
    ]) {
      const r = ceg(base, vari, { axis, target });
      assert.equal(r.dnr, false);
      close(r.ceg!, 2, 1e-12);
    }
  }
  // value target 3: L(C) = 3 at C = 100; baseline interpolates between 64 and 128 in log C
  const r = ceg(base, vari, { target: { kind: 'value', loss: 3 } });
  const t = (L(64) - 3) / (L(64) - L(128));
  close(r.baselineCompute!, 1e9 * Math.exp(Math.log(64) + t * Math.log(2)));
  assert.equal(r.axis, 'flops'); // the default axis
});

test('target choices on an over-fitting baseline, worked by hand', () => {
  const cs = [0, 1, 2, 4, 8];
  const base = rows(cs, [10, 6, 4, 3, 3.5]); // final 3.5, best 3
  const vari = rows(cs, [10, 5, 3.5, 2.9, 2.4]);
  // final 3.5: baseline between (2,4) and (4,3), half-way: 2·sqrt2; variant hits 3.5 exactly at 2
  const f = ceg(base, vari, { axis: 'steps' });
  close(f.target, 3.5);
  close(f.baselineCompute!, 2 * Math.SQRT2);
  close(f.variantCompute!, 2);
  close(f.ceg!, Math.SQRT2);
  // best 3: baseline at 4; variant between (2,3.5) and (4,2.9), t = 0.5/0.6
  const b = ceg(base, vari, { axis: 'steps', target: { kind: 'baseline-best' } });
  close(b.target, 3);
  close(b.ceg!, 4 / (2 * 2 ** (0.5 / 0.6)));
});

test('DNR gives a censored upper bound; a baseline that never reaches gives a lower bound', () => {
  const cs = [0, 1, 2, 4, 8];
  const base = rows(cs, [10, 6, 4, 3, 3.5]);
  const d = ceg(base, rows(cs, [10, 8, 7, 6, 5]), { axis: 'steps' });
  assert.equal(d.dnr, true);
  assert.equal(d.ceg, null);
  assert.equal(d.bound!.kind, 'upper');
  close(d.bound!.value, (2 * Math.SQRT2) / 8);
  // explicit target 2.5 the baseline never reaches; variant between (4,2.9) and (8,2.4), t = 0.8
  const l = ceg(base, rows(cs, [10, 5, 3.5, 2.9, 2.4]), { axis: 'steps', target: { kind: 'value', loss: 2.5 } });
  assert.equal(l.baselineDnr, true);
  assert.equal(l.dnr, false);
  assert.equal(l.ceg, null);
  assert.equal(l.bound!.kind, 'lower');
  close(l.bound!.value, 8 / (4 * 2 ** 0.8));
});

test('bad inputs are clear errors', () => {
  const cs = [0, 1, 2];
  assert.throws(
    () => ceg(rows(cs, [3, 2, 1]), rows(cs, [3, 2, 1]), { axis: 'time' as never }),
    /unknown axis "time"; valid: steps, tokens, flops, seconds/,
  );
  const bad = rows(cs, [3, 2, 1]);
  bad[2].flops = 0;
  assert.throws(() => ceg(bad, rows(cs, [3, 2, 1])), /baseline: flops decreases at step 2: 0 after 1000000000/);
  assert.throws(
    () => ceg(rows(cs, [3, 2, 1]), rows(cs, [3, 2, 1]), { target: { kind: 'median' } as never }),
    /unknown target kind "median"/,
  );
});

test('several seeds: geometric mean of matched pairs, bootstrap CI contains the truth and is deterministic', () => {
  const L = (C: number) => 2 + 10 * Math.pow(C, -0.5);
  const cs = [0, ...Array.from({ length: 11 }, (_, k) => 2 ** k)];
  const g = normalSampler(mulberry32(7));
  const ks: number[] = [];
  const baselines: SeedCurve[] = [];
  const variants: SeedCurve[] = [];
  for (let seed = 0; seed < 10; seed++) {
    const k = 2 * Math.exp(0.1 * g()); // this seed's true CEG
    ks.push(k);
    const losses = cs.map((C) => (C === 0 ? 12 : L(C)));
    baselines.push({ seed, metrics: rows(cs, losses) });
    // the variant reaches each loss with k times less compute: its samples sit at C/k
    variants.push({
      seed,
      metrics: rows(
        cs.map((C) => C / k),
        losses,
      ),
    });
  }
  variants.push({ seed: 99, metrics: variants[0].metrics });
  const s = cegSeeds(baselines, variants, { target: { kind: 'value', loss: 3 } });
  s.perSeed.forEach((r, i) => close(r.ceg!, ks[i], 1e-9));
  const geo = Math.exp(ks.reduce((a, k) => a + Math.log(k), 0) / ks.length);
  close(s.ceg!, geo);
  assert.ok(s.ci && s.ci[0] < 2 && 2 < s.ci[1], `CI ${s.ci} should contain 2`);
  assert.ok(s.ci![1] - s.ci![0] < 0.3, `CI ${s.ci} too wide`);
  assert.deepEqual(s.unmatchedSeeds, [99]);
  assert.equal(s.nSeeds, 10);
  assert.deepEqual(cegSeeds(baselines, variants, { target: { kind: 'value', loss: 3 } }).ci, s.ci);
  const other = cegSeeds(baselines, variants, { target: { kind: 'value', loss: 3 }, bootstrap: { seed: 1 } });
  assert.notDeepEqual(other.ci, s.ci);
  assert.throws(() => cegSeeds(baselines, [{ seed: 50, metrics: variants[0].metrics }]), /no seed is shared/);
});

test('rows without a valLoss are skipped; a diverged (NaN) evaluation reaches nothing', () => {
  const cs = [0, 1, 2, 4, 8];
  const base = rows(cs, [10, 6, 4, 3, 3.5]);
  const withGaps: MetricRow[] = [...base.slice(0, 2), { ...base[1], step: 1.5, valLoss: null }, ...base.slice(2)];
  close(ceg(withGaps, rows(cs, [10, 5, 3.5, 2.9, 2.4]), { axis: 'steps' }).ceg!, Math.SQRT2);
  const nan = ceg(base, rows(cs, [10, 5, NaN, NaN, NaN]), { axis: 'steps' });
  assert.equal(nan.dnr, true);
  assert.throws(() => ceg([{ ...base[0], valLoss: null }], base), /baseline: the curve has no evaluation/);
});

test('reaching allows float tolerance: fused attention 7e-7 and 1e-6 nats above the baseline is not DNR; 1e-5 is', async () => {
  const { REACH_RTOL } = await import('../src/ceg/ceg.js');
  assert.equal(REACH_RTOL, 1e-6);
  const xs = [0, 100, 200, 300, 400];
  const base = [4.0, 3.2, 2.8, 2.6, 2.569];
  // the same curve to float32 rounding, ending a hair above the baseline's final loss
  for (const above of [7e-7, 1e-6]) {
    const fa = [4.0, 3.2, 2.8, 2.6, 2.569 + above];
    const r = ceg(rows(xs, base), rows(xs, fa), { axis: 'steps' });
    assert.equal(r.dnr, false, `${above} above`);
    assert.equal(r.variantCompute, 400); // reached at the last evaluation, not extrapolated past it
    assert.equal(r.ceg, 1);
  }
  // a real difference (1e-5 nats, four times the tolerance at 2.569) is still a DNR
  const worse = ceg(rows(xs, base), rows(xs, [4.0, 3.2, 2.8, 2.6, 2.569 + 1e-5]));
  assert.equal(worse.dnr, true);
  assert.equal(worse.ceg, null);
  // exact comparison when asked for, and the tolerance is relative to the target
  assert.equal(computeToReach(xs, [4.0, 3.2, 2.8, 2.6, 2.569 + 7e-7], 2.569, 0), null);
  assert.equal(computeToReach([1, 2], [1e6 + 0.5, 1e6 + 0.5], 1e6), 1); // 0.5 < 1e6·1e-6 = 1
  assert.equal(computeToReach([1, 2], [1e6 + 2, 1e6 + 2], 1e6), null);
  // a loss inside the tolerance but not below the target never interpolates beyond its own point
  const inside = computeToReach([100, 200], [3, 2.5 + 1e-7], 2.5)!;
  assert.equal(inside, 200);
  assert.throws(() => computeToReach(xs, base, 2.5, -1), /reach tolerance must be >= 0/);
});
