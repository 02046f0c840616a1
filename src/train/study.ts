/**
 * From a study plan (src/plans.ts) to the plain, typed list of runs it needs: one trunk per
 * (variant, rung, lr, seed) at constant LR (warmup–stable–decay without the decay) that keeps
 * a checkpoint at every fork point, and one cooldown fork per frontier point. The list is all
 * an executor needs (each entry carries its full RunSpec; a fork's parent is the trunk listed
 * before it), so the local sweep and a cluster executor run the same plan.
 *
 * Stages, because later rungs' learning rates come from earlier rungs' results:
 *   1. lr-sweep    every variant at the first `lrSweepRungs` rungs, every LR of the grid, seed 1
 *   2. frontier    every variant at every rung and seed, at its chosen LR (the sweep's best at
 *                  the sweep rungs, transferred from them above)
 *   3. spot-check  the transferred LR × ½ decade either way at one larger rung, seed 1
 * Stages 2 and 3 take the chosen LR as a function (lrOf) so this module stays free of the fit.
 */
import { ConfigError, parseModelConfig, parseTrainConfig, type ModelConfig, type TrainConfig } from '../config.js';
import { applyInnovations, getInnovation } from '../innovations.js';
import type { PlanRung, StudyPlan } from '../plans.js';
import { getScale } from '../scales.js';
import { paramCount } from '../model/params.js';
import { stepFlops } from '../model/flops.js';
import type { BackendName } from '../engine/index.js';
import { runId, type RunSpec } from '../runs/index.js';

export const STUDY_STAGES = ['lr-sweep', 'frontier', 'spot-check'] as const;
export type StudyStage = (typeof STUDY_STAGES)[number];

export interface PlannedRun {
  stage: StudyStage;
  role: 'trunk' | 'fork';
  variant: string;
  rung: string;
  lr: number;
  seed: number;
  /** forks: tokens per parameter at the fork's end (cooldown included); trunks: null */
  tokensPerParam: number | null;
  /** run id of spec (a fork's spec.fork.parent is its trunk's id) */
  id: string;
  spec: RunSpec;
}

/** A fork of a rung: where it leaves the trunk and where its cooldown ends. */
export interface ForkPoint {
  tokensPerParam: number;
  /** the trunk step it starts from (a kept checkpoint) */
  start: number;
  /** its last step */
  end: number;
}

export interface RungGeometry {
  rung: PlanRung;
  /** whole parameter count of the rung's baseline model (embeddings and tied head included) */
  params: number;
  tokensPerStep: number;
  /** training FLOPs per step of the baseline model (whole model, forward + backward) */
  flopsPerStep: number;
  warmupSteps: number;
  evalInterval: number;
  /** the plan's forks */
  forks: ForkPoint[];
  /** the baselines' extra fork at the top rung, if any */
  extraFork: ForkPoint | null;
}

/** Labels of study runs in the run store: scale = study-<rung>. */
export function studyScaleLabel(rung: string): string {
  return `study-${rung}`;
}

/** The model of `variant` at a rung: the study's baseline choices (as every scale) resized. */
export function rungModel(plan: StudyPlan, rung: PlanRung, variant: string): ModelConfig {
  getInnovation(variant);
  const m = getScale('micro').model;
  const base: ModelConfig = {
    ...m,
    vocabSize: plan.vocabSize,
    blockSize: plan.blockSize,
    nLayer: rung.nLayer,
    nHead: rung.nHead,
    nKvHead: rung.nHead,
    nEmbd: rung.nEmbd,
    mlpHidden: 4 * rung.nEmbd,
    sparse: { blockSize: Math.max(1, plan.blockSize / 8), localBlocks: 2, selectedBlocks: 2 },
    // NSA ('sparse', the paper's SA): the model's heads (16 would not divide every rung's width),
    // one K/V head and no window as in the paper, 8 blocks per context of which 4 are selected (as micro)
    nsa: { heads: rung.nHead, kvHeads: 1, blockSize: Math.max(1, plan.blockSize / 8), blockCounts: 4, windowSize: 0 },
  };
  return parseModelConfig(applyInnovations(parseModelConfig(base), [variant]));
}

