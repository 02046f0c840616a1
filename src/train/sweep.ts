/**
 * From names to runs: the run spec of (innovation, scale, seed, backend), and sweeps that
 * train every requested variant × seed, skipping runs the store already completed.
 */
import { getScale, scaleNames, ladderRungNames, ladderScale, type Scale } from '../scales.js';
import { applyInnovations, getInnovation } from '../innovations.js';
import { ConfigError, parseModelConfig, parseTrainConfig, TOKENIZERS, type DataConfig } from '../config.js';
import { getTokenizer } from '../data/index.js';
import type { BackendName } from '../engine/index.js';
import { runId, type RunSpec, type RunStore, type MetricRow } from '../runs/index.js';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from '../paths.js';
import { createProgress, type ProgressStream } from '../cli/progress.js';
import { trainRun, type TrainHooks } from './trainer.js';

/** A named scale or a rung of the micro scaling ladder (micro-r0 ...). */
export function resolveScale(name: string): Scale {
  if (ladderRungNames().includes(name)) return ladderScale(name);
  if (!scaleNames().includes(name)) {
    throw new ConfigError(`unknown scale "${name}"; valid: ${scaleNames().join(', ')} (and ladder rungs ${ladderRungNames().join(', ')})`);
  }
  return getScale(name);
}

/** Ways to depart from a named scale: other data, another tokenizer, config overrides. */
export interface SpecOptions {
  /** a folder with nanoGPT-format train.bin / val.bin (e.g. OpenWebText from nanoGPT's prepare.py) */
  dataDir?: string;
  /** tokenizer of the data (default: the scale's; 'gpt2' with dataDir) */
  tokenizer?: string;
  /** partial model / train configs merged over the scale's (validated: unknown keys are errors) */
  overrides?: { model?: Record<string, unknown>; train?: Record<string, unknown> };
}

export function runSpec(innovation: string, scale: string, seed: number, backend: BackendName, opts: SpecOptions = {}): RunSpec {
  getInnovation(innovation); // validates the id
  const s = resolveScale(scale);
  const tokenizer = opts.tokenizer ?? (opts.dataDir ? 'gpt2' : s.data.tokenizer);
  if (!(TOKENIZERS as readonly string[]).includes(tokenizer))
    throw new ConfigError(`unknown tokenizer "${tokenizer}"; valid: ${TOKENIZERS.join(', ')}`);
  const data: DataConfig = opts.dataDir
    ? { corpus: 'tokens', tokenizer: tokenizer as DataConfig['tokenizer'], dir: path.resolve(opts.dataDir) }
    : { ...s.data, tokenizer: tokenizer as DataConfig['tokenizer'] };
  const over = opts.overrides ?? {};
  for (const k of Object.keys(over)) {
    if (k !== 'model' && k !== 'train') throw new ConfigError(`config: unknown section "${k}"; valid: model, train`);
  }
  const base = { ...s.model, ...(over.model ?? {}), vocabSize: getTokenizer(tokenizer).paddedVocabSize };
  const model = parseModelConfig(applyInnovations(parseModelConfig(base), [innovation]));
  const train = parseTrainConfig({ ...s.train, ...(over.train ?? {}) });
  return { model, train, data, seed, backend, innovation, scale };
}

/** Command-line flags that reproduce SpecOptions in a child `ceg train`. */
export function specOptionArgs(o: SpecOptions, configFile?: string): string[] {
  return [
    ...(o.dataDir ? ['--data', o.dataDir] : []),
    ...(o.tokenizer ? ['--tokenizer', o.tokenizer] : []),
    ...(configFile ? ['--config', configFile] : []),
  ];
}

/** What analysis needs of a run (src/ceg's TableRun). */
export interface RunRecord {
  id: string;
  innovation: string;
  scale: string;
  seed: number;
  backend: string;
  metrics: MetricRow[];
  cached: boolean;
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
  /** the --config file the overrides came from (passed on to child processes) */
  configFile?: string;
  /**
   * runs trained at once, each in its own process (default 1). Two processes use both cores
   * of a 2-core machine far better than one process with wasm threads.
   */
  jobs?: number;
}


