import { test } from 'node:test';
import assert from 'node:assert/strict';
import { movingAverage, paperCeg, firstReach } from '../src/ceg/paper.js';
import type { MetricRow } from '../src/ceg/types.js';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test("moving average, partial (the paper's code): the first 7 points average what is available", () => {
  const v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  // hand: means of [1], [1,2], ..., [1..8]=4.5, [2..9]=5.5, [3..10]=6.5
  assert.deepEqual(movingAverage(v, 8, 'partial'), [1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5.5, 6.5]);
  assert.deepEqual(movingAverage([3, 6, 9, 3], 3), [3, 4.5, 6, 6]);
});

test('moving average, strict (pandas rolling(8)): NaN for the first 7 points', () => {
  const out = movingAverage([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 8, 'strict');
  for (let i = 0; i < 7; i++) assert.ok(Number.isNaN(out[i]), `out[${i}] = ${out[i]}`);
  assert.deepEqual(out.slice(7), [4.5, 5.5, 6.5]);
});

test('moving average rejects a bad window or smoothing with the valid choices', () => {
  assert.throws(() => movingAverage([1], 0), /positive integer, got 0/);
  assert.throws(
    () => movingAverage([1], 2, 'centered' as never),
    /unknown smoothing "centered"; valid: partial, strict/,
  );
});

test('firstReach is 1-based and skips NaN', () => {
  assert.equal(firstReach([NaN, 5, 3, 2], 3), 3);
  assert.equal(firstReach([5, 4], 3), null);
});

test('paper CEG without smoothing: evals to the baseline final loss, worked by hand', () => {
  // baseline reaches its final 4 at position 5; variant reaches 4 at position 3
  const r = paperCeg([10, 8, 6, 5, 4], [10, 7, 4, 3, 3], { window: 1 });
  assert.equal(r.target, 4);
  assert.equal(r.baselineEvals, 5);
  assert.equal(r.variantEvals, 3);
  close(r.ceg!, 5 / 3);
  assert.equal(r.dnr, false);
  assert.equal(r.auxCeg, undefined);
});

test('paper CEG with a 2-point window (partial), worked by hand', () => {
  // baseline smoothed [10, 9, 7, 5.5, 4.5] -> target 4.5 at position 5
  // variant [10,6,4,3,3] smoothed [10, 8, 5, 3.5, 3] -> first <= 4.5 at position 4
  const r = paperCeg([10, 8, 6, 5, 4], [10, 6, 4, 3, 3], { window: 2 });
  close(r.target, 4.5);
  assert.equal(r.baselineEvals, 5);
  assert.equal(r.variantEvals, 4);
  close(r.ceg!, 1.25);
  close(r.variantBest, 3);
  close(r.baselineBest, 4.5);
});

test('DNR and the auxiliary CEG, worked by hand; target "min" option', () => {
  const base = [10, 8, 6, 5, 4, 4.2]; // final 4.2, first <= 4.2 at position 5
  const vari = [10, 9, 7, 4.5, 4.8, 4.9]; // never <= 4.2; best 4.5 at position 4
  const r = paperCeg(base, vari, { window: 1 });
  assert.equal(r.dnr, true);
  assert.equal(r.ceg, null);
  assert.equal(r.variantEvals, null);
  close(r.target, 4.2);
  assert.equal(r.baselineEvals, 5);
  close(r.auxTarget!, 4.5);
  assert.equal(r.auxVariantEvals, 4);
  assert.equal(r.auxBaselineEvals, 5); // baseline first <= 4.5 is 4 at position 5
  close(r.auxCeg!, 5 / 4);
  const m = paperCeg(base, [10, 9, 3.9, 3, 3, 3], { window: 1, target: 'min' });
  close(m.target, 4);
  assert.equal(m.baselineEvals, 5);
  assert.equal(m.variantEvals, 3);
});

test('strict smoothing changes the answer: early NaN points cannot reach', () => {
  const base = [9, 6, 3, 3, 3]; // partial [9, 7.5, 6, 4, 3]; strict(3) [NaN, NaN, 6, 4, 3]; target 3 at position 5
  const vari = [2, 2, 8, 8, 8]; // partial [2, 2, 4, 6, 8]; strict [NaN, NaN, 4, 6, 8]
  const p = paperCeg(base, vari, { window: 3, smoothing: 'partial' });
  assert.equal(p.variantEvals, 1);
  close(p.ceg!, 5);
  const s = paperCeg(base, vari, { window: 3, smoothing: 'strict' });
  assert.equal(s.dnr, true);
  close(s.auxTarget!, 4);
  assert.equal(s.auxVariantEvals, 3);
  assert.equal(s.auxBaselineEvals, 4);
  close(s.auxCeg!, 4 / 3);
});

test('metric rows give the same answer as plain loss arrays', () => {
  const rows = (v: number[]): MetricRow[] =>
    v.map((valLoss, i) => ({
      step: i * 500,
      tokens: i * 1000,
      flops: i * 1e9,
      seconds: i,
      trainLoss: valLoss,
      valLoss,
      lr: 1e-3,
    }));
  const b = [10, 8, 6, 5, 4, 3.9, 3.8, 3.7, 3.65, 3.6];
  const v = [10, 7, 5, 4, 3.6, 3.5, 3.4, 3.3, 3.3, 3.3];
  assert.deepEqual(paperCeg(rows(b), rows(v)), paperCeg(b, v));
  assert.throws(() => paperCeg([], v), /baseline: empty curve/);
  assert.throws(() => paperCeg([1, 2, 3], v, { smoothing: 'strict' }), /fewer than the strict window 8/);
});

test('a diverged evaluation (Infinity) does not poison later windows', () => {
  assert.deepEqual(movingAverage([1, Infinity, 3, 5, 7], 2), [1, Infinity, Infinity, 4, 6]);
  const r = paperCeg([10, 8, 6, 5, 4], [10, NaN, 4, 3, 3], { window: 1 });
  assert.equal(r.variantEvals, 3);
});

// ---------------------------------------------------------------- numpy's summation (issue 12, item 5)
import { numpySum, numpyMean } from '../src/ceg/paper.js';

/** Inputs shared with the numpy reference below: a[i] = 3 + ((i·7919) mod 1000)/1e4 + (i mod 7)·1e-7. */
const npInput = (n: number) => Array.from({ length: n }, (_, i) => 3.0 + ((i * 7919) % 1000) / 1e4 + (i % 7) * 1e-7);

test('numpySum equals numpy 2.4.6 np.sum bit for bit (every branch: <8, 8..128, >128 recursive)', () => {
  // repr(float(np.sum(np.array(a[:n])))) with numpy 2.4.6, float64
  const numpy: Record<number, number> = {
    1: 3.0,
    2: 6.0919001,
    7: 21.4299021,
    8: 24.4732021,
    9: 27.508402200000003,
    15: 45.7495042,
    16: 48.8280043,
    17: 51.898404500000005,
    23: 70.15070639999999,
    128: 390.3632379,
    129: 393.4264381,
    136: 414.6420402,
    137: 417.7404405,
    300: 915.0150897000001,
  };
  for (const [n, want] of Object.entries(numpy)) assert.equal(numpySum(npInput(Number(n))), want, `n = ${n}`);
  // and it is not a left-to-right sum (the values at n = 8 and 300 differ from one)
  const ltr = (a: number[]) => a.reduce((s, x) => s + x, 0);
  assert.notEqual(ltr(npInput(8)), numpy[8]);
  assert.notEqual(ltr(npInput(300)), numpy[300]);
});

test('numpySum follows the pairwise tree written out by hand (8, 20 and 200 elements)', () => {
  const a = npInput(200).map((x, i) => x * (1 + (i % 3) * 1e-3));
  const tree8 = (r: number[]) => r[0] + r[1] + (r[2] + r[3]) + (r[4] + r[5] + (r[6] + r[7]));
  assert.equal(numpySum(a.slice(0, 8)), tree8(a.slice(0, 8)));
  // 20: accumulators r[j] = a[j] + a[j+8]; tree; then a[16..19] left to right
  const r20 = Array.from({ length: 8 }, (_, j) => a[j] + a[j + 8]);
  let want20 = tree8(r20);
  for (let i = 16; i < 20; i++) want20 += a[i];
  assert.equal(numpySum(a.slice(0, 20)), want20);
  // 200 > 128: halves of 96 (100 rounded down to a multiple of 8) and 104, each <= 128
  const block = (b: number[]) => {
    const r = b.slice(0, 8);
    let i = 8;
    for (; i < b.length - (b.length % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += b[i + j];
    let s = tree8(r);
    for (; i < b.length; i++) s += b[i];
    return s;
  };
  assert.equal(numpySum(a), block(a.slice(0, 96)) + block(a.slice(96)));
  // a sub-range, as the moving average uses it
  assert.equal(numpySum(a, 5, 8), tree8(a.slice(5, 13)));
  assert.equal(numpyMean(a, 5, 8), tree8(a.slice(5, 13)) / 8);
  assert.ok(Object.is(numpySum([]), -0));
});

test('an exact tie resolves as numpy does: left-to-right would call it DNR, numpy CEG 1', () => {
  // the same 8 losses in two orders (found with numpy 2.4.6): np.mean gives the same
  // double, 0x1.80da5119ce076p+1, for both; a left-to-right sum puts the variant's one ulp above
  const x = [3.0047, 3.0072, 3.0088, 3.0071, 3.0092, 3.0039, 3.008, 3.0044];
  const y = [3.008, 3.0092, 3.0071, 3.0072, 3.0039, 3.0047, 3.0044, 3.0088];
  const ltrMean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
  assert.ok(ltrMean(y) > ltrMean(x), 'left to right: the variant is one ulp above the baseline');
  assert.equal(numpyMean(y), numpyMean(x));
  const head = [4, 4, 4, 4, 4, 4, 4, 4];
  const r = paperCeg([...head, ...x], [...head, ...y]);
  assert.equal(r.dnr, false);
  assert.equal(r.baselineEvals, 16);
  assert.equal(r.variantEvals, 16);
  assert.equal(r.ceg, 1);
  assert.equal(r.target, 3.0066625); // repr(float(np.mean(x))) with numpy 2.4.6
});

test('the as-published adjustment adds |LayerNorm − baseline| to the smoothed variant, worked by hand', () => {
  // window 1 (no smoothing) so the numbers are plain: gap = |ln - base| = [0, 1, 2, 1, 0.5]
  const base = [10, 8, 6, 5, 4];
  const ln = [10, 7, 4, 4, 3.5];
  const rope = [10, 6, 3.5, 3, 3];
  const plain = paperCeg(base, rope, { window: 1 });
  assert.equal(plain.variantEvals, 3); // 3.5 <= 4 at position 3
  const adj = paperCeg(base, rope, { window: 1, gap: ln });
  // adjusted rope = [10, 7, 5.5, 4, 3.5]: first <= 4 at position 4
  assert.equal(adj.variantEvals, 4);
  close(adj.ceg!, 5 / 4);
  assert.equal(adj.target, 4); // the baseline is not adjusted
  // a gap curve shorter than the variant adjusts only the points both have
  const short = paperCeg(base, rope, { window: 1, gap: [10, 7] });
  assert.equal(short.variantEvals, 3);
  // with the default 8-point smoothing the gap is taken between smoothed curves
  const b8 = [9, 8, 7, 6, 5, 4, 3.5, 3.2, 3.1, 3.0];
  const l8 = [9, 7, 6, 5, 4, 3.5, 3.2, 3.0, 2.9, 2.8];
  const v8 = [9, 7.5, 6, 5, 4.2, 3.6, 3.3, 3.1, 3.0, 2.95];
  const sb = movingAverage(b8),
    sl = movingAverage(l8),
    sv = movingAverage(v8);
  const want = sv.map((v, i) => v + Math.abs(sl[i] - sb[i]));
  const target = sb[sb.length - 1];
  const pos = want.findIndex((v) => v <= target);
  const r8 = paperCeg(b8, v8, { gap: l8 });
  assert.equal(r8.variantEvals, pos < 0 ? null : pos + 1);
  assert.notEqual(r8.variantEvals, paperCeg(b8, v8).variantEvals, 'this case must be one the adjustment changes');
});
