/**
 * The training loop, with nanoGPT semantics: AdamW (decay on 2-D weights only), global-norm
 * gradient clipping, gradient accumulation, cosine schedule with warmup and floor, dropout,
 * and evaluation every `evalInterval` steps on a fixed set of validation batches (or, with
 * train.evalProtocol 'random', the paper's fresh random batches at every evaluation).
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
import os from 'node:os';
import path from 'node:path';
import { tf, initEngine, engineInfo } from '../engine/index.js';
import {
  canonicalJson,
  isImportedSpec,
  runId,
  inspectRun,
  repairRun,
  metricsCover,
  completenessProblems,
  quarantineCheckpoint,
  formatProblems,
  CheckpointCorruptError,
  ClaimLostError,
  ClaimWaitAborted,
  RunStore as RunStoreCtor,
  type RunSpec,
  type Run,
  type RunStore,
  type MetricRow,
  type Claim,
  type AcquireOptions,
  type ClaimHolder,
} from '../runs/index.js';
import type { Divergence } from '../runs/index.js';
import { ConfigError } from '../config.js';
import { decayedParams, initParams } from '../model/params.js';
import { gptLoss } from '../model/gpt.js';
import { stepFlops } from '../model/flops.js';
import { loadTokens, type LoadedTokens } from '../data/index.js';
import { createRng, restoreRng, sampleBatch, fixedEvalBatches, type Rng } from '../data/batches.js';
import { AdamW } from './adamw.js';
import { trainStep, stepState } from './step.js';
import { learningRate } from './schedule.js';
import { packTensors, unpackTensors, type TensorIndexEntry } from './checkpoint.js';
import { checkSpecLimits } from './limits.js';
import { currentProvenance } from './provenance.js';
import { log } from '../log.js';

export interface TrainHooks {
  /** called after every optimizer step */
  onStep?: (s: { step: number; total: number; loss: number; tokPerSec: number; lr: number }) => void;
  /** called after every evaluation point is stored */
  onEval?: (row: MetricRow) => void;
  /**
   * stop early (SIGINT, SIGTERM, a parent gone): the loop checkpoints at the next step
   * boundary and throws InterruptedError; abort(reason) with the signal's name ('SIGINT',
   * 'SIGTERM') and the error carries it (exit code 130 / 143)
   */
  signal?: AbortSignal;
  /** another live process holds the run's claim: this one waits (called once per holder) */
  onWait?: (holder: ClaimHolder) => void;
  /** claim timing (heartbeat, staleness); tests shorten them */
  claim?: Pick<AcquireOptions, 'staleAfterMs' | 'heartbeatMs' | 'takeoverStaleMs' | 'pollMs' | 'onTakeover'>;
  /** testing: stop (as if killed, without checkpointing) after this many steps of this process */
  crashAfterSteps?: number;
  /** damage found in the stored run and what was done about it (default: a line on stderr) */
  onNotice?: (msg: string) => void;
  /** the stale check's replay: return after this step's metric row and probe are stored (no checkpoints) */
  stopAtStep?: number;
}

/** Steps whose per-step training loss is stored in status.probe for the stale check's replay. */
export const PROBE_STEPS = 5;

export class InterruptedError extends Error {
  constructor(
    public readonly step: number,
    /** what stopped it: 'SIGINT', 'SIGTERM', 'disconnect' (the parent process is gone), ... */
    public readonly reason: string = 'SIGINT',
    message?: string,
  ) {
    super(
      message ??
        `training interrupted (${reason}) at step ${step} with a checkpoint; the run resumes from it when started again`,
    );
    this.name = 'InterruptedError';
  }

  /** Conventional exit code: 128 + the signal number (SIGINT 130, SIGTERM 143, SIGHUP 129). */
  get exitCode(): number {
    return SIGNAL_EXIT[this.reason] ?? 130;
  }
}

const SIGNAL_EXIT: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143, disconnect: 129 };

/** The reason an abort signal carries when it is a name ('SIGINT', 'SIGTERM', 'disconnect'); 'SIGINT' otherwise. */
export function stopReason(signal: AbortSignal | undefined): string {
  return typeof signal?.reason === 'string' ? signal.reason : 'SIGINT';
}