/** Train specs in `jobs` child processes (`ceg train`), at most `jobs` at a time. */
async function trainInChildren(specs: RunSpec[], o: SweepOptions, trainArgs: (spec: RunSpec) => string[] = (spec) => namedTrainArgs(spec, o)): Promise<void> {
  const queue = [...specs];
  const failures: string[] = [];
  const worker = async (): Promise<void> => {
    for (let spec = queue.shift(); spec; spec = queue.shift()) {
      if (o.signal?.aborted) return;
      const args = ['--import', 'tsx', path.join(PROJECT_ROOT, 'src', 'cli', 'main.ts'), 'train', ...trainArgs(spec)];
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, args, {
          cwd: PROJECT_ROOT,
          stdio: ['ignore', o.stream === null ? 'ignore' : 'inherit', o.stream === null ? 'ignore' : 'inherit'],
          env: { ...process.env, CEG_PROGRESS: 'plain' },
        });
        child.on('exit', (c) => resolve(c));
      });
      if (code !== 0) failures.push(`${spec.innovation} ${spec.scale} seed ${spec.seed} (exit ${code})`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.jobs ?? 1, specs.length) }, worker));
  if (failures.length) throw new Error(`training failed for: ${failures.join('; ')} (see the messages above; re-run to resume)`);
}

/** `ceg train` flags of a named run (innovation, scale, seed and the sweep's spec options). */
function namedTrainArgs(spec: RunSpec, o: SweepOptions): string[] {
  return [
    '--innovation', spec.innovation, '--scale', spec.scale, '--seed', String(spec.seed),
    '--backend', spec.backend, '--runs', o.store.root, ...specOptionArgs(o.specOptions ?? {}, o.configFile),
  ];
}

/**
 * Train every (innovation, seed) not yet complete in the store, in order, and return all of
 * them. Completed runs are read, not retrained.
 */
export async function ensureRuns(o: SweepOptions): Promise<RunRecord[]> {
  const specs = o.innovations.flatMap((inn) => o.seeds.map((seed) => runSpec(inn, o.scale, seed, o.backend, o.specOptions)));
  if ((o.jobs ?? 1) > 1) {
    const pending = specs.filter((sp) => !o.store.get(runId(sp))?.isDone());
    if (pending.length > 1) await trainInChildren(pending, o);
  }
  return trainInProcess(specs, o);
}

/**
 * Train explicit run specs (e.g. a study plan's trunks, or its forks once the trunks are
 * done) not yet complete in the store, and return all of them. With jobs > 1 each pending
 * run is created in the store first and trained by a child `ceg train --run ID`, which reads
 * its spec.json: any spec (forks, schedules, plan rungs) goes through the same path.
 */
export async function ensureSpecs(specs: readonly RunSpec[], o: Omit<SweepOptions, 'scale' | 'innovations' | 'seeds' | 'backend'>): Promise<RunRecord[]> {
  const so = { ...o, scale: '', innovations: [], seeds: [], backend: specs[0]?.backend ?? 'wasm' } as SweepOptions;
  if ((o.jobs ?? 1) > 1) {
    const pending = specs.filter((sp) => !o.store.get(runId(sp))?.isDone());
    if (pending.length > 1) {
      for (const sp of pending) o.store.open(sp); // the child reads the spec from the store
      await trainInChildren(pending, so, (sp) => ['--run', runId(sp), '--runs', o.store.root]);
    }
  }
  return trainInProcess(specs, so);
}

async function trainInProcess(specs: readonly RunSpec[], o: SweepOptions): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  let k = 0;
  for (const spec of specs) {
    k += 1;
    const study = spec.train.schedule === 'wsd' ? ` lr ${spec.train.lr}${spec.fork ? ` fork@${spec.fork.step}->${spec.train.steps}` : ' trunk'}` : '';
    const label = `[${k}/${specs.length}] ${spec.innovation} ${spec.scale} seed ${spec.seed}${study}`;
    const progress =
      o.stream === null
        ? null
        : createProgress({
            label, total: spec.train.steps, stream: o.stream ?? process.stderr,
            ...(process.env.CEG_PROGRESS === 'plain' ? { tty: false } : {}),
          });
    let last = { loss: NaN, tokPerSec: 0 };
    const hooks: TrainHooks = {
      signal: o.signal,
      onStep: (s) => {
        last = { loss: s.loss, tokPerSec: s.tokPerSec };
        progress?.update(s.step, { loss: s.loss, tokPerSec: s.tokPerSec });
      },
      onEval: (row) => progress?.update(row.step, { loss: last.loss, valLoss: row.valLoss, tokPerSec: last.tokPerSec }),
    };
    const r = await trainRun(spec, o.store, hooks);
    const final = r.metrics[r.metrics.length - 1];
    progress?.done(
      r.cached
        ? `cached (run ${r.run.id}): final val loss ${final?.valLoss?.toFixed(4)}`
        : `done (run ${r.run.id}): final val loss ${final?.valLoss?.toFixed(4)} in ${final?.seconds.toFixed(1)} s of training`,
    );
    out.push({
      id: r.run.id, innovation: spec.innovation, scale: spec.scale, seed: spec.seed, backend: spec.backend,
      metrics: r.metrics, cached: r.cached,
    });
  }
  return out;
}
