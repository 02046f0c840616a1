/**
 * From names to runs: the run spec of (innovation, scale, seed, backend), and sweeps that
 * train every requested variant × seed, skipping runs the store already completed.
 */
import { resolveScale } from '../scales.js';
import { applyInnovations, getInnovation } from '../innovations.js';
import {
  ConfigError,
  parseConfigOverrides,
  parseModelConfig,
  parseTrainConfig,
  TOKENIZERS,
  type DataConfig,
} from '../config.js';
import { getTokenizer } from '../data/index.js';
import type { BackendName } from '../engine/index.js';
import { runId, isVerifiedDone, type RunSpec, type RunStore, type RunRecord } from '../runs/index.js';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../paths.js';
import { logs } from '../log.js';
import { createProgress, type ProgressStream, type Progress } from '../progress.js';
import { boardFeed, createProgressBoard, progressOverIpc, type ProgressBoard } from './progress-lines.js';
import {
  trainRun,
  checkContextFitsData,
  InterruptedError,
  divergenceMessage,
  stopReason,
  type TrainHooks,
} from './trainer.js';
import type { ChildProcess } from 'node:child_process';
import { checkEpochs } from './epochs.js';
import { checkSpecLimits } from './limits.js';
import { loadTokens } from '../data/index.js';
import { checkRun } from './stale.js';
import { runTimingKey } from './timing.js';
import { readEnv } from '../env.js';

/** Exit code of `ceg train` for a run that diverged (a result, recorded in the store). */
export const EXIT_DIVERGED = 3;

/** Ways to depart from a named scale: other data, another tokenizer, config overrides. */
export interface SpecOptions {
  /** a folder with nanoGPT-format train.bin / val.bin (e.g. OpenWebText from nanoGPT's prepare.py) */
  dataDir?: string;
  /** tokenizer of the data (default: the scale's; 'gpt2' with dataDir) */
  tokenizer?: string;
  /** partial model / train configs merged over the scale's (validated: unknown keys are errors) */
  overrides?: { model?: Record<string, unknown>; train?: Record<string, unknown> };
}

export function runSpec(
  innovation: string,
  scale: string,
  seed: number,
  backend: BackendName,
  opts: SpecOptions = {},
): RunSpec {
  getInnovation(innovation); // validates the id
  const s = resolveScale(scale);
  const tokenizer = opts.tokenizer ?? (opts.dataDir ? 'gpt2' : s.data.tokenizer);
  if (!(TOKENIZERS as readonly string[]).includes(tokenizer))
    throw new ConfigError(`unknown tokenizer "${tokenizer}"; valid: ${TOKENIZERS.join(', ')}`);
  const data: DataConfig = opts.dataDir
    ? { corpus: 'tokens', tokenizer: tokenizer as DataConfig['tokenizer'], dir: path.resolve(opts.dataDir) }
    : { ...s.data, tokenizer: tokenizer as DataConfig['tokenizer'] };
  const over = parseConfigOverrides(opts.overrides ?? {});
  const base = mergeOverrides({ ...s.model, vocabSize: getTokenizer(tokenizer).paddedVocabSize }, over.model);
  const model = parseModelConfig(applyInnovations(parseModelConfig(base), [innovation]));
  // numerics options: an explicit 'auto' is the default, so it is dropped (the run id stays the one without it)
  if (model.moeImpl === 'auto') delete model.moeImpl;
  if (model.sparseSelect === 'auto') delete model.sparseSelect;
  const train = parseTrainConfig(mergeOverrides(s.train, over.train));
  return { model, train, data, seed, backend, innovation, scale };
}

/** `over` merged over `base`; nested sections (model.moe, model.sparse) are merged key by key. */
function mergeOverrides<T extends object>(base: T, over: Record<string, unknown> | undefined): T {
  const out = { ...base } as Record<string, unknown>;
  for (const [k, v] of Object.entries(over ?? {})) {
    const b: unknown = out[k];
    out[k] = b && typeof b === 'object' && v && typeof v === 'object' ? { ...b, ...v } : v;
  }
  return out as T;
}

/**
 * `ceg train` flags that reproduce SpecOptions (the SLURM job script, ./slurm.ts); `configFile` holds
 * o.overrides (written by the caller).
 */
export function specOptionArgs(o: SpecOptions, configFile?: string): string[] {
  return [
    // absolute: the child runs in the project root, not in the caller's working directory
    ...(o.dataDir ? ['--data', path.resolve(o.dataDir)] : []),
    ...(o.tokenizer ? ['--tokenizer', o.tokenizer] : []),
    ...(configFile ? ['--config', path.resolve(configFile)] : []),
  ];
}