/** A loss above this multiple of the initial loss counts as exploding (issue 10). */
export const DIVERGENCE_FACTOR = 2;

export function divergenceMessage(d: Divergence): string {
  const what = d.where === 'weights' ? 'non-finite weights' : `${d.where} loss ${d.loss}`;
  const why =
    Number.isFinite(d.loss) && d.where !== 'weights'
      ? ` > ${DIVERGENCE_FACTOR} x the initial loss ${d.initialLoss.toFixed(4)}`
      : '';
  return (
    `diverged at step ${d.step}: ${what}${why} at learning rate ${d.lr}; ` +
    (d.checkpointStep === null ? 'no checkpoint kept' : `last finite checkpoint at step ${d.checkpointStep} kept`) +
    '; lower the learning rate (train.lr in --config) or raise warmup'
  );
}

class DivergedSignal extends Error {
  constructor(readonly d: Omit<Divergence, 'checkpointStep'>) {
    super('diverged');
  }
}

export interface TrainResult {
  run: Run;
  metrics: MetricRow[];
  /** true when the run was already complete and nothing was trained */
  cached: boolean;
  /** set when the run diverged (state 'diverged'): a result, not a usable curve */
  diverged?: Divergence;
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
  /** per-step training losses of steps 1..PROBE_STEPS (absent in checkpoints written before it existed) */
  probe?: number[];
  tensorIndex: TensorIndexEntry[];
}

/**
 * Seed of the validation batches of the evaluation at `step` under evalProtocol 'random':
 * a function of (run seed, step) only, so a resumed run draws the same batches.
 */
export function randomEvalSeed(seed: number, step: number): number {
  return seed * 1_000_003 + step * 7919 + 104729;
}

/** Seeds used for dropout: distinct per (run seed, step, micro-batch). */
function dropoutSeed(seed: number, step: number, micro: number): number {
  return (seed * 1_000_003 + step * 131 + micro) % 2147483647;
}

/** A stored diverged run as a cached result (a result, not a failure); undefined otherwise. */
function diverged(store: RunStore, id: string): TrainResult | undefined {
  let run: Run | undefined;
  let st: ReturnType<Run['status']>;
  try {
    run = store.get(id);
    if (!run) return undefined;
    st = run.status();
  } catch {
    return undefined; // a damaged spec or status: inspectRun/repairRun deal with it
  }
  if (st.state === 'diverged') {
    const d = st.divergence as Divergence;
    // JSON has no NaN: a non-finite loss is stored as null
    return {
      run,
      metrics: run.metrics(),
      cached: true,
      diverged: { ...d, loss: typeof d.loss === 'number' ? d.loss : NaN },
    };
  }
  return undefined;
}

