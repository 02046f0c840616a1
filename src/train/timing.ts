/**
 * Step times measured side by side. The wall-clock seconds stored with each run depend on
 * whatever else the machine was doing while that run trained; on a shared machine that noise
 * swamps the difference between variants. Here every variant takes training steps (the
 * trainer's own step, src/train/step.ts) in interleaved rounds within one process, so all see
 * the same conditions; the median ms/step per variant then gives a wall-clock CEG:
 *   CEG_seconds ≈ CEG_steps × (baseline ms/step ÷ variant ms/step).
 * Results are stored next to the runs as timing-<scale>-<backend>.json.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initEngine, engineInfo, type BackendName } from '../engine/index.js';
import { initParams, isDecayed } from '../model/params.js';
import { createRng, sampleBatch } from '../data/batches.js';
import { loadTokens } from '../data/index.js';
import { writeJsonAtomic, readJson } from '../runs/index.js';
import { AdamW } from './adamw.js';
import { trainStep, stepState } from './step.js';
import { runSpec } from './sweep.js';

export interface StepTime {
  innovation: string;
  /** median over all timed steps */
  msPerStep: number;
  samples: number[];
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
      beta1: spec.train.beta1, beta2: spec.train.beta2, eps: 1e-8, weightDecay: spec.train.weightDecay, decayed: isDecayed,
    });
    const b = sampleBatch(data.train, spec.train.batchSize, spec.model.blockSize, createRng(1));
    return { innovation, state: stepState(params, opt, spec.model, spec.train), batch: () => b, samples: [] as number[] };
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
  return {
    scale: o.scale, backend: o.backend, measuredAt: new Date().toISOString(), load, engine: { ...engineInfo() },
    steps, rounds, results: variants.map((v) => ({ innovation: v.innovation, msPerStep: median(v.samples), samples: v.samples })),
  };
}

export function timingPath(runsRoot: string, scale: string, backend: string): string {
  return path.join(runsRoot, `timing-${scale}-${backend}.json`);
}

export function saveTiming(runsRoot: string, t: TimingFile): string {
  fs.mkdirSync(runsRoot, { recursive: true });
  const file = timingPath(runsRoot, t.scale, t.backend);
  writeJsonAtomic(file, t);
  return file;
}

export function loadTiming(runsRoot: string, scale: string, backend: string): TimingFile | undefined {
  return readJson<TimingFile>(timingPath(runsRoot, scale, backend));
}

/** Wall-clock CEG from a steps CEG and side-by-side step times: CEG_steps × t_baseline / t_variant. */
export function calibratedSecondsCeg(cegSteps: number | null, msBaseline: number, msVariant: number): number | null {
  if (cegSteps === null || !Number.isFinite(cegSteps) || !(msBaseline > 0 && msVariant > 0)) return null;
  return (cegSteps * msBaseline) / msVariant;
}