function forkPoint(tpp: number, params: number, tokensPerStep: number, cooldownFraction: number): ForkPoint {
  const end = Math.max(2, Math.round((tpp * params) / tokensPerStep));
  const cool = Math.max(1, Math.round(cooldownFraction * end));
  return { tokensPerParam: tpp, start: end - cool, end };
}

export function rungGeometry(plan: StudyPlan, rung: PlanRung, isTop = false): RungGeometry {
  const model = rungModel(plan, rung, 'baseline');
  const params = paramCount(model);
  const tokensPerStep = rung.batchSize * plan.blockSize;
  const forks = plan.forks.map((t) => forkPoint(t, params, tokensPerStep, plan.cooldownFraction));
  const last = forks[forks.length - 1];
  const warmupSteps = Math.max(1, Math.round(plan.warmupFraction * last.end));
  if (warmupSteps >= forks[0].start)
    throw new ConfigError(
      `plan ${plan.name}, rung ${rung.name}: warmup ${warmupSteps} steps reaches the first fork (step ${forks[0].start}); give it more tokens`,
    );
  const extraFork =
    isTop && plan.baselineExtraFork !== undefined
      ? forkPoint(plan.baselineExtraFork, params, tokensPerStep, plan.cooldownFraction)
      : null;
  return {
    rung,
    params,
    tokensPerStep,
    flopsPerStep: stepFlops(model, tokensPerStep).total,
    warmupSteps,
    evalInterval: Math.max(1, Math.round(last.start / plan.evalsPerTrunk)),
    forks,
    extraFork,
  };
}

/** Every rung's geometry, in plan order (the last rung is the top). */
export function planGeometry(plan: StudyPlan): RungGeometry[] {
  return plan.rungs.map((r, i) => rungGeometry(plan, r, i === plan.rungs.length - 1));
}

const BASELINES = ['baseline', 'baseline_fair'];

/** Trunk and forks of one (variant, rung, lr, seed). */
export function trunkAndForks(
  plan: StudyPlan,
  g: RungGeometry,
  variant: string,
  lr: number,
  seed: number,
  stage: StudyStage,
  backend: BackendName,
): PlannedRun[] {
  const forks = [...g.forks, ...(g.extraFork && BASELINES.includes(variant) ? [g.extraFork] : [])];
  const trunkSteps = Math.max(...forks.map((f) => f.start));
  const common = {
    batchSize: g.rung.batchSize,
    gradAccum: 1,
    lr,
    minLr: plan.minLr,
    warmupSteps: g.warmupSteps,
    weightDecay: plan.weightDecay,
    beta1: plan.beta1,
    beta2: plan.beta2,
    gradClip: plan.gradClip,
    evalInterval: g.evalInterval,
    evalBatches: plan.evalBatches,
    schedule: 'wsd' as const,
  };
  const ckEvery = Math.max(1, Math.round(trunkSteps / 10));
  const trunkTrain: TrainConfig = parseTrainConfig({
    ...common,
    steps: trunkSteps,
    decaySteps: trunkSteps,
    cooldownSteps: 0,
    checkpointInterval: ckEvery,
    keepSteps: [...new Set(forks.map((f) => f.start))].sort((a, b) => a - b),
  });
  const model = rungModel(plan, g.rung, variant);
  const labels = { innovation: variant, scale: studyScaleLabel(g.rung.name) };
  const trunk: RunSpec = { model, train: trunkTrain, data: { ...plan.data }, seed, backend, ...labels };
  const trunkId = runId(trunk);
  const base = { stage, variant, rung: g.rung.name, lr, seed };
  const out: PlannedRun[] = [{ ...base, role: 'trunk', tokensPerParam: null, id: trunkId, spec: trunk }];
  for (const f of forks) {
    const train = parseTrainConfig({
      ...common,
      steps: f.end,
      decaySteps: f.end,
      cooldownSteps: f.end - f.start,
      checkpointInterval: Math.max(1, Math.round((f.end - f.start) / 2)),
    });
    const spec: RunSpec = { ...trunk, train, fork: { parent: trunkId, step: f.start } };
    out.push({ ...base, role: 'fork', tokensPerParam: f.tokensPerParam, id: runId(spec), spec });
  }
  return out;
}