export interface SweepOptions {
  scale: string;
  innovations: readonly string[];
  seeds: readonly number[];
  backend: BackendName;
  store: RunStore;
  /** progress output (default stderr); null for silence */
  stream?: ProgressStream | null;
  signal?: AbortSignal;
  /** departures from the named scale (same for every run of the sweep) */
  specOptions?: SpecOptions;
  /**
   * runs trained at once, each in its own process (default 1). Two processes use both cores
   * of a 2-core machine far better than one process with wasm threads.
   */
  jobs?: number;
  /** train even where a run would repeat its corpus more than MAX_EPOCHS times (src/train/epochs.ts) */
  allowSmallCorpus?: boolean;
  /**
   * who trains the runs still missing (default: this machine, `jobs` processes); the SLURM
   * executor (src/train/slurm.ts) submits them as one job array into the same store
   */
  executor?: Executor;
  /**
   * keep completed runs that the current code no longer reproduces (./stale.ts) instead of
   * retraining them; their records say stale: true (default false: stale runs are moved to
   * <store>/.stale/ and trained again)
   */
  allowStale?: boolean;
}

/** Trains the runs a sweep still misses (`pending`: none finished in the store) into `o.store`. */
export interface Executor {
  readonly name: string;
  /**
   * `args`: how a task names its run to `ceg train`: 'named' (innovation, scale, seed and the
   * sweep's flags; ensureRuns) or 'spec-file' (`--run ID --spec FILE`: explicit specs such as
   * a study's trunks and forks; ensureSpecs)
   */
  trainMany(pending: RunSpec[], o: SweepOptions, args?: 'named' | 'spec-file'): Promise<void>;
}

/** Child trainers failed; each printed its own message (the sweep adds one line, no stack trace). */
/** Where a sweep's progress goes: o.stream; by default stderr where the log level shows info (not in tests). */
export function progressStream(o: Pick<SweepOptions, 'stream'>): ProgressStream | null {
  if (o.stream !== undefined) return o.stream;
  return logs('info') ? process.stderr : null;
}

export class SweepError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SweepError';
  }
}

/**
 * Train specs in `jobs` child processes (./child.ts), at most `jobs` at a time. Each child gets
 * its spec exactly as this process validated it, in a private temporary file (outside the store,
 * so this process writes nothing into the store itself and the child, which claims the run before
 * it writes, is its only writer).
 */
