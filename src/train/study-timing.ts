/**
 * How long a study plan takes on this machine: a few training steps of every rung's baseline
 * model are measured here (trainer's own step, one process; CPU time, so that other jobs on a
 * shared machine inflate it far less than wall-clock time), and each run's own steps (a
 * fork's cooldown only) and evaluations are priced with its rung's step time, scaled by the
 * variant's FLOPs per step relative to the baseline's. An estimate: variants whose time is not
 * proportional to FLOPs (sparse attention, MoE) are off by their overhead, and the machine's
 * current load is part of the measurement (printed with it).
 */
import os from 'node:os';
import { initEngine, type BackendName } from '../engine/index.js';
import { initParams, decayedParams, disposeParams } from '../model/params.js';
import { stepFlops } from '../model/flops.js';
import { createRng, sampleBatch } from '../data/batches.js';
import { loadTokens } from '../data/index.js';
import type { StudyPlan } from '../plans.js';
import { AdamW } from './adamw.js';
import { trainStep, stepState } from './step.js';
import { planGeometry, rungModel, trunkAndForks, type PlannedRun } from './study.js';

export interface RungStepTime {
  rung: string;
  /** median CPU milliseconds per step (all threads of this process): the idle machine's wall time with one thread per process */
  msPerStep: number;
  /** median wall-clock milliseconds per step, as measured (inflated by the machine's load) */
  wallMsPerStep: number;
}

/** Median ms per training step of each rung's baseline model (after `warmup` untimed steps). */
export async function measureRungSteps(
  plan: StudyPlan,
  backend: BackendName,
  o: { steps?: number; warmup?: number } = {},
): Promise<{ load: number; times: RungStepTime[] }> {
  await initEngine({ backend });
  const load = os.loadavg()[0];
  const data = loadTokens(plan.data);
  const times: RungStepTime[] = [];
  for (const g of planGeometry(plan)) {
    const model = rungModel(plan, g.rung, 'baseline');
    const params = initParams(model, 1);
    const opt = new AdamW(params, {
      beta1: plan.beta1,
      beta2: plan.beta2,
      eps: 1e-8,
      weightDecay: plan.weightDecay,
      decayed: decayedParams(model),
    });
    const tc = trunkAndForks(plan, g, 'baseline', 1e-3, 1, 'lr-sweep', backend)[0].spec.train;
    const st = stepState(params, opt, model, tc);
    const b = sampleBatch(data.train, g.rung.batchSize, model.blockSize, createRng(1));
    for (let i = 0; i < (o.warmup ?? 2); i++)
      await trainStep(
        st,
        1e-3,
        () => b,
        () => 0,
      );
    const wall: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < (o.steps ?? 5); i++) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      await trainStep(
        st,
        1e-3,
        () => b,
        () => 0,
      );
      const c = process.cpuUsage(c0);
      wall.push(performance.now() - t0);
      cpu.push((c.user + c.system) / 1000);
    }
    const med = (xs: number[]) => [...xs].sort((a, c) => a - c)[Math.floor(xs.length / 2)];
    times.push({ rung: g.rung.name, msPerStep: med(cpu), wallMsPerStep: med(wall) });
    disposeParams(params);
    opt.dispose();
  }
  return { load, times };
}

export interface RunCost {
  /** optimizer steps this run trains itself (a fork: its cooldown only) */
  steps: number;
  evals: number;
  /** training FLOPs of those steps */
  flops: number;
}

/** What one run costs by itself (a fork starts from its trunk's checkpoint). */
export function runCost(r: PlannedRun): RunCost {
  const t = r.spec.train;
  const own = r.spec.fork ? t.steps - r.spec.fork.step : t.steps;
  const evals = Math.floor(own / t.evalInterval) + 1;
  const flops = own * stepFlops(r.spec.model, t.batchSize * t.gradAccum * r.spec.model.blockSize).total;
  return { steps: own, evals, flops };
}

/**
 * Estimated seconds of `runs` with `jobs` processes in parallel: Σ (own steps + evaluations ×
 * evalBatches / 3, a forward pass being about a third of a step) × the rung's ms/step × the
 * variant's FLOPs per step / the baseline's, divided by jobs.
 */
export function estimateSeconds(
  plan: StudyPlan,
  runs: readonly PlannedRun[],
  times: readonly RungStepTime[],
  jobs: number,
): number {
  const geo = new Map(planGeometry(plan).map((g) => [g.rung.name, g]));
  let ms = 0;
  for (const r of runs) {
    const g = geo.get(r.rung)!;
    const t = times.find((x) => x.rung === r.rung);
    if (!t) throw new Error(`no step time measured for rung ${r.rung}`);
    const c = runCost(r);
    const ratio = stepFlops(r.spec.model, g.tokensPerStep).total / g.flopsPerStep;
    ms += (c.steps + (c.evals * plan.evalBatches) / 3) * t.msPerStep * ratio;
  }
  return ms / 1000 / Math.max(1, jobs);
}