export async function trainRun(spec: RunSpec, store: RunStore, hooks: TrainHooks = {}): Promise<TrainResult> {
  const id = runId(spec);
  const notice = hooks.onNotice ?? ((m: string) => log.info(`[ceg] ${m}`));
  // a done run is served only when its metrics are complete and verified (src/runs/verify.ts);
  // a diverged run is a result too
  const found = inspectRun(store, id);
  if (found.done) return { run: found.done, metrics: found.done.metrics(), cached: true };
  const prior = diverged(store, id);
  if (prior) return prior;
  checkSpecLimits(spec);
  // read (and so validate) the data before anything is written for the run
  const data = loadTokens(spec.data);
  if (data.paddedVocabSize > spec.model.vocabSize) {
    throw new ConfigError(
      `tokenizer ${data.tokenizer.name} needs vocab ${data.paddedVocabSize}, model has ${spec.model.vocabSize}`,
    );
  }
  checkContextFitsData(spec, data);
  // a fork's starting point is read (and checked) before anything is written; the parent is only read
  const fork = spec.fork ? forkOrigin(spec, store) : undefined;
  await initEngine({ backend: spec.backend });
  // one writer per run (issue 18): claim it before anything is written; wait for a live holder
  let claim: Claim;
  try {
    claim = await store.claim(id, { ...hooks.claim, signal: hooks.signal, onWait: hooks.onWait });
  } catch (e) {
    if (e instanceof ClaimWaitAborted) {
      const why = stopReason(hooks.signal);
      throw new InterruptedError(
        0,
        why,
        `stopped (${why}) while waiting for run ${id}, which another process is training; nothing written`,
      );
    }
    throw e;
  }
  const releaseOnExit = () => claim.release(); // a hard exit (second Ctrl-C) frees the claim too
  process.once('exit', releaseOnExit);
  try {
    // the previous holder may have finished it while this process waited
    const now = inspectRun(store, id);
    if (now.done) return { run: now.done, metrics: now.done.metrics(), cached: true };
    const meanwhile = diverged(store, id);
    if (meanwhile) return meanwhile;
    const damage = now.check?.problems ?? [];
    if (damage.length) {
      notice(`run ${id} (${spec.innovation} ${spec.scale} seed ${spec.seed}) is damaged: ${formatProblems(damage)}`);
      for (const a of repairRun(store, now.check!, { spec })) notice(`run ${id}: ${a}`);
      const again = inspectRun(store, id);
      if (again.done) return { run: again.done, metrics: again.done.metrics(), cached: true };
    }
    const run = store.open(spec);
    claim.startHeartbeat();
    try {
      return await trainLoop(spec, run, data, hooks, claim, fork);
    } catch (e) {
      if (e instanceof ClaimLostError) throw e; // not ours any more: write nothing
      const resumable = e instanceof InterruptedError;
      try {
        run.setStatus({
          state: 'failed',
          error: resumable ? `${(e as Error).message}` : String((e as Error)?.stack ?? e),
        });
      } catch {
        // the store cannot be written (full disk, read-only): report the original error; the run stays resumable
      }
      throw e;
    }
  } finally {
    process.removeListener('exit', releaseOnExit);
    claim.release();
  }
}

/** Where a cooldown fork starts: its trunk's kept checkpoint at the fork step, and the trunk's rows up to it. */
interface ForkOrigin {
  checkpointDir: string;
  /** the checkpoint's files, read and verified against its manifest (sizes, sha256) */
  files: Record<string, Buffer>;
  rows: MetricRow[];
  /** code fingerprints that trained the trunk up to the fork point (the fork's provenance history starts with them) */
  trainedWith: string[];
  /** the trunk's stored probe (per-step training losses), for checkpoints saved before probes were kept in them */
  probe?: number[];
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
  if (!parent)
    throw new ConfigError(
      `fork of run ${f.parent} at step ${f.step}: the parent run is not in ${store.root} (train the trunk first)`,
    );
  const strip = (t: RunSpec['train']) => {
    const o: Record<string, unknown> = { ...t };
    for (const k of FORK_FREE_TRAIN_FIELDS) delete o[k];
    return o;
  };
  const p = parent.spec;
  if (isImportedSpec(p))
    throw new ConfigError(
      `fork of run ${f.parent} at step ${f.step}: the parent is an imported run (no checkpoints to start from)`,
    );
  const same = (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b);
  const diff = [
    ...(['model', 'data', 'seed', 'backend'] as const).filter((k) => !same(p[k], spec[k])),
    ...(same(strip(p.train), strip(spec.train)) ? [] : ['train (beyond steps and cooldown)']),
  ];
  if (diff.length)
    throw new ConfigError(
      `fork of run ${f.parent} at step ${f.step}: it differs from its parent in ${diff.join(', ')}`,
    );
  const ck = parent.checkpointAt(f.step);
  if (!ck) {
    throw new ConfigError(
      `fork of run ${f.parent} at step ${f.step}: the parent has no checkpoint at that step ` +
        `(kept checkpoints: ${
          parent
            .checkpoints()
            .filter((c) => c.kept)
            .map((c) => c.step)
            .join(', ') || 'none'
        }; the trunk must list it in train.keepSteps and reach it)`,
    );
  }
  if (!metricsCover(parent, f.step))
    throw new ConfigError(
      `fork of run ${f.parent} at step ${f.step}: the parent's metrics lack evaluation rows up to that step (check it with ceg runs --check)`,
    );
  let files: Record<string, Buffer>;
  try {
    files = parent.loadCheckpoint(ck)!.files;
  } catch (e) {
    if (!(e instanceof CheckpointCorruptError)) throw e;
    throw new CheckpointCorruptError(
      ck.dir,
      `${e.reason}; it is the fork point of this cooldown fork: check the trunk ${f.parent} with ceg runs --check --repair and train it again`,
    );
  }
  let pst;
  try {
    pst = parent.status();
  } catch {
    pst = undefined; // a damaged status: the fork's provenance starts with this code
  }
  const trainedWith = pst?.trainedWith ?? (pst?.provenance ? [pst.provenance.fingerprint] : []);
  return {
    checkpointDir: ck.dir,
    files,
    rows: parent.metrics().filter((r) => r.step <= f.step),
    trainedWith,
    probe: pst?.probe?.trainLosses,
  };
}

