/**
 * Step times measured side by side. The wall-clock seconds stored with each run depend on
 * whatever else the machine was doing while that run trained; on a shared machine that noise
 * swamps the difference between variants. Here every variant takes training steps (the
 * trainer's own step, src/train/step.ts) in interleaved rounds within one process, so all see
 * the same conditions; the median ms/step per variant then gives a wall-clock CEG:
 *   CEG_seconds ≈ CEG_steps × (baseline ms/step ÷ variant ms/step).
 * Results are stored next to the runs as timing-<scale>-<backend>.json, MERGED into the step
 * times already there and keyed by machine (CPU model, cores) and kernel set: step times are
 * only ever divided by step times of the same key (like for like), and per-run seconds of runs
 * trained on different machines or kernel sets are never divided into each other either
 * (secondsTimingKey).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initEngine, engineInfo, type BackendName } from '../engine/index.js';
import { decayedParams, initParams } from '../model/params.js';
import { createRng, sampleBatch } from '../data/batches.js';
import { loadTokens } from '../data/index.js';
import { writeJsonAtomic, readJson, type RunStatus } from '../runs/index.js';
import { currentProvenance, timingKey } from './provenance.js';
import { AdamW } from './adamw.js';
import { trainStep, stepState } from './step.js';
import { runSpec } from './sweep.js';

export interface StepTime {
  innovation: string;
  /** median over all timed steps */
  msPerStep: number;
  samples: number[];
  /** when this innovation was measured, and the 1-minute load average then (merged files mix sessions) */
  measuredAt?: string;
  load?: number;
  /** content hash of the number-affecting sources that were timed (src/train/provenance.ts) */
  sourceHash?: string;
}

export interface TimingFile {
  scale: string;
  backend: string;
  measuredAt: string;
  /** 1-minute load average when the measurement started */
  load: number;
  engine: Record<string, unknown>;
  steps: number;
  rounds: number;
  results: StepTime[];
  /** the machine and kernel set measured (absent in files written before they were recorded) */
  machine?: { cpu: string; cores: number };
  kernels?: string;
}

/** Step times of one machine and kernel set: the only ones that may be divided into each other. */
export interface TimingSet {
  /** timingKey(): "<cpu> x<cores> | <kernel set>" */
  key: string;
  machine: { cpu: string; cores: number } | null;
  kernels: string;
  engine: Record<string, unknown>;
  results: StepTime[];
}

/** timing-<scale>-<backend>.json: every measured set, merged. */
export interface TimingStore {
  version: 2;
  scale: string;
  backend: string;
  sets: TimingSet[];
}

export interface TimingOptions {
  scale: string;
  innovations: readonly string[];
  backend: BackendName;
  /** timed steps per variant per round (default 5) */
  steps?: number;
  /** interleaved rounds (default 3); one untimed warm-up step per variant precedes them */
  rounds?: number;
  onProgress?: (msg: string) => void;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export async function measureStepTimes(o: TimingOptions): Promise<TimingFile> {
  const steps = o.steps ?? 5;
  const rounds = o.rounds ?? 3;
  await initEngine({ backend: o.backend });
  const load = os.loadavg()[0];
  const variants = o.innovations.map((innovation) => {
    const spec = runSpec(innovation, o.scale, 1, o.backend);
    const data = loadTokens(spec.data);
    const params = initParams(spec.model, 1);
    const opt = new AdamW(params, {
      beta1: spec.train.beta1,
      beta2: spec.train.beta2,
      eps: 1e-8,
      weightDecay: spec.train.weightDecay,
      decayed: decayedParams(spec.model),
    });
    const b = sampleBatch(data.train, spec.train.batchSize, spec.model.blockSize, createRng(1));
    return {
      innovation,
      state: stepState(params, opt, spec.model, spec.train),
      batch: () => b,
      samples: [] as number[],
    };
  });
  const step = async (v: (typeof variants)[number]) => {
    const t0 = performance.now();
    await trainStep(v.state, v.state.tc.lr, v.batch, () => 0);
    return performance.now() - t0;
  };
  for (const v of variants) await step(v); // warm-up (kernel compilation, caches)
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      for (let k = 0; k < steps; k++) v.samples.push(await step(v));
      o.onProgress?.(`round ${r + 1}/${rounds} ${v.innovation}: ${median(v.samples).toFixed(0)} ms/step`);
    }
  }
  for (const v of variants) {
    for (const p of v.state.params.values()) p.dispose();
    v.state.opt.dispose();
  }
  const prov = currentProvenance(o.backend);
  const measuredAt = new Date().toISOString();
  return {
    scale: o.scale,
    backend: o.backend,
    measuredAt,
    load,
    engine: { ...engineInfo() },
    steps,
    rounds,
    results: variants.map((v) => ({
      innovation: v.innovation,
      msPerStep: median(v.samples),
      samples: v.samples,
      measuredAt,
      load,
      sourceHash: prov.code.sourceHash,
    })),
    machine: { cpu: prov.machine.cpu, cores: prov.machine.cores },
    kernels: prov.kernels,
  };
}