/** The chosen peak LR of a variant at a rung, or undefined while it cannot be chosen yet. */
export type LrOf = (variant: string, rung: string) => number | undefined;

export interface PlanRunsOptions {
  backend: BackendName;
  /** stages 2 and 3 need the chosen LRs; without it only stage 1 is listed */
  lrOf?: LrOf;
  stages?: readonly StudyStage[];
}

/**
 * The runs of a plan, trunks before their forks, without duplicates (a frontier run that is
 * also a sweep run is listed once, under the earlier stage). Frontier runs whose LR cannot be
 * chosen yet (lrOf undefined) are left out: list again after the earlier stage has run.
 */
export function planRuns(plan: StudyPlan, o: PlanRunsOptions): PlannedRun[] {
  const geo = planGeometry(plan);
  const stages = o.stages ?? STUDY_STAGES;
  const out: PlannedRun[] = [];
  const seen = new Set<string>();
  const push = (runs: PlannedRun[]) => {
    for (const r of runs) {
      if (seen.has(r.id)) continue;
      seen.add(r.id);
      out.push(r);
    }
  };
  if (stages.includes('lr-sweep')) {
    for (const g of geo.slice(0, plan.lrSweepRungs))
      for (const v of plan.variants)
        for (const lr of plan.lrGrid) push(trunkAndForks(plan, g, v.id, lr, 1, 'lr-sweep', o.backend));
  }
  if (o.lrOf && stages.includes('frontier')) {
    for (const g of geo)
      for (const v of plan.variants) {
        const lr = o.lrOf(v.id, g.rung.name);
        if (lr === undefined) continue;
        for (let seed = 1; seed <= v.seeds; seed++) push(trunkAndForks(plan, g, v.id, lr, seed, 'frontier', o.backend));
      }
  }
  if (o.lrOf && plan.spotCheck && stages.includes('spot-check')) {
    const g = geo.find((x) => x.rung.name === plan.spotCheck!.rung);
    if (!g)
      throw new ConfigError(`plan ${plan.name}: spot-check rung "${plan.spotCheck.rung}" is not one of its rungs`);
    for (const v of plan.spotCheck.variants) {
      const lr = o.lrOf(v, g.rung.name);
      if (lr === undefined) continue;
      for (const f of plan.spotCheck.factors)
        push(trunkAndForks(plan, g, v, Number((lr * f).toPrecision(3)), 1, 'spot-check', o.backend));
    }
  }
  return out;
}

/** Check a plan's names and numbers (variants, comparisons, spot check, geometry): a clear ConfigError. */
export function validatePlan(plan: StudyPlan): void {
  const problems: string[] = [];
  for (const v of plan.variants) {
    try {
      getInnovation(v.id);
    } catch (e) {
      problems.push((e as Error).message);
    }
    if (!(Number.isInteger(v.seeds) && v.seeds >= 1)) problems.push(`variant ${v.id}: seeds must be >= 1`);
  }
  const ids = new Set(plan.variants.map((v) => v.id));
  for (const c of plan.comparisons)
    for (const x of [c.variant, c.reference])
      if (!ids.has(x)) problems.push(`comparison ${c.variant} vs ${c.reference}: ${x} is not a variant of the plan`);
  for (const v of plan.spotCheck?.variants ?? [])
    if (!ids.has(v)) problems.push(`spot check: ${v} is not a variant of the plan`);
  if (plan.lrSweepRungs < 1 || plan.lrSweepRungs > plan.rungs.length)
    problems.push(`lrSweepRungs ${plan.lrSweepRungs} must be in 1..${plan.rungs.length}`);
  if (plan.forks.some((f, i) => i > 0 && f <= plan.forks[i - 1])) problems.push('forks must be ascending');
  if (problems.length) throw new ConfigError(`plan ${plan.name}:\n${problems.join('\n')}`);
  planGeometry(plan);
}