async function trainInChildren(specs: RunSpec[], o: SweepOptions, trainedHere: Set<string>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ceg-specs-'));
  try {
    const fileOf = (sp: RunSpec) => path.join(dir, `${runId(sp)}.json`);
    for (const sp of specs) fs.writeFileSync(fileOf(sp), JSON.stringify(sp));
    await trainChildQueue(specs, o, (sp) => childArgs(fileOf(sp), o), trainedHere);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The entry point of a child trainer (`node --import tsx CHILD_ENTRY ...childArgs`). */
const CHILD_ENTRY = fileURLToPath(new URL('./child.ts', import.meta.url));

/** The arguments of src/train/child.ts for the spec in `specFile`. */
function childArgs(specFile: string, o: SweepOptions): string[] {
  return [
    specFile,
    path.resolve(o.store.root),
    ...(o.allowSmallCorpus ? ['--allow-small-corpus'] : []),
    ...(o.allowStale ? ['--allow-stale'] : []),
  ];
}

async function trainChildQueue(
  specs: RunSpec[],
  o: SweepOptions,
  trainArgs: (spec: RunSpec) => string[],
  trainedHere: Set<string>,
): Promise<void> {
  const queue = [...specs];
  const failures: string[] = [];
  const all = o.innovations.length * o.seeds.length;
  const indexOf = (sp: RunSpec) => o.innovations.indexOf(sp.innovation) * o.seeds.length + o.seeds.indexOf(sp.seed) + 1;
  const live = new Set<ChildProcess>();
  // a stop request reaches every child (they checkpoint at their next step and exit); the
  // children run in their own process group, so a terminal's Ctrl-C reaches them only this way,
  // once
  const forward = () => {
    for (const c of live)
      c.kill(
        typeof o.signal?.reason === 'string' && o.signal.reason.startsWith('SIG')
          ? (o.signal.reason as NodeJS.Signals)
          : 'SIGTERM',
      );
  };
  o.signal?.addEventListener('abort', forward, { once: true });
  // an exit of this process (a second Ctrl-C) takes the children with it: never an orphan;
  // a SIGKILL of this process closes their IPC channel, which they watch (./child.ts)
  const killAll = () => {
    for (const c of live) c.kill('SIGKILL');
  };
  process.on('exit', killAll);
  // children send their progress here (IPC); one line per active run, redrawn in place on a TTY
  const board: ProgressBoard | null =
    o.stream === null ? null : createProgressBoard({ stream: o.stream ?? process.stderr });
  const ttyBoard = o.stream !== null && (o.stream ?? process.stderr).isTTY === true;
  const worker = async (): Promise<void> => {
    for (let spec = queue.shift(); spec; spec = queue.shift()) {
      if (o.signal?.aborted) return;
      const args = ['--import', 'tsx', CHILD_ENTRY, ...trainArgs(spec)];
      // a sweep's place of the run among all its runs; explicit specs (ensureSpecs): among those trained here
      const place = all > 0 ? `${indexOf(spec)}/${all}` : `${specs.indexOf(spec) + 1}/${specs.length}`;
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, args, {
          cwd: PROJECT_ROOT,
          // 'ipc': the child sees the channel close when this process dies, even by SIGKILL
          // (on a TTY the child's one-line result would break the board's block: the parent prints it)
          stdio: [
            'ignore',
            o.stream === null || ttyBoard ? 'ignore' : 'inherit',
            o.stream === null ? 'ignore' : 'inherit',
            'ipc',
          ],
          // the child's progress lines carry this run's place in the whole sweep, not [1/1];
          // they come back over IPC to this process's board
          env: { ...process.env, CEG_PROGRESS: board ? 'ipc' : 'plain', CEG_PROGRESS_INDEX: place },
          detached: true,
        });
        live.add(child);
        const feed = board ? boardFeed(board) : null;
        if (feed) child.on('message', feed.onMessage);
        // 'close': after the exit and the IPC channel's last message
        child.on('close', (c, sig) => {
          live.delete(child);
          feed?.onExit(c ?? -1);
          resolve(c ?? (sig ? -1 : null));
        });
      });
      if (code !== 0 && code !== EXIT_DIVERGED && !o.signal?.aborted)
        failures.push(`${spec.innovation} ${spec.scale} seed ${spec.seed} (exit ${code})`);
      else if (code === 0) trainedHere.add(runId(spec));
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(o.jobs ?? 1, specs.length) }, worker));
  } finally {
    o.signal?.removeEventListener('abort', forward);
    process.removeListener('exit', killAll);
  }
  if (o.signal?.aborted) throw stopped(o.signal);
  if (failures.length)
    throw new SweepError(`training failed for: ${failures.join('; ')} (see the messages above; re-run to resume)`);
}

/**
 * Bad input is refused before anything is trained or written: every spec to train must fit in
 * the backend's memory (src/train/limits.ts) and its context in its data.
 */
function preflight(specs: RunSpec[], so: SpecOptions = {}): void {
  for (const sp of specs) checkSpecLimits(sp, so.overrides);
  const byData = new Map<string, RunSpec[]>();
  for (const sp of specs) byData.set(JSON.stringify(sp.data), [...(byData.get(JSON.stringify(sp.data)) ?? []), sp]);
  for (const group of byData.values()) {
    const longest = group.reduce((a, b) => (b.model.blockSize > a.model.blockSize ? b : a));
    const d = longest.data;
    const wholeFile = (f: string) =>
      fs.existsSync(path.join(d.dir!, f)) && fs.statSync(path.join(d.dir!, f)).size % 2 === 0;
    if (d.corpus === 'tokens' && d.dir && wholeFile('train.bin') && wholeFile('val.bin')) {
      // user token files can be large (OpenWebText: GBs): their lengths from the file sizes (uint16 ids)
      const len = (f: string) => ({ length: Math.floor(fs.statSync(path.join(d.dir!, f)).size / 2) });
      checkContextFitsData(longest, { train: len('train.bin'), val: len('val.bin'), dir: d.dir });
    } else {
      checkContextFitsData(longest, loadTokens(d));
    }
  }
}

function stopped(signal: AbortSignal): InterruptedError {
  const reason = stopReason(signal);
  return new InterruptedError(
    0,
    reason,
    `sweep stopped (${reason}); started runs were checkpointed; the same command resumes them`,
  );
}

/** A finished state: done, or diverged (a result too). */
export function finishedState(store: RunStore, sp: RunSpec): boolean {
  if (isVerifiedDone(store, runId(sp))) return true;
  return store.get(runId(sp))?.status().state === 'diverged';
}

