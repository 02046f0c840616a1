/**
 * Is what a run folder holds what the run computed? Read-only checks of one run's files:
 *  - a `done` run is served only if its metrics are complete and unchanged: metrics.jsonl
 *    exists, has no torn or corrupt line, holds an evaluation row for every evaluation step
 *    (0, every evalInterval, the last step), ends at train.steps with a validation loss, and
 *    (for runs finished since the seal was added) still has the sha256 and row count that
 *    status.json recorded when the run became done;
 *  - a checkpoint is restored only if every file matches the size and sha256 in its manifest;
 *  - a checkpoint is resumed from only if the metrics cover its step (else the resumed run
 *    would lack rows).
 * Used by the store's summaries (a done run that fails is listed as corrupt, so no table or
 * figure uses it), by the trainer, and by `ceg runs --check/--repair` (./integrity.ts).
 */
import fs from 'node:fs';
import { isImportedSpec } from './import.js';
import path from 'node:path';
import type { RunSpec } from './id.js';
import {
  CheckpointCorruptError,
  METRICS_FILE,
  RUN_STATES,
  STATUS_FILE,
  SPEC_FILE,
  metricsSeal,
  readMetricLines,
  type CheckpointRef,
  type Run,
  type RunStatus,
} from './run.js';
import { readJson } from '../fsx.js';

/** One thing wrong with a run: the file (relative to the run folder) and what is wrong with it. */
export interface Problem {
  file: string;
  message: string;
}

export const formatProblems = (ps: readonly Problem[]): string => ps.map((p) => `${p.file}: ${p.message}`).join('; ');

/** Steps at which the trainer writes an evaluation row, up to `upTo` (default: the last step). */
export function expectedEvalSteps(train: { steps: number; evalInterval: number }, upTo = train.steps): number[] {
  const out = [0];
  for (let s = train.evalInterval; s <= Math.min(upTo, train.steps); s += train.evalInterval) out.push(s);
  if (upTo >= train.steps && out[out.length - 1] !== train.steps) out.push(train.steps);
  return out;
}

/** The spec.json of a run folder, or a problem saying why it cannot be used. */
export function readSpecFile(dir: string): { spec?: RunSpec; problem?: Problem } {
  let spec: RunSpec | undefined;
  try {
    spec = readJson<RunSpec>(path.join(dir, SPEC_FILE));
  } catch {
    return { problem: { file: SPEC_FILE, message: 'is not valid JSON (damaged)' } };
  }
  if (spec === undefined) return { problem: { file: SPEC_FILE, message: 'is missing' } };
  const t = (spec as Partial<RunSpec> | null)?.train;
  if (
    spec === null ||
    typeof spec !== 'object' ||
    typeof t !== 'object' ||
    t === null ||
    !Number.isInteger(t.steps) ||
    !Number.isInteger(t.evalInterval) ||
    !Number.isInteger(spec.seed)
  )
    return { problem: { file: SPEC_FILE, message: 'is not a run spec (no train.steps, train.evalInterval or seed)' } };
  return { spec };
}

/** The status.json of a run folder, or a problem saying why it cannot be used. */
export function readStatusFile(dir: string): { status?: RunStatus; problem?: Problem } {
  let st: RunStatus | undefined;
  try {
    st = readJson<RunStatus>(path.join(dir, STATUS_FILE));
  } catch {
    return { problem: { file: STATUS_FILE, message: 'is not valid JSON (damaged)' } };
  }
  if (st === undefined) return { problem: { file: STATUS_FILE, message: 'is missing' } };
  if (st === null || typeof st !== 'object' || !RUN_STATES.includes(st.state))
    return {
      problem: {
        file: STATUS_FILE,
        message: `has no valid state (got ${JSON.stringify((st as RunStatus | null)?.state)}; valid: ${RUN_STATES.join(', ')})`,
      },
    };
  return { status: st };
}

