/**
 * What a run is, and its stable name. A RunSpec holds everything that determines a run's
 * numbers (model, train, data, seed, backend) plus two descriptive labels (innovation, scale).
 * runId hashes only the number-determining part: two specs that would produce identical
 * numbers share one run, whatever they are called.
 */
import { createHash } from 'node:crypto';
import type { DataConfig, ModelConfig, TrainConfig } from '../config.js';
import { ConfigError, DataConfigSchema, ModelConfigSchema, TrainConfigSchema, formatIssues } from '../config.js';
import type { BackendName } from '../engine/index.js';

export interface RunSpec {
  model: ModelConfig;
  train: TrainConfig;
  data: DataConfig;
  seed: number;
  backend: BackendName;
  /** descriptive label: the innovation id (or a combination label); not hashed */
  innovation: string;
  /** descriptive label: the scale name; not hashed */
  scale: string;
  /**
   * A cooldown fork: this run starts from run `parent`'s checkpoint at `step` (kept there via
   * train.keepSteps) instead of from initialisation, and its metric rows up to `step` are the
   * parent's. Hashed, so a fork's id differs from a run with the same configs trained from
   * scratch; absent for ordinary runs (whose ids are unchanged).
   */
  fork?: RunFork;
}

export interface RunFork {
  /** run id of the trunk */
  parent: string;
  /** the trunk step whose checkpoint this run starts from */
  step: number;
}

/** The fields of a RunSpec that determine its numbers, i.e. what runId hashes. */
export const HASHED_FIELDS = ['model', 'train', 'data', 'seed', 'backend', 'fork'] as const;

/**
 * JSON with object keys sorted at every depth, no whitespace; undefined properties are
 * dropped (as JSON.stringify does), so `{dir: undefined}` hashes like `{}`. Non-finite
 * numbers are refused: they would silently become null.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value, '$'));
}

function sortKeys(v: unknown, where: string): unknown {
  if (typeof v === 'number' && !Number.isFinite(v)) {
    throw new ConfigError(`${where}: ${v} cannot be hashed (numbers in a run spec must be finite)`);
  }
  if (Array.isArray(v)) return v.map((x, i) => sortKeys(x, `${where}[${i}]`));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x, `${where}.${k}`);
    }
    return out;
  }
  return v;
}

/** The part of a spec that runId hashes. */
export function hashedPart(spec: RunSpec): Pick<RunSpec, (typeof HASHED_FIELDS)[number]> {
  return {
    model: numberModel(spec.model),
    train: trainIdentity(spec.train),
    data: spec.data,
    seed: spec.seed,
    backend: spec.backend,
    fork: spec.fork,
  };
}

/** The train config as hashed: evalProtocol 'fixed' is the default and hashes as absent (runs made before the option keep their ids). */
function trainIdentity(train: TrainConfig): TrainConfig {
  if (train?.evalProtocol !== 'fixed') return train;
  const { evalProtocol: _fixed, ...rest } = train;
  return rest;
}

/**
 * The model config as far as it determines numbers: the NSA settings only matter with the
 * 'nsa' kernel, so other kernels hash without them (run specs stored before NSA existed, which
 * have no `nsa` field, keep their ids).
 */
function numberModel(m: ModelConfig): ModelConfig {
  if (m.attnKernel === 'nsa' || m.nsa === undefined) return m;
  const { nsa: _unused, ...rest } = m;
  return rest;
}

/** Stable run id: first 16 hex chars of sha256(canonicalJson({model, train, data, seed, backend, fork})) (fork absent for ordinary runs). */
export function runId(spec: RunSpec): string {
  return createHash('sha256')
    .update(canonicalJson(hashedPart(spec)))
    .digest('hex')
    .slice(0, 16);
}

/** A run id is 16 lowercase hex characters. */
export function isRunId(s: string): boolean {
  return /^[0-9a-f]{16}$/.test(s);
}

/** Validate a spec (zod schemas of src/config.ts, seed, labels); throws ConfigError naming every problem. */
export function validateRunSpec(spec: RunSpec): RunSpec {
  const problems: string[] = [];
  const m = ModelConfigSchema.safeParse(spec.model);
  if (!m.success) problems.push(formatIssues(m.error, 'model'));
  const t = TrainConfigSchema.safeParse(spec.train);
  if (!t.success) problems.push(formatIssues(t.error, 'train'));
  const d = DataConfigSchema.safeParse(spec.data);
  if (!d.success) problems.push(formatIssues(d.error, 'data'));
  if (!Number.isSafeInteger(spec.seed) || spec.seed < 0)
    problems.push(`seed: must be a non-negative integer, got ${JSON.stringify(spec.seed)}`);
  if (typeof spec.backend !== 'string' || (spec.backend as string) === '')
    problems.push(`backend: must be a backend name, got ${JSON.stringify(spec.backend)}`);
  if (spec.fork !== undefined) {
    const f = spec.fork as Partial<RunFork> | null;
    if (f === null || typeof f !== 'object' || typeof f.parent !== 'string' || !isRunId(f.parent))
      problems.push(`fork.parent: must be a run id (16 hex characters), got ${JSON.stringify(f?.parent)}`);
    if (!Number.isSafeInteger(f?.step) || (f?.step ?? 0) < 1 || (t.success && (f?.step ?? 0) >= spec.train.steps))
      problems.push(`fork.step: must be an integer in 1..train.steps-1, got ${JSON.stringify(f?.step)}`);
  }
  for (const k of ['innovation', 'scale'] as const)
    if (typeof spec[k] !== 'string' || spec[k] === '')
      problems.push(`${k}: must be a non-empty label, got ${JSON.stringify(spec[k])}`);
  if (problems.length) throw new ConfigError(`invalid run spec:\n${problems.join('\n')}`);
  return spec;
}