/**
 * Train every (innovation, seed) not yet complete in the store, in order, and return all of
 * them. Completed runs are read, not retrained.
 */
export async function ensureRuns(o: SweepOptions): Promise<RunRecord[]> {
  const specs = o.innovations.flatMap((inn) =>
    o.seeds.map((seed) => runSpec(inn, o.scale, seed, o.backend, o.specOptions)),
  );
  const keptStale = await prepareSpecs(specs, o);
  /** runs trained by child processes of this sweep (complete when the loop below reads them) */
  const trainedHere = new Set<string>();
  if (o.executor) {
    // e.g. SLURM (src/train/slurm.ts): one job array of the missing runs into the same store
    const pending = specs.filter((sp) => !finishedState(o.store, sp));
    if (pending.length) await o.executor.trainMany(pending, o);
    for (const sp of pending) if (finishedState(o.store, sp)) trainedHere.add(runId(sp));
  } else if ((o.jobs ?? 1) > 1) {
    const pending = specs.filter((sp) => !finishedState(o.store, sp));
    if (pending.length > 1) {
      await trainInChildren(pending, o, trainedHere);
      refuseMissed(pending, o.store);
    }
  }
  return trainInProcess(specs, o, keptStale, trainedHere);
}

/**
 * Before training: refuse bad input (a corpus repeated too often, a model or context that does
 * not fit) before anything is trained or written; then deal with completed runs that the
 * current code no longer reproduces: retrain (archive first) or keep, labelled (returned).
 */
async function prepareSpecs(specs: readonly RunSpec[], o: SweepOptions): Promise<Set<string>> {
  const todo = specs.filter((sp) => !isVerifiedDone(o.store, runId(sp)));
  // refuse, before anything is trained or written, a run that cannot fit (memory, context)
  // and then one that would repeat its corpus many times
  preflight(todo, o.specOptions);
  for (const sp of todo) checkEpochs(sp, o.allowSmallCorpus);
  // completed runs that the current code no longer reproduces: retrain (archive first) or keep, labelled
  const keptStale = new Set<string>();
  const say = (m: string) => progressStream(o)?.write(`[ceg] ${m}\n`);
  for (const spec of specs) {
    const done = o.store.get(runId(spec));
    if (!done?.isDone()) continue;
    const cs = await checkRun(done);
    if (cs.state !== 'stale') continue;
    const what = `${spec.innovation} ${spec.scale} seed ${spec.seed} (run ${done.id})`;
    if (o.allowStale) {
      keptStale.add(done.id);
      say(`${what} is STALE (${cs.verdict.detail}); kept because of --allow-stale`);
    } else {
      const moved = o.store.archive(done.id);
      say(`${what} is stale (${cs.verdict.detail}); training it again (the old run is kept in ${moved})`);
    }
  }
  return keptStale;
}

/**
 * A child that trained anything but the parent's spec would leave this run to be trained
 * here, silently, one at a time (issue 18): refuse instead.
 */
function refuseMissed(pending: readonly RunSpec[], store: RunStore): void {
  const missed = pending.filter((sp) => !finishedState(store, sp));
  if (missed.length)
    throw new Error(
      `child processes did not complete ${missed.map((sp) => `${sp.innovation} ${sp.scale} seed ${sp.seed} (run ${runId(sp)})`).join('; ')}`,
    );
}

/**
 * Train explicit run specs (e.g. a study plan's trunks, or its forks once the trunks are
 * done) not yet complete in the store, and return all of them; the same refusals, stale
 * handling and claims as ensureRuns. With jobs > 1 each pending run is trained by a child
 * process (./child.ts, see trainInChildren), as in ensureRuns.
 * Any spec (forks, schedules, plan rungs) goes through the same path.
 */
export async function ensureSpecs(
  specs: readonly RunSpec[],
  o: Omit<SweepOptions, 'scale' | 'innovations' | 'seeds' | 'backend'>,
): Promise<RunRecord[]> {
  const so = { ...o, scale: '', innovations: [], seeds: [], backend: specs[0]?.backend ?? 'wasm' } as SweepOptions;
  const keptStale = await prepareSpecs(specs, so);
  const trainedHere = new Set<string>();
  if (o.executor) {
    // e.g. SLURM: one job array of the missing specs, each task `ceg train --run ID --spec FILE`
    const pending = specs.filter((sp) => !finishedState(o.store, sp));
    if (pending.length) await o.executor.trainMany(pending, so, 'spec-file');
    for (const sp of pending) if (finishedState(o.store, sp)) trainedHere.add(runId(sp));
  } else if ((o.jobs ?? 1) > 1) {
    const pending = specs.filter((sp) => !finishedState(o.store, sp));
    if (pending.length > 1) {
      await trainInChildren(pending, so, trainedHere);
      refuseMissed(pending, o.store);
    }
  }
  return trainInProcess(specs, so, keptStale, trainedHere);
}