/** The context must fit in the data: one window of blockSize + 1 tokens from each split. */
export function checkContextFitsData(
  spec: RunSpec,
  data: { train: { readonly length: number }; val: { readonly length: number }; dir: string },
): void {
  for (const [split, arr] of [
    ['train', data.train],
    ['val', data.val],
  ] as const) {
    if (arr.length < spec.model.blockSize + 1)
      throw new ConfigError(
        `model.blockSize ${spec.model.blockSize} is longer than the data: the ${split} split (${data.dir}) has ${arr.length} tokens, ` +
          `so the context can be at most ${arr.length - 1}`,
      );
  }
}

/**
 * Where to resume: the newest checkpoint that matches its manifest (sizes, sha256), restores
 * cleanly, and whose step the metrics cover. A corrupt one is moved to the run's quarantine;
 * one ahead of the metrics is removed (the run recomputes it), unless it is kept (a fork point:
 * left in place, saved again when the run reaches its step). Each is said via `notice`.
 * Restores into params/opt only once a checkpoint is fully read and checked; undefined: from step 0.
 */
function restoreNewestGood(
  run: Run,
  params: Map<string, tf.Variable>,
  opt: AdamW,
  notice: (m: string) => void,
): Omit<ScalarState, 'tensorIndex'> | undefined {
  const refs = run.checkpoints().reverse();
  for (const [i, ref] of refs.entries()) {
    const name = `ckpt-${ref.step}`;
    const next = refs[i + 1] ? `falling back to ckpt-${refs[i + 1].step}` : 'training from step 0';
    let st: Omit<ScalarState, 'tensorIndex'>;
    try {
      const loaded = run.loadCheckpoint(ref)!;
      if (!metricsCover(run, ref.step) && ref.kept) {
        // a kept checkpoint (a cooldown fork point) stays: the run saves this step again when it gets there
        notice(
          `run ${run.id}: ${name} (kept) is ahead of the metrics (evaluation rows up to step ${ref.step} are missing): not resumed from; ${next}`,
        );
        continue;
      }
      if (!metricsCover(run, ref.step)) {
        notice(
          `run ${run.id}: ${name} is ahead of the metrics (evaluation rows up to step ${ref.step} are missing): removed; ${next}`,
        );
        fs.renameSync(ref.dir, `${ref.dir}.del`); // atomic: never a half checkpoint under a valid name
        fs.rmSync(`${ref.dir}.del`, { recursive: true, force: true });
        continue;
      }
      st = restoreCheckpoint(ref.dir, loaded.files, params, opt);
    } catch (e) {
      if (!(e instanceof CheckpointCorruptError)) throw e;
      const to = quarantineCheckpoint(run, ref);
      notice(`run ${run.id}: ${name} is corrupt (${e.reason}): moved to ${to}; ${next}`);
      continue;
    }
    if (i > 0) notice(`run ${run.id}: resuming from ${name}`);
    return st;
  }
  return undefined;
}

