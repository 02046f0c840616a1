/**
 * The training loop, with nanoGPT semantics: AdamW (decay on 2-D weights only), global-norm
 * gradient clipping, gradient accumulation, cosine schedule with warmup and floor, dropout,
 * and evaluation every `evalInterval` steps on a fixed set of validation batches.
 *
 * Every evaluation point records step, tokens seen, exact model FLOPs so far
 * (src/model/flops.ts), training wall-clock seconds (evaluation time excluded), the mean
 * training loss since the previous point, the validation loss and the learning rate.
 *
 * Runs live in the run store (src/runs): a completed run is returned without training; an
 * interrupted one resumes from its last checkpoint (weights, optimizer state, RNG state,
 * counters) and produces the same numbers as an uninterrupted run on the same backend.
 */
import fs from 'node:fs';
import { tf, initEngine, engineInfo } from '../engine/index.js';
import { canonicalJson, runId, type RunSpec, type Run, type RunStore, type MetricRow } from '../runs/index.js';
import { ConfigError } from '../config.js';
import { initParams, isDecayed } from '../model/params.js';
import { gptLoss } from '../model/gpt.js';
import { stepFlops } from '../model/flops.js';
import { loadTokens, type LoadedTokens } from '../data/index.js';
import { createRng, restoreRng, sampleBatch, fixedEvalBatches, type Rng } from '../data/batches.js';
import { AdamW } from './adamw.js';
import { trainStep, stepState } from './step.js';
import { learningRate } from './schedule.js';
import { packTensors, unpackTensors, type TensorIndexEntry } from './checkpoint.js';

export interface TrainHooks {
  /** called after every optimizer step */
  onStep?: (s: { step: number; total: number; loss: number; tokPerSec: number; lr: number }) => void;
  /** called after every evaluation point is stored */
  onEval?: (row: MetricRow) => void;
  /** stop early (e.g. SIGINT): the loop checkpoints and throws InterruptedError */
  signal?: AbortSignal;
  /** testing: stop (as if killed, without checkpointing) after this many steps of this process */
  crashAfterSteps?: number;
}

export class InterruptedError extends Error {
  constructor(public readonly step: number) {
    super(`training interrupted at step ${step}; the run resumes from its last checkpoint when started again`);
    this.name = 'InterruptedError';
  }
}

export interface TrainResult {
  run: Run;
  metrics: MetricRow[];
  /** true when the run was already complete and nothing was trained */
  cached: boolean;
}

interface ScalarState {
  step: number;
  tokens: number;
  flops: number;
  seconds: number;
  adamT: number;
  rng: ReturnType<Rng['state']>;
  trainLossSum: number;
  trainLossCount: number;
  tensorIndex: TensorIndexEntry[];
}

/** Seeds used for dropout: distinct per (run seed, step, micro-batch). */
function dropoutSeed(seed: number, step: number, micro: number): number {
  return (seed * 1_000_003 + step * 131 + micro) % 2147483647;
}

export async function trainRun(spec: RunSpec, store: RunStore, hooks: TrainHooks = {}): Promise<TrainResult> {
  const done = store.get(runId(spec));
  if (done?.isDone()) return { run: done, metrics: done.metrics(), cached: true };
  // read (and so validate) the data before anything is written for the run
  const data = loadTokens(spec.data);
  if (data.paddedVocabSize > spec.model.vocabSize) {
    throw new ConfigError(`tokenizer ${data.tokenizer.name} needs vocab ${data.paddedVocabSize}, model has ${spec.model.vocabSize}`);
  }
  const fork = spec.fork ? forkOrigin(spec, store) : undefined;
  await initEngine({ backend: spec.backend });
  const run = store.open(spec);
  try {
    return await trainLoop(spec, run, data, hooks, fork);
  } catch (e) {
    const resumable = e instanceof InterruptedError;
    run.setStatus({
      state: 'failed',
      error: resumable ? `${(e as Error).message}` : String((e as Error)?.stack ?? e),
    });
    throw e;
  }
}

/** Where a cooldown fork starts: its trunk's kept checkpoint at the fork step, and the trunk's rows up to it. */
interface ForkOrigin {
  checkpointDir: string;
  rows: MetricRow[];
}

/** Train fields a fork may change relative to its trunk (everything else must be equal). */
const FORK_FREE_TRAIN_FIELDS = ['steps', 'cooldownSteps', 'keepSteps', 'checkpointInterval', 'decaySteps'] as const;

