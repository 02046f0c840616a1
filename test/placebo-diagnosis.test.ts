/**
 * scripts/placebo-diagnosis.ts: each crossed trunk differs from its neighbours in exactly the
 * one thing its comparison is about (the model, the LR, or the trunk's length).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crossedSpecs } from '../scripts/placebo-diagnosis.js';
import { getPlan } from '../src/plans.js';
import { planRuns } from '../src/train/study.js';
import type { RunSpec } from '../src/runs/index.js';

/** The fields (dotted paths) in which two specs differ. */
function diff(a: unknown, b: unknown, at = ''): string[] {
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) =>
      diff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], at ? `${at}.${k}` : k),
    );
  }
  return Object.is(a, b) ? [] : [at];
}

test('crossed trunks: A = the baseline on the placebo trunk, B = A at the placebo LR, C = the placebo at the baseline LR', () => {
  const trunks = planRuns(getPlan('smoke'), { backend: 'wasm', stages: ['lr-sweep'] }).filter(
    (r) => r.role === 'trunk' && r.seed === 1 && r.rung === 'smoke-a',
  );
  const base = trunks.find((r) => r.variant === 'baseline' && r.lr === 1e-3)!.spec;
  const plc0 = trunks.find((r) => r.variant === 'fused' && r.lr !== 1e-3)!.spec;
  // a placebo trunk shorter than the baseline's, as in the study (the baseline trains on to its extra fork)
  const placebo: RunSpec = { ...plc0, train: { ...plc0.train, steps: base.train.steps - 10 } };
  const before = structuredClone([base, placebo]);
  const { A, B, C } = crossedSpecs(base, placebo);
  assert.deepEqual(diff(base, A).sort(), ['train.steps'], 'A: only the trunk length differs from the baseline');
  assert.deepEqual(diff(A, B), ['train.lr'], 'A vs B: only the LR');
  assert.deepEqual(diff(B, placebo).sort(), ['innovation', 'model.attnKernel'], 'B vs the placebo: only the model');
  assert.deepEqual(diff(A, C).sort(), ['innovation', 'model.attnKernel'], 'A vs C: only the model');
  assert.deepEqual(diff(C, placebo), ['train.lr'], 'C vs the placebo: only the LR');
  assert.deepEqual([base, placebo], before, 'the stored specs are not changed');
});
