import { test } from 'node:test';
import assert from 'node:assert/strict';
import { movingAverage, paperCeg, firstReach } from '../src/ceg/paper.js';
import type { MetricRow } from '../src/ceg/types.js';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('moving average, partial (the paper\'s code): the first 7 points average what is available', () => {
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
  assert.throws(() => movingAverage([1], 2, 'centered' as never), /unknown smoothing "centered"; valid: partial, strict/);
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
    v.map((valLoss, i) => ({ step: i * 500, tokens: i * 1000, flops: i * 1e9, seconds: i, trainLoss: valLoss, valLoss, lr: 1e-3 }));
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