export function timingPath(runsRoot: string, scale: string, backend: string): string {
  return path.join(runsRoot, `timing-${scale}-${backend}.json`);
}

/** One measurement as a TimingSet (files written before machine/kernels were recorded: machine null). */
function setOf(t: TimingFile): TimingSet {
  const kernels =
    t.kernels ?? `${t.backend}/${String((t.engine as { flags?: { kernels?: string } })?.flags?.kernels || 'stock')}`;
  const machine = t.machine ?? null;
  const results = t.results.map((r) => ({ ...r, measuredAt: r.measuredAt ?? t.measuredAt, load: r.load ?? t.load }));
  return {
    key: machine ? timingKey({ machine, kernels }) : `unknown machine | ${kernels}`,
    machine,
    kernels,
    engine: t.engine,
    results,
  };
}

/** The stored timings of a scale and backend (a file of the old one-measurement format is read as one set). */
export function loadTimings(runsRoot: string, scale: string, backend: string): TimingStore | undefined {
  const raw = readJson<TimingStore | TimingFile>(timingPath(runsRoot, scale, backend));
  if (!raw) return undefined;
  if ('sets' in raw && Array.isArray(raw.sets)) return raw;
  return { version: 2, scale, backend, sets: [setOf(raw as TimingFile)] };
}

/**
 * Merge a measurement into the stored timings: within its set (same machine and kernel set)
 * its innovations replace the stored ones and the others are kept; other sets are untouched.
 */
export function mergeTiming(stored: TimingStore | undefined, t: TimingFile): TimingStore {
  const add = setOf(t);
  const sets = (stored?.sets ?? []).map((s) => ({ ...s, results: [...s.results] }));
  const same = sets.find((s) => s.key === add.key);
  if (!same) sets.push(add);
  else {
    const mine = new Set(add.results.map((r) => r.innovation));
    same.results = [...same.results.filter((r) => !mine.has(r.innovation)), ...add.results];
    same.engine = add.engine;
  }
  return { version: 2, scale: t.scale, backend: t.backend, sets };
}

export function saveTiming(runsRoot: string, t: TimingFile): string {
  fs.mkdirSync(runsRoot, { recursive: true });
  const file = timingPath(runsRoot, t.scale, t.backend);
  writeJsonAtomic(file, mergeTiming(loadTimings(runsRoot, t.scale, t.backend), t));
  return file;
}

/**
 * The set a report divides by: the current machine's and kernel set's (`preferKey`) if it has a
 * baseline, else the set with a baseline and the most innovations. Undefined without a baseline.
 */
export function pickTimingSet(store: TimingStore | undefined, preferKey?: string): TimingSet | undefined {
  const withBase = (store?.sets ?? []).filter((s) => s.results.some((r) => r.innovation === 'baseline'));
  return (
    withBase.find((s) => s.key === preferKey) ?? [...withBase].sort((a, b) => b.results.length - a.results.length)[0]
  );
}

/**
 * The machine and kernel set a run's per-run seconds were measured on (its provenance; for runs
 * trained before provenance was recorded: the host name and the kernel patches in status.engine).
 */
export function runTimingKey(st: RunStatus, backend: string): string {
  if (st.provenance) return timingKey(st.provenance);
  const kernels = (st.engine as { flags?: { kernels?: string } } | undefined)?.flags?.kernels || 'stock';
  return `host ${st.host ?? '?'} | ${backend}/${kernels}`;
}

/**
 * The one timing key shared by all `keys` (undefined entries: unknown), or null when they differ:
 * then per-run seconds must not be divided into each other (no CEG on the seconds axis).
 */
export function secondsTimingKey(keys: (string | undefined)[]): string | null {
  const set = new Set(keys);
  return set.size === 1 && !set.has(undefined) ? [...set][0]! : null;
}

/** Wall-clock CEG from a steps CEG and side-by-side step times: CEG_steps × t_baseline / t_variant. */
export function calibratedSecondsCeg(cegSteps: number | null, msBaseline: number, msVariant: number): number | null {
  if (cegSteps === null || !Number.isFinite(cegSteps) || !(msBaseline > 0 && msVariant > 0)) return null;
  return (cegSteps * msBaseline) / msVariant;
}