/** Yield to the event loop (signals, IPC disconnects and timers are only seen there). */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** True when every float32 in `bytes` is finite. */
function allFinite(bytes: Uint8Array): boolean {
  const f = new Float32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / 4));
  for (let i = 0; i < f.length; i++) if (!Number.isFinite(f[i])) return false;
  return true;
}

async function trainLoop(
  spec: RunSpec,
  run: Run,
  data: LoadedTokens,
  hooks: TrainHooks,
  claim: Claim,
  fork?: ForkOrigin,
): Promise<TrainResult> {
  const { model: cfg, train: tc } = spec;
  const params = initParams(cfg, spec.seed);
  const opt = new AdamW(params, {
    beta1: tc.beta1,
    beta2: tc.beta2,
    eps: 1e-8,
    weightDecay: tc.weightDecay,
    decayed: decayedParams(cfg),
  });
  const tokensPerStep = tc.batchSize * cfg.blockSize * tc.gradAccum;
  const flopsPerStep = stepFlops(cfg, tokensPerStep).total;
  const evalSet = fixedEvalBatches(data.val, tc.evalBatches, tc.batchSize, cfg.blockSize, spec.seed + 7919);
  // the paper's protocol: fresh batches at every evaluation, from a stream seeded by (seed, step)
  const evalSetAt = (step: number) =>
    tc.evalProtocol === 'random'
      ? fixedEvalBatches(data.val, tc.evalBatches, tc.batchSize, cfg.blockSize, randomEvalSeed(spec.seed, step))
      : evalSet;

  let st: Omit<ScalarState, 'tensorIndex'> = {
    step: 0,
    tokens: 0,
    flops: 0,
    seconds: 0,
    adamT: 0,
    rng: createRng(spec.seed).state(),
    trainLossSum: 0,
    trainLossCount: 0,
  };
  const restored = restoreNewestGood(run, params, opt, hooks.onNotice ?? ((m: string) => log.info(`[ceg] ${m}`)));
  const ck = restored !== undefined;
  if (restored) {
    st = restored;
    run.truncateMetricsAfter(st.step);
  } else if (fork) {
    // a cooldown fork starts where its trunk was at the fork step: weights, optimizer, RNG, counters, curve
    st = restoreCheckpoint(fork.checkpointDir, fork.files, params, opt);
    claim.check();
    run.truncateMetricsAfter(-1);
    run.appendMetrics(fork.rows);
  } else {
    run.truncateMetricsAfter(-1);
  }
  const rng = restoreRng(st.rng);
  const provenance = currentProvenance(spec.backend);
  const prevStatus = run.status();
  // a fresh fork continues its trunk: the trunk's code history and probe are the fork's first steps'
  const startedFork = !ck && fork !== undefined;
  const trainedWith = [...(ck ? (prevStatus.trainedWith ?? []) : startedFork ? fork.trainedWith : [])];
  if (trainedWith.at(-1) !== provenance.fingerprint) trainedWith.push(provenance.fingerprint);
  // a restart from step 0 recomputes the probe; a resume keeps the one stored (or in the checkpoint)
  const probe: number[] = ck
    ? (st.probe ?? prevStatus.probe?.trainLosses.slice(0, st.step) ?? [])
    : startedFork
      ? (st.probe ?? fork.probe?.slice(0, st.step) ?? [])
      : [];
  const probeNow =
    startedFork && probe.length > 0 ? { probe: { trainLosses: [...probe] } } : ck ? {} : { probe: undefined };
  claim.check();
  run.setStatus({ state: 'running', provenance, trainedWith, ...probeNow });
  const probeSteps = Math.min(PROBE_STEPS, tc.steps);
  // divergence reference: the validation loss at step 0 (stored, so a resumed run uses the same)
  let initialLoss = run.metrics().find((m) => m.step === 0)?.valLoss ?? NaN;
  const diverge = (step: number, loss: number, where: Divergence['where']): never => {
    throw new DivergedSignal({
      step,
      loss,
      lr: learningRate(Math.max(0, step - 1), tc),
      initialLoss,
      limit: DIVERGENCE_FACTOR * initialLoss,
      where,
    });
  };
  const checkLoss = (step: number, loss: number, where: 'train' | 'val'): void => {
    if (!Number.isFinite(loss) || (Number.isFinite(initialLoss) && loss > DIVERGENCE_FACTOR * initialLoss))
      diverge(step, loss, where);
  };

  /** Mean validation CE over the fixed batches; with MoE also the tokens each expert got (summed over layers). */
  const evaluate = async (step: number): Promise<{ valLoss: number; expertLoad?: number[] }> => {
    const ces: tf.Scalar[] = [];
    const loads: tf.Tensor1D[] = []; // per batch: [E], summed over layers, on the device
    const batches = evalSetAt(step);
    for (const b of batches) {
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
    return { valLoss: sum / batches.length, ...(load ? { expertLoad: load } : {}) };
  };

  const record = async (): Promise<void> => {
    const row: MetricRow = {
      step: st.step,
      tokens: st.tokens,
      flops: st.flops,
      seconds: st.seconds,
      trainLoss: st.trainLossCount > 0 ? st.trainLossSum / st.trainLossCount : null,
      lr: learningRate(st.step, tc),
      ...(await evaluate(st.step)),
    };
    claim.check();
    run.appendMetrics([row]);
    st.trainLossSum = 0;
    st.trainLossCount = 0;
    hooks.onEval?.(row);
    if (st.step === 0 && typeof row.valLoss === 'number') initialLoss = row.valLoss;
    if (typeof row.valLoss === 'number') checkLoss(st.step, row.valLoss, 'val');
  };

  const checkpoint = async (): Promise<void> => {
    const { index, bytes } = await packTensors([
      ...[...params].map(([n, p]) => [`param/${n}`, p] as [string, tf.Tensor]),
      ...[...opt.m].map(([n, p]) => [`adam_m/${n}`, p] as [string, tf.Tensor]),
      ...[...opt.v].map(([n, p]) => [`adam_v/${n}`, p] as [string, tf.Tensor]),
    ]);
    // never store non-finite weights: the last checkpoint kept must be a finite one
    if (!allFinite(bytes)) diverge(st.step, NaN, 'weights');
    const state: ScalarState = { ...st, adamT: opt.t, rng: rng.state(), probe: [...probe], tensorIndex: index };
    claim.check();
    const keep = tc.keepSteps?.includes(st.step) ?? false;
    run.saveCheckpoint(st.step, { 'state.json': JSON.stringify(state), 'tensors.bin': bytes }, keep ? { keep } : {});
  };

  try {
    if (st.step === 0 && !ck) await record();
    if (hooks.stopAtStep !== undefined && hooks.stopAtStep <= st.step) {
      disposeAll(params, opt);
      return { run, metrics: run.metrics(), cached: false };
    }
    return await steps();
  } catch (e) {
    if (!(e instanceof DivergedSignal)) throw e;
    const d: Divergence = { ...e.d, checkpointStep: run.latestCheckpoint()?.step ?? null };
    claim.check();
    run.setStatus({ state: 'diverged', error: divergenceMessage(d), divergence: d, engine: engineInfo() });
    disposeAll(params, opt);
    return { run, metrics: run.metrics(), cached: false, diverged: d };
  }

  async function steps(): Promise<TrainResult> {
    let stepsThisProcess = 0;
    const state = stepState(params, opt, cfg, tc);
    while (st.step < tc.steps) {
      // signals, a parent's death (IPC disconnect) and the claim's heartbeat timer are seen only here
      await yieldToEventLoop();
      claim.beatIfDue();
      if (hooks.signal?.aborted) {
        await checkpoint();
        throw new InterruptedError(st.step, stopReason(hooks.signal));
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
      if (st.step <= probeSteps && probe.length === st.step - 1) {
        probe.push(loss);
        if (st.step === probeSteps) run.setStatus({ state: 'running', probe: { trainLosses: [...probe] } });
      }
      hooks.onStep?.({ step: st.step, total: tc.steps, loss, tokPerSec: tokensPerStep / dt, lr });
      checkLoss(st.step, loss, 'train');
      if (st.step % tc.evalInterval === 0 || st.step === tc.steps) await record();
      if (hooks.stopAtStep !== undefined && st.step >= hooks.stopAtStep) break;
      const ckEvery = tc.checkpointInterval;
      if (st.step < tc.steps && ((ckEvery > 0 && st.step % ckEvery === 0) || tc.keepSteps?.includes(st.step)))
        await checkpoint();
      if (hooks.crashAfterSteps !== undefined && stepsThisProcess >= hooks.crashAfterSteps) {
        disposeAll(params, opt);
        throw new Error(`simulated crash after ${stepsThisProcess} steps`);
      }
    }
    if (hooks.stopAtStep !== undefined) {
      disposeAll(params, opt);
      return { run, metrics: run.metrics(), cached: false };
    }
    await checkpoint();
    const incomplete = completenessProblems(run);
    if (incomplete.length)
      throw new Error(
        `run ${run.id} finished training but its metrics are incomplete (${formatProblems(incomplete)}); not marking it done`,
      );
    claim.check();
    run.setStatus({ state: 'done', finishedAt: new Date().toISOString(), engine: engineInfo() });
    disposeAll(params, opt);
    return { run, metrics: run.metrics(), cached: false };
  }
}

/**
 * Train the first `steps` steps of `spec` with the current code, in a throw-away store, and
 * return what the trainer stored: the metric rows up to that step and the probe (per-step
 * training losses). The stale check (./stale.ts) compares them with a stored run's.
 */
export async function replayRun(spec: RunSpec, steps: number): Promise<{ metrics: MetricRow[]; probe: number[] }> {
  const data = loadTokens(spec.data);
  await initEngine({ backend: spec.backend });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ceg-replay-'));
  try {
    const scratch = new RunStoreCtor(root);
    const claim = await scratch.claim(runId(spec));
    try {
      const run = scratch.open(spec);
      const { metrics } = await trainLoop(spec, run, data, { stopAtStep: steps }, claim);
      return { metrics, probe: run.status().probe?.trainLosses ?? [] };
    } finally {
      claim.release();
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

function disposeAll(params: Map<string, tf.Variable>, opt: AdamW): void {
  for (const p of params.values()) p.dispose();
  opt.dispose();
}

/**
 * Restore params and optimizer from a checkpoint's (verified) files. Everything is parsed and
 * checked (every tensor present with the variable's shape) before the first assignment, so a
 * bad checkpoint (CheckpointCorruptError) leaves params and optimizer untouched.
 */
function restoreCheckpoint(
  dir: string,
  files: Record<string, Buffer>,
  params: Map<string, tf.Variable>,
  opt: AdamW,
): Omit<ScalarState, 'tensorIndex'> {
  let state: ScalarState;
  let tensors: ReturnType<typeof unpackTensors>;
  const todo: [tf.Variable, { shape: number[]; values: Float32Array }][] = [];
  try {
    if (!files['state.json'] || !files['tensors.bin']) throw new Error('state.json or tensors.bin is missing');
    state = JSON.parse(files['state.json'].toString('utf8')) as ScalarState;
    tensors = unpackTensors(state.tensorIndex, files['tensors.bin']);
    for (const [prefix, m] of [
      ['param', params],
      ['adam_m', opt.m],
      ['adam_v', opt.v],
    ] as const) {
      for (const [n, v] of m) {
        const t = tensors.get(`${prefix}/${n}`);
        if (!t) throw new Error(`it lacks tensor ${prefix}/${n}`);
        if (t.shape.join() !== v.shape.join())
          throw new Error(`tensor ${prefix}/${n} has shape [${t.shape}], the model [${v.shape}]`);
        todo.push([v, t]);
      }
    }
    if (!Number.isSafeInteger(state.step) || !Number.isSafeInteger(state.adamT))
      throw new Error('state.json has no integer step / adamT');
  } catch (e) {
    throw new CheckpointCorruptError(dir, (e as Error).message);
  }
  for (const [v, t] of todo) tf.tidy(() => v.assign(tf.tensor(t.values, t.shape)));
  opt.t = state.adamT;
  const { tensorIndex: _ignored, ...rest } = state;
  return rest;
}
