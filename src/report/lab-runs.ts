/**
 * Runs for notebooks: the scale and seeds from the environment, the engine, and train-or-load
 * of the runs a notebook needs (with a live progress line in a notebook).
 */
import { readEnv } from '../env.js';
import { initEngine, requestedBackend, type EngineInfo, type BackendName } from '../engine/index.js';
import { ladderOf } from '../scales.js';
import { ConfigError } from '../config.js';
import { RunStore } from '../runs/index.js';
import { ensureRuns as sweep } from '../train/sweep.js';
import type { RunRecord } from '../runs/index.js';
import { resolveScale } from '../scales.js';
import { inNotebook, notebookProgress } from './notebook.js';

/** The scale notebooks use: CEG_SCALE, default 'micro'. */
export function scaleFromEnv(): string {
  const s = readEnv('CEG_SCALE') ?? 'micro';
  resolveScale(s);
  return s;
}

/** Seeds for a scale: CEG_SEEDS (e.g. "1,2,3"), else 3 for micro (the stored runs), 1 otherwise. */
export function seedsFor(scale: string): number[] {
  const env = readEnv('CEG_SEEDS');
  if (env) {
    const seeds = env.split(',').map((s) => Number(s.trim()));
    if (seeds.some((s) => !Number.isInteger(s) || s < 0))
      throw new ConfigError(`CEG_SEEDS="${env}": expected comma-separated non-negative integers`);
    return seeds;
  }
  return scale === 'micro' ? [1, 2, 3] : [1];
}

/** Seeds of the scaling ladder: CEG_SEEDS, else 2 at micro (the stored ladder runs), 1 otherwise. */
export function ladderSeedsFor(scale: string): number[] {
  if (readEnv('CEG_SEEDS')) return seedsFor(scale);
  return scale === 'micro' ? [1, 2] : [1];
}

/** The run store: CEG_RUNS or <project>/data/runs, wherever the notebook runs. */
export function store(): RunStore {
  return new RunStore();
}

export function backend(): BackendName {
  return requestedBackend();
}

/** Start the engine (CEG_BACKEND, default wasm) and print which backend runs. */
export async function start(): Promise<EngineInfo> {
  const info = await initEngine({ backend: backend() });
  const flags = Object.entries(info.flags)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  console.log(`backend ${info.backend}${flags ? ` (${flags})` : ''}, tfjs ${info.tfjsVersion}`);
  return info;
}

// ---------------------------------------------------------------- runs

export interface EnsureOptions {
  scale: string;
  innovations: readonly string[];
  seeds: readonly number[];
  /** print progress (default true) */
  progress?: boolean;
  /** train even where a run would repeat its corpus more than 4 epochs (compact/full on the bundled corpus) */
  allowSmallCorpus?: boolean;
}

/**
 * Train what the store lacks, then return every requested run's metrics. Progress goes to the
 * terminal (stderr); in a notebook one summary line per run is printed into the cell's output.
 */
export async function ensureRuns(o: EnsureOptions): Promise<RunRecord[]> {
  // in a notebook: one live line per run, updated in place and removed at the end (not stderr,
  // which a notebook shows as red error blocks); elsewhere stdout
  const live = o.progress === false ? null : notebookProgress();
  const runs = await sweep({
    scale: o.scale,
    innovations: o.innovations,
    seeds: o.seeds,
    backend: backend(),
    store: store(),
    stream: o.progress === false ? null : (live ?? process.stdout),
    allowSmallCorpus: o.allowSmallCorpus,
  }).finally(() => live?.close());
  if (inNotebook() && o.progress !== false) for (const r of runs) console.log(runLine(r));
  return runs;
}

function runLine(r: RunRecord): string {
  const last = r.metrics[r.metrics.length - 1];
  const how = r.cached ? 'loaded from the run store' : `trained now (${last ? last.seconds.toFixed(1) : '?'} s)`;
  const loss = typeof last?.valLoss === 'number' ? last.valLoss.toFixed(4) : '—';
  return `${r.innovation} · ${r.scale} · seed ${r.seed}: ${how}, ${last?.step ?? 0} steps, final val loss ${loss}  [run ${r.id}]`;
}

/** One paragraph about a scale and its seeds (printed by the notebooks' setup cell). */
export function describeScale(scale: string, seeds: readonly number[]): string {
  const s = resolveScale(scale);
  const m = s.model;
  const t = s.train;
  const lines = [
    `scale ${scale}: ${s.description}`,
    `  model ${m.nLayer} layers × ${m.nHead} heads × width ${m.nEmbd}, context ${m.blockSize}, vocab ${m.vocabSize} (${s.data.tokenizer} tokens of ${s.data.corpus})`,
    `  training ${t.steps} steps × ${t.batchSize * t.gradAccum} sequences, validation every ${t.evalInterval} steps; seeds ${seeds.join(', ')}`,
  ];
  if (scale === 'smoke') lines.push('  (smoke is a plumbing check: its numbers mean nothing)');
  if (seeds.length < 2) lines.push('  (one seed: no error bars; CEG_SEEDS=1,2,3 adds seeds)');
  return lines.join('\n');
}

/** The scaling ladder of a scale, for each innovation and seed. */
export async function ensureLadder(o: EnsureOptions): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  for (const rung of ladderOf(o.scale)) out.push(...(await ensureRuns({ ...o, scale: rung.name })));
  return out;
}