/**
 * Check that `spec` is a cooldown fork of a trunk in the store (same model, data, seed, backend
 * and training recipe; the trunk has a complete checkpoint at the fork step) and return its
 * starting point. A clear ConfigError otherwise, before anything is written.
 */
export function forkOrigin(spec: RunSpec, store: RunStore): ForkOrigin {
  const f = spec.fork!;
  const parent = store.get(f.parent);
  if (!parent) throw new ConfigError(`fork of run ${f.parent} at step ${f.step}: the parent run is not in ${store.root} (train the trunk first)`);
  const strip = (t: RunSpec['train']) => {
    const o: Record<string, unknown> = { ...t };
    for (const k of FORK_FREE_TRAIN_FIELDS) delete o[k];
    return o;
  };
  const p = parent.spec;
  const same = (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b);
  const diff = [
    ...(['model', 'data', 'seed', 'backend'] as const).filter((k) => !same(p[k], spec[k])),
    ...(same(strip(p.train), strip(spec.train)) ? [] : ['train (beyond steps and cooldown)']),
  ];
  if (diff.length) throw new ConfigError(`fork of run ${f.parent} at step ${f.step}: it differs from its parent in ${diff.join(', ')}`);
  const ck = parent.checkpointAt(f.step);
  if (!ck) {
    throw new ConfigError(
      `fork of run ${f.parent} at step ${f.step}: the parent has no checkpoint at that step ` +
        `(kept checkpoints: ${parent.checkpoints().filter((c) => c.kept).map((c) => c.step).join(', ') || 'none'}; the trunk must list it in train.keepSteps and reach it)`,
    );
  }
  return { checkpointDir: ck.dir, rows: parent.metrics().filter((r) => r.step <= f.step) };
}