/** Problems of the metrics of a run that says it is done (empty: complete and verified). */
export function doneProblems(run: Run, status: RunStatus): Problem[] {
  const file = run.metricsFile;
  const p = (message: string): Problem[] => [{ file: METRICS_FILE, message }];
  const seal = status.metricsSeal;
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch {
    size = -1;
  }
  if (size <= 0 && seal?.bytes === 0) return []; // sealed with no rows (not a trainer's run)
  if (size < 0) return p('is missing, but the run is marked done');
  if (size === 0) return p('is empty, but the run is marked done');
  const now = metricsSeal(file);
  const text = fs.readFileSync(file, 'utf8');
  if (!text.endsWith('\n'))
    return p(`ends in a torn line (${size - (text.lastIndexOf('\n') + 1)} bytes without a newline)`);
  let rows;
  try {
    rows = readMetricLines(file).map((l) => l.row);
  } catch (e) {
    return p(`has a corrupt line (${(e as Error).message.replace(`${file}:`, 'line ')})`);
  }
  if (seal) {
    if (seal.sha256 !== now.sha256 || seal.rows !== now.rows)
      return p(
        `changed since the run finished: ${now.rows} rows, sha256 ${now.sha256.slice(0, 12)}…; recorded ${seal.rows} rows, sha256 ${seal.sha256.slice(0, 12)}…`,
      );
    return [];
  }
  // finished before seals existed: check what the trainer always writes
  return completenessProblems(run, rows);
}

/**
 * Does `rows` hold what a finished run's trainer writes: an evaluation row (with a validation
 * loss) at step 0, every evalInterval and the last step, and nothing beyond the last step?
 * The trainer checks this before it marks a run done; runs finished before seals are checked by it.
 */
export function completenessProblems(run: Run, rows = run.metrics()): Problem[] {
  const p = (message: string): Problem[] => [{ file: METRICS_FILE, message }];
  if (isImportedSpec(run.spec)) return []; // an imported run has the rows its file had (checked by its seal)
  const steps = run.spec.train.steps;
  const byStep = new Map(rows.map((r) => [r.step, r]));
  const last = rows.reduce((m, r) => Math.max(m, r.step), -1);
  if (last !== steps) return p(`its last row is step ${last}, the run ends at step ${steps} (rows lost)`);
  const missing = expectedEvalSteps(run.spec.train).filter((s) => typeof byStep.get(s)?.valLoss !== 'number');
  if (missing.length)
    return p(
      `no evaluation row for step${missing.length > 1 ? 's' : ''} ${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ', …' : ''}`,
    );
  return [];
}

/** Why a checkpoint cannot be restored (sizes and checksums against its manifest), or null if it can. */
export function checkpointProblem(run: Run, ref: CheckpointRef): string | null {
  try {
    run.loadCheckpoint(ref);
    return null;
  } catch (e) {
    if (e instanceof CheckpointCorruptError) return e.reason;
    throw e;
  }
}

/**
 * Do the metrics hold every evaluation row up to `step`? Resuming from a checkpoint at a step
 * the metrics do not cover would finish a run with rows missing. Unreadable metrics cover nothing.
 */
export function metricsCover(run: Run, step: number): boolean {
  let rows;
  try {
    rows = run.metrics();
  } catch {
    return false;
  }
  if (isImportedSpec(run.spec)) return true; // imported runs have no checkpoints to cover
  const have = new Set(rows.filter((r) => typeof r.valLoss === 'number').map((r) => r.step));
  return expectedEvalSteps(run.spec.train, step).every((s) => have.has(s));
}

/** ckpt-<n> folders that are not complete checkpoints (no manifest): left by a damage, not by a crash. */
export function strayCheckpointDirs(dir: string): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return entries.filter((e) => /^ckpt-\d+$/.test(e) && !fs.existsSync(path.join(dir, e, 'checkpoint.json'))).sort();
}