async function trainInProcess(
  specs: readonly RunSpec[],
  o: SweepOptions,
  keptStale: ReadonlySet<string>,
  trainedHere: ReadonlySet<string>,
): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  // a child of a sweep (CEG_PROGRESS=ipc): progress goes to the parent's board, which draws it
  // (never throwing: once the parent is gone the trainer must still checkpoint and record why it stopped)
  const toParent =
    readEnv('CEG_PROGRESS') === 'ipc' && process.send
      ? (m: unknown) => {
          if (process.connected) process.send!(m, undefined, undefined, () => {});
        }
      : undefined;
  let k = 0;
  for (const spec of specs) {
    if (o.signal?.aborted) throw stopped(o.signal);
    k += 1;
    const index =
      specs.length === 1 && readEnv('CEG_PROGRESS_INDEX') ? readEnv('CEG_PROGRESS_INDEX') : `${k}/${specs.length}`;
    const study =
      spec.train.schedule === 'wsd'
        ? ` lr ${spec.train.lr}${spec.fork ? ` fork@${spec.fork.step}->${spec.train.steps}` : ' trunk'}`
        : '';
    const label = `[${index}] ${spec.innovation} ${spec.scale} seed ${spec.seed}${study}`;
    const stored = o.store.get(runId(spec));
    if (stored?.isDone()) {
      // complete already (earlier, or by a child process just now): one line, no progress bar at step 0
      const final = stored.metrics().at(-1);
      const how = trainedHere.has(stored.id) ? 'trained' : 'cached';
      const line = `${label} ${how} (run ${stored.id}): final val loss ${final?.valLoss?.toFixed(4)}`;
      if (toParent) toParent({ ceg: 'progress', kind: 'log', msg: line });
      else progressStream(o)?.write(`${line}\n`);
    }
    const stream = progressStream(o);
    const progress: Progress | null =
      o.stream === null || stored?.isDone()
        ? null
        : toParent
          ? progressOverIpc(label, spec.train.steps, toParent)
          : stream === null
            ? null
            : createProgress({
                label,
                total: spec.train.steps,
                stream,
                ...(readEnv('CEG_PROGRESS') === 'plain' ? { tty: false } : {}),
              });
    // no training step yet: no loss or speed to show (not "loss nan 0.0 tok/s")
    let last: { loss?: number; tokPerSec?: number } = {};
    const hooks: TrainHooks = {
      signal: o.signal,
      onWait: (h) =>
        progress?.log(
          `another process trains this run (pid ${h.pid} on ${h.host}${h.job ? `, job ${h.job}` : ''}, since ${h.startedAt}): waiting for it`,
        ),
      onStep: (s) => {
        last = { loss: s.loss, tokPerSec: s.tokPerSec };
        progress?.update(s.step, { loss: s.loss, tokPerSec: s.tokPerSec });
      },
      onEval: (row) => progress?.update(row.step, { loss: last.loss, valLoss: row.valLoss, tokPerSec: last.tokPerSec }),
      onNotice: (m) => progress?.log(`[ceg] ${m}`),
    };
    const r = await trainRun(spec, o.store, hooks);
    const final = r.metrics[r.metrics.length - 1];
    progress?.done(
      r.diverged
        ? `DIVERGED (run ${r.run.id}${r.cached ? ', stored' : ''}): ${divergenceMessage(r.diverged)}`
        : r.cached
          ? `cached${keptStale.has(r.run.id) ? ', STALE' : ''} (run ${r.run.id}): final val loss ${final?.valLoss?.toFixed(4)}`
          : `done (run ${r.run.id}): final val loss ${final?.valLoss?.toFixed(4)} in ${final?.seconds.toFixed(1)} s of training`,
    );
    out.push({
      id: r.run.id,
      innovation: spec.innovation,
      scale: spec.scale,
      seed: spec.seed,
      backend: spec.backend,
      metrics: r.metrics,
      cached: r.cached && !trainedHere.has(r.run.id),
      ...(keptStale.has(r.run.id) ? { stale: true } : {}),
      ...(r.diverged ? { diverged: r.diverged } : {}),
      timingKey: runTimingKey(r.run.status(), spec.backend),
    });
  }
  return out;
}