async function trainLoop(spec: RunSpec, run: Run, data: LoadedTokens, hooks: TrainHooks, fork?: ForkOrigin): Promise<TrainResult> {

  const { model: cfg, train: tc } = spec;
  const params = initParams(cfg, spec.seed);
  const opt = new AdamW(params, {
    beta1: tc.beta1, beta2: tc.beta2, eps: 1e-8, weightDecay: tc.weightDecay, decayed: isDecayed,
  });
  const tokensPerStep = tc.batchSize * cfg.blockSize * tc.gradAccum;
  const flopsPerStep = stepFlops(cfg, tokensPerStep).total;
  const evalSet = fixedEvalBatches(data.val, tc.evalBatches, tc.batchSize, cfg.blockSize, spec.seed + 7919);

  let st: Omit<ScalarState, 'tensorIndex'> = {
    step: 0, tokens: 0, flops: 0, seconds: 0, adamT: 0, rng: createRng(spec.seed).state(),
    trainLossSum: 0, trainLossCount: 0,
  };
  const ck = run.latestCheckpoint();
  if (ck) {
    st = restoreCheckpoint(ck.dir, params, opt);
    run.truncateMetricsAfter(st.step);
  } else if (fork) {
    // a cooldown fork starts where its trunk was at the fork step: weights, optimizer, RNG, counters, curve
    st = restoreCheckpoint(fork.checkpointDir, params, opt);
    run.truncateMetricsAfter(-1);
    run.appendMetrics(fork.rows);
  } else {
    run.truncateMetricsAfter(-1);
  }
  const rng = restoreRng(st.rng);
  run.setStatus({ state: 'running' });

  /** Mean validation CE over the fixed batches; with MoE also the tokens each expert got (summed over layers). */
  const evaluate = async (): Promise<{ valLoss: number; expertLoad?: number[] }> => {
    const ces: tf.Scalar[] = [];
    const loads: tf.Tensor1D[] = []; // per batch: [E], summed over layers, on the device
    for (const b of evalSet) {
      ces.push(
        tf.tidy(() => {
          const x = tf.tensor2d(b.x, [tc.batchSize, cfg.blockSize], 'int32');
          const y = tf.tensor2d(b.y, [tc.batchSize, cfg.blockSize], 'int32');
          const { ce, expertCounts } = gptLoss(params, x, y, cfg, { training: false, seed: 0 });
          if (expertCounts) loads.push(tf.keep(tf.sum(expertCounts, 0) as tf.Tensor1D));
          return ce;
        }),
      );
    }
    const total = tf.addN(ces);
    const loadSum = loads.length ? tf.addN(loads) : null;
    const sum = (await total.data())[0];
    const load = loadSum ? Array.from(await loadSum.data()) : undefined; // asynchronous: webgpu cannot read synchronously
    tf.dispose([total, ...ces, ...loads, ...(loadSum ? [loadSum] : [])]);
    return { valLoss: sum / evalSet.length, ...(load ? { expertLoad: load } : {}) };
  };

  const record = async (): Promise<void> => {
    const row: MetricRow = {
      step: st.step,
      tokens: st.tokens,
      flops: st.flops,
      seconds: st.seconds,
      trainLoss: st.trainLossCount > 0 ? st.trainLossSum / st.trainLossCount : null,
      lr: learningRate(st.step, tc),
      ...(await evaluate()),
    };
    run.appendMetrics([row]);
    st.trainLossSum = 0;
    st.trainLossCount = 0;
    hooks.onEval?.(row);
  };

  const checkpoint = async (): Promise<void> => {
    const { index, bytes } = await packTensors([
      ...[...params].map(([n, p]) => [`param/${n}`, p] as [string, tf.Tensor]),
      ...[...opt.m].map(([n, p]) => [`adam_m/${n}`, p] as [string, tf.Tensor]),
      ...[...opt.v].map(([n, p]) => [`adam_v/${n}`, p] as [string, tf.Tensor]),
    ]);
    const state: ScalarState = { ...st, adamT: opt.t, rng: rng.state(), tensorIndex: index };
    const keep = tc.keepSteps?.includes(st.step) ?? false;
    run.saveCheckpoint(st.step, { 'state.json': JSON.stringify(state), 'tensors.bin': bytes }, keep ? { keep } : {});
  };

  if (st.step === 0 && !ck) await record();
  let stepsThisProcess = 0;
  const state = stepState(params, opt, cfg, tc);
  while (st.step < tc.steps) {
    if (hooks.signal?.aborted) {
      await checkpoint();
      throw new InterruptedError(st.step);
    }
    const lr = learningRate(st.step, tc);
    const t0 = performance.now();
    const stepNow = st.step;
    const loss = await trainStep(
      state,
      lr,
      () => sampleBatch(data.train, tc.batchSize, cfg.blockSize, rng),
      (micro) => dropoutSeed(spec.seed, stepNow, micro),
    );
    const dt = (performance.now() - t0) / 1000;
    st.step += 1;
    st.tokens += tokensPerStep;
    st.flops += flopsPerStep;
    st.seconds += dt;
    st.trainLossSum += loss;
    st.trainLossCount += 1;
    stepsThisProcess += 1;
    hooks.onStep?.({ step: st.step, total: tc.steps, loss, tokPerSec: tokensPerStep / dt, lr });
    if (st.step % tc.evalInterval === 0 || st.step === tc.steps) await record();
    const ckEvery = tc.checkpointInterval;
    if (st.step < tc.steps && ((ckEvery > 0 && st.step % ckEvery === 0) || tc.keepSteps?.includes(st.step))) await checkpoint();
    if (hooks.crashAfterSteps !== undefined && stepsThisProcess >= hooks.crashAfterSteps) {
      disposeAll(params, opt);
      throw new Error(`simulated crash after ${stepsThisProcess} steps`);
    }
  }
  await checkpoint();
  run.setStatus({ state: 'done', finishedAt: new Date().toISOString(), engine: engineInfo() });
  disposeAll(params, opt);
  return { run, metrics: run.metrics(), cached: false };
}

function disposeAll(params: Map<string, tf.Variable>, opt: AdamW): void {
  for (const p of params.values()) p.dispose();
  opt.dispose();
}

function restoreCheckpoint(dir: string, params: Map<string, tf.Variable>, opt: AdamW): Omit<ScalarState, 'tensorIndex'> {
  const state = JSON.parse(fs.readFileSync(`${dir}/state.json`, 'utf8')) as ScalarState;
  const tensors = unpackTensors(state.tensorIndex, fs.readFileSync(`${dir}/tensors.bin`));
  const put = (prefix: string, m: Map<string, tf.Variable>) => {
    for (const [n, v] of m) {
      const t = tensors.get(`${prefix}/${n}`);
      if (!t) throw new Error(`checkpoint ${dir} lacks tensor ${prefix}/${n}`);
      tf.tidy(() => v.assign(tf.tensor(t.values, t.shape)));
    }
  };
  put('param', params);
  put('adam_m', opt.m);
  put('adam_v', opt.v);
  opt.t = state.adamT;
  const { tensorIndex: _ignored, ...rest } = state;
  return rest;
}
