/**
 * Like-for-like wall-clock: `ceg timing` merges into the stored step times keyed by machine and
 * kernel set; a report divides only step times of one set; per-run seconds of runs trained on
 * different machines or kernel sets are never divided into each other (no seconds CEG).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  loadTimings,
  mergeTiming,
  pickTimingSet,
  runTimingKey,
  saveTiming,
  secondsTimingKey,
  timingPath,
  type TimingFile,
} from '../src/train/timing.js';
import { reportDataFromRecords } from '../src/report/from-runs.js';
import type { RunRecord } from '../src/runs/index.js';
import type { RunStatus, Provenance } from '../src/runs/index.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ceg-timing-'));

function measurement(cpu: string, kernels: string, ms: Record<string, number>, at: string): TimingFile {
  return {
    scale: 'micro',
    backend: 'wasm',
    measuredAt: at,
    load: 0.5,
    engine: { backend: 'wasm' },
    steps: 1,
    rounds: 1,
    results: Object.entries(ms).map(([innovation, msPerStep]) => ({
      innovation,
      msPerStep,
      samples: [msPerStep],
      measuredAt: at,
      load: 0.5,
    })),
    machine: { cpu, cores: 2 },
    kernels,
  };
}

test('ceg timing merges into the stored step times, keyed by machine and kernel set', () => {
  const root = tmp();
  saveTiming(
    root,
    measurement('Xeon A', 'wasm/native', { baseline: 100, rope: 110, layernorm: 120 }, '2026-01-01T00:00:00Z'),
  );
  // the same machine and kernels, two innovations re-measured or added: replaced / added, the rest kept
  saveTiming(root, measurement('Xeon A', 'wasm/native', { baseline: 90, qknorm: 95 }, '2026-01-02T00:00:00Z'));
  // another kernel set: its own set, nothing of the first touched
  saveTiming(root, measurement('Xeon A', 'wasm/stock', { baseline: 375, qknorm: 380 }, '2026-01-03T00:00:00Z'));
  const t = loadTimings(root, 'micro', 'wasm')!;
  assert.equal(t.sets.length, 2);
  const native = t.sets.find((s) => s.kernels === 'wasm/native')!;
  assert.deepEqual(Object.fromEntries(native.results.map((r) => [r.innovation, r.msPerStep])), {
    rope: 110,
    layernorm: 120,
    baseline: 90,
    qknorm: 95,
  });
  const stock = t.sets.find((s) => s.kernels === 'wasm/stock')!;
  assert.deepEqual(
    stock.results.map((r) => r.innovation),
    ['baseline', 'qknorm'],
  );
  // a report on this machine with the native kernels uses the native set; elsewhere the fullest set with a baseline
  assert.equal(pickTimingSet(t, native.key), native);
  assert.equal(pickTimingSet(t, stock.key), stock);
  assert.equal(pickTimingSet(t, 'other machine | wasm/x'), native);
  assert.equal(
    pickTimingSet({ ...t, sets: [{ ...stock, results: stock.results.filter((r) => r.innovation !== 'baseline') }] }),
    undefined,
  );
});

test('a timing file of the old one-measurement format is read as one set and merged into, not replaced', () => {
  const root = tmp();
  const old = {
    scale: 'micro',
    backend: 'wasm',
    measuredAt: '2025-11-25T13:08:37.092Z',
    load: 1.76,
    engine: { backend: 'wasm', tfjsVersion: '4.22.0', flags: { simd: true, threads: 1, kernels: 'BatchMatMul,Slice' } },
    steps: 5,
    rounds: 3,
    results: [
      { innovation: 'baseline', msPerStep: 374.7, samples: [374.7] },
      { innovation: 'fused', msPerStep: 396, samples: [396] },
    ],
  };
  fs.writeFileSync(timingPath(root, 'micro', 'wasm'), JSON.stringify(old));
  const t = loadTimings(root, 'micro', 'wasm')!;
  assert.equal(t.sets.length, 1);
  assert.equal(t.sets[0].key, 'unknown machine | wasm/BatchMatMul,Slice');
  assert.equal(t.sets[0].results[0].measuredAt, old.measuredAt);
  saveTiming(root, measurement('Xeon A', 'wasm/native', { baseline: 100, qknorm: 101 }, '2026-01-01T00:00:00Z'));
  const merged = loadTimings(root, 'micro', 'wasm')!;
  assert.equal(merged.sets.length, 2, 'the old step times are kept beside the new ones');
  assert.deepEqual(
    merged.sets[0].results.map((r) => r.innovation),
    ['baseline', 'fused'],
  );
  assert.deepEqual(mergeTiming(undefined, measurement('B', 'k', { baseline: 1 }, 'x')).sets.length, 1);
});

test("a run's timing key: its provenance's machine and kernel set; older runs: host and kernel patches", () => {
  const prov = {
    machine: { cpu: 'Xeon A', cores: 2, platform: 'linux', arch: 'x64', node: 'v20' },
    kernels: 'wasm/native',
  } as unknown as Provenance;
  const st = (x: Partial<RunStatus>) => ({ state: 'done', startedAt: '', updatedAt: '', ...x }) as RunStatus;
  assert.equal(runTimingKey(st({ provenance: prov }), 'wasm'), 'Xeon A x2 | wasm/native');
  assert.equal(
    runTimingKey(st({ host: 'vm', engine: { flags: { kernels: 'BatchMatMul,Slice' } } }), 'wasm'),
    'host vm | wasm/BatchMatMul,Slice',
  );
  assert.equal(secondsTimingKey(['a', 'a']), 'a');
  assert.equal(secondsTimingKey(['a', 'b']), null);
  assert.equal(secondsTimingKey(['a', undefined]), null);
});

/** A synthetic run: loss falling from 4 to `end` over 100 steps, `msPerStep` wall-clock per step. */
function record(innovation: string, seed: number, end: number, msPerStep: number, timingKey: string): RunRecord {
  const metrics = Array.from({ length: 11 }, (_, i) => {
    const step = i * 10;
    return {
      step,
      tokens: step * 100,
      flops: step * 1e6,
      seconds: (step * msPerStep) / 1000,
      trainLoss: null,
      valLoss: 4 - ((4 - end) * i) / 10,
      lr: 1e-3,
    };
  });
  return {
    id: `${innovation}${seed}`.padEnd(16, '0'),
    innovation,
    scale: 'micro',
    seed,
    backend: 'wasm',
    metrics,
    cached: true,
    timingKey,
  };
}

test('seconds CEG bars only when every run shares one machine and kernel set', () => {
  const same = [record('baseline', 1, 3, 375, 'A'), record('rope', 1, 2.5, 380, 'A')];
  const a = reportDataFromRecords(same, null, 'micro');
  assert.ok(a.data.ceg?.seconds?.length, 'same machine and kernels: seconds bars drawn');
  assert.equal(a.data.secondsTiming, 'A', 'and the figure says which timing it uses');
  // the new run on faster kernels: its seconds must not be divided into the old baseline's
  const mixed = [record('baseline', 1, 3, 375, 'A'), record('rope', 1, 2.5, 108, 'B')];
  const b = reportDataFromRecords(mixed, null, 'micro');
  assert.equal(b.data.ceg?.seconds, undefined);
  assert.ok(b.data.ceg?.flops?.length, 'the other axes are unaffected');
  assert.ok(
    b.notes.some((n) =>
      /ceg_bars_seconds skipped: the runs were trained on different machines or kernel sets \(A; B\)/.test(n),
    ),
    b.notes.join('\n'),
  );
});
