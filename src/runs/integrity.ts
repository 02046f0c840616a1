/**
 * Checking and repairing a run store (`ceg runs --check` / `--repair`, and the trainer before
 * it writes a run). checkRun reports everything wrong with one run folder; repairRun fixes it
 * without losing evidence and without touching anything healthy:
 *
 *  damage                                         repair
 *  spec.json missing / not JSON / not a spec      the whole run moves to <root>/quarantine/
 *                                                 (a writer that knows the spec rewrites it)
 *  status.json missing / not JSON / bad state     old file to quarantine, status reset to running
 *  done, but metrics missing, empty, torn,        status reset to running: the next train
 *    rows lost                                    resumes from the newest checkpoint the metrics cover
 *  done, but metrics changed since it finished    metrics.jsonl to quarantine, status reset
 *  a corrupt metrics line (not a torn tail)       original to quarantine, the rows before it kept
 *  a checkpoint not matching its manifest         the checkpoint to quarantine (the run stays
 *    (checksum, size, missing file/manifest)      done if its metrics are verified)
 *
 * In-run quarantine: <run>/quarantine/<name>.<time>; whole runs: <root>/quarantine/<id>.<time>.
 * Neither is ever read as a run or a checkpoint again; delete them once looked at.
 */
import fs from 'node:fs';
import path from 'node:path';
import { runId, type RunSpec } from './id.js';
import { fsyncDir, writeFileAtomic, writeJsonAtomic } from '../fsx.js';
import {
  METRICS_FILE,
  Run,
  SPEC_FILE,
  STATUS_FILE,
  readMetricLines,
  type CheckpointRef,
  type RunState,
  type RunStatus,
} from './run.js';
import type { RunStore } from './store.js';
import {
  checkpointProblem,
  doneProblems,
  readSpecFile,
  readStatusFile,
  strayCheckpointDirs,
  type Problem,
} from './verify.js';

export const QUARANTINE_DIR = 'quarantine';

/** What is wrong with one run folder. */
export interface RunCheck {
  id: string;
  dir: string;
  /** "innovation scale seed N" when the spec is readable */
  label: string;
  /** the stored state, when status.json is readable */
  state: RunState | null;
  /** damage: repairRun fixes each */
  problems: Problem[];
  /** worth knowing, not damage (nothing to repair) */
  warnings: Problem[];
  /** checkpoints saved before checksums existed (sizes are still checked) */
  uncheckedCheckpoints: number;
}

/** Check one run folder (read-only). `checkpoints: false` skips reading the checkpoints (their checksums). */
export function checkRun(store: RunStore, id: string, opts: { checkpoints?: boolean } = {}): RunCheck {
  const dir = store.dirOf(id);
  const out: RunCheck = { id, dir, label: '?', state: null, problems: [], warnings: [], uncheckedCheckpoints: 0 };
  const { spec, problem: specProblem } = readSpecFile(dir);
  if (specProblem) out.problems.push(specProblem);
  if (spec) {
    out.label = `${spec.innovation} ${spec.scale} seed ${spec.seed}`;
    try {
      const want = runId(spec);
      if (want !== id)
        out.warnings.push({
          file: SPEC_FILE,
          message: `hashes to run id ${want}, not to its folder name (written by another version of the code?)`,
        });
    } catch {
      // a spec runId cannot hash (non-finite numbers) is reported by the checks below, if it matters
    }
  }
  const { status, problem: statusProblem } = readStatusFile(dir);
  if (statusProblem) out.problems.push(statusProblem);
  if (status) out.state = status.state;
  if (!spec) return out; // nothing below can be judged without the spec
  const run = new Run(id, dir, spec);
  if (status?.state === 'done') out.problems.push(...doneProblems(run, status));
  else {
    try {
      readMetricLines(run.metricsFile); // a torn final line is a crash signature (cut by the next writer); a corrupt one is not
    } catch (e) {
      out.problems.push({
        file: METRICS_FILE,
        message: `has a corrupt line (${(e as Error).message.replace(`${run.metricsFile}:`, 'line ')})`,
      });
    }
  }
  if (opts.checkpoints === false) return out;
  for (const ref of run.checkpoints()) {
    const why = checkpointProblem(run, ref);
    if (why) out.problems.push({ file: path.basename(ref.dir), message: `corrupt: ${why}` });
    else if (!hasChecksums(ref)) out.uncheckedCheckpoints += 1;
  }
  for (const d of strayCheckpointDirs(dir))
    out.problems.push({ file: d, message: 'is a checkpoint folder without its manifest (incomplete or damaged)' });
  return out;
}

/** checkRun over every run of the store. */
export function checkStore(store: RunStore): RunCheck[] {
  return store.ids().map((id) => checkRun(store, id));
}

export interface RepairOptions {
  /** the writer's spec of this run (its id must be the run's): a damaged spec.json is rewritten instead of quarantining the run */
  spec?: RunSpec;
}

/**
 * Fix what checkRun found (see the table above). Returns one line per action; healthy runs
 * (no problems) are not touched at all.
 */
export function repairRun(store: RunStore, check: RunCheck, opts: RepairOptions = {}): string[] {
  if (check.problems.length === 0) return [];
  const actions: string[] = [];
  const dir = check.dir;
  const has = (file: string) => check.problems.some((p) => p.file === file);
  if (has(SPEC_FILE)) {
    if (opts.spec && runId(opts.spec) === check.id) {
      if (fs.existsSync(path.join(dir, SPEC_FILE)))
        actions.push(`moved the damaged ${SPEC_FILE} to ${quarantineInRun(dir, SPEC_FILE)}`);
      writeJsonAtomic(path.join(dir, SPEC_FILE), opts.spec);
      actions.push(`rewrote ${SPEC_FILE} from the requested spec (same run id)`);
      return [...actions, ...repairRun(store, checkRun(store, check.id))];
    }
    const to = quarantineRun(store, check.id);
    return [`moved the whole run to ${to}: without its spec nothing in it can be verified or resumed`];
  }
  for (const p of check.problems) {
    if (!/^ckpt-\d+$/.test(p.file)) continue;
    actions.push(`moved ${p.file} to ${quarantineInRun(dir, p.file)} (${p.message})`);
  }
  const metricsProblem = check.problems.find((p) => p.file === METRICS_FILE);
  if (metricsProblem) {
    const mf = path.join(dir, METRICS_FILE);
    if (/corrupt line/.test(metricsProblem.message)) {
      const text = fs.readFileSync(mf, 'utf8');
      const kept = goodPrefix(text);
      const moved = quarantineInRun(dir, METRICS_FILE, true);
      writeFileAtomic(mf, kept.text);
      actions.push(`kept the ${kept.rows} metric rows before the corrupt line; the original is in ${moved}`);
    } else if (/changed since the run finished/.test(metricsProblem.message)) {
      actions.push(
        `moved ${METRICS_FILE} (changed after the run finished: no row can be trusted) to ${quarantineInRun(dir, METRICS_FILE)}`,
      );
    }
  }
  if (has(STATUS_FILE) || (check.state === 'done' && metricsProblem)) {
    let prev: Partial<RunStatus> = {};
    if (has(STATUS_FILE)) {
      if (fs.existsSync(path.join(dir, STATUS_FILE)))
        actions.push(`moved the damaged ${STATUS_FILE} to ${quarantineInRun(dir, STATUS_FILE)}`);
    } else {
      prev = readStatusFile(dir).status ?? {};
    }
    const now = new Date().toISOString();
    const { metricsSeal: _seal, finishedAt: _fin, error: _err, ...keep } = prev;
    const next: RunStatus = {
      ...keep,
      state: 'running',
      startedAt: prev.startedAt ?? now,
      updatedAt: now,
      repaired: {
        at: now,
        reason: check.problems
          .filter((p) => p.file === STATUS_FILE || p.file === METRICS_FILE)
          .map((p) => `${p.file}: ${p.message}`)
          .join('; '),
      },
    };
    delete next.pid; // no process owns it now: listed as interrupted, resumed by the next train
    delete next.host;
    writeJsonAtomic(path.join(dir, STATUS_FILE), next);
    actions.push(
      `reset the status to running: the next \`ceg train\`/\`sweep\` resumes it from the newest checkpoint its metrics cover (or from step 0)`,
    );
  }
  return actions;
}

/** Move the whole run folder to <root>/quarantine/<id>.<time>; returns where it went. */
export function quarantineRun(store: RunStore, id: string): string {
  const qdir = path.join(store.root, QUARANTINE_DIR);
  fs.mkdirSync(qdir, { recursive: true });
  const to = path.join(qdir, `${id}.${stamp()}`);
  fs.renameSync(store.dirOf(id), to);
  fsyncDir(store.root);
  fsyncDir(qdir);
  return to;
}

/** Move <runDir>/<name> to <runDir>/quarantine/<name>.<time> (copy instead of move: keep the original in place). */
export function quarantineInRun(runDir: string, name: string, copy = false): string {
  const qdir = path.join(runDir, QUARANTINE_DIR);
  fs.mkdirSync(qdir, { recursive: true });
  const to = path.join(qdir, `${name}.${stamp()}`);
  if (copy) fs.copyFileSync(path.join(runDir, name), to);
  else fs.renameSync(path.join(runDir, name), to);
  fsyncDir(qdir);
  fsyncDir(runDir);
  return path.relative(path.dirname(runDir), to);
}

/** Move a checkpoint that cannot be restored into the run's quarantine; returns where it went. */
export function quarantineCheckpoint(run: Run, ref: CheckpointRef): string {
  return quarantineInRun(run.dir, path.basename(ref.dir));
}

function hasChecksums(ref: CheckpointRef): boolean {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(ref.dir, 'checkpoint.json'), 'utf8')) as { sha256?: unknown };
    return typeof m.sha256 === 'object' && m.sha256 !== null;
  } catch {
    return false;
  }
}

/** The complete, parseable lines before the first corrupt one. */
function goodPrefix(text: string): { text: string; rows: number } {
  const lines = text.split('\n').slice(0, -1);
  const keep: string[] = [];
  for (const l of lines) {
    if (l.trim() === '') continue;
    try {
      const o = JSON.parse(l) as { step?: unknown };
      if (o === null || typeof o !== 'object' || !Number.isSafeInteger(o.step)) break;
    } catch {
      break;
    }
    keep.push(l);
  }
  return { text: keep.map((l) => l + '\n').join(''), rows: keep.length };
}

let lastStamp = '';
/** A time stamp usable in file names, unique within the process. */
function stamp(): string {
  let s = new Date().toISOString().replace(/[:.]/g, '-');
  if (s <= lastStamp) s = `${lastStamp}-1`;
  lastStamp = s;
  return s;
}

/**
 * What a writer (the trainer) needs to know before training run `id`: `done` when it is
 * complete and verified (serve it as cached); otherwise the problems found (empty for a
 * healthy unfinished or absent run). Never throws for damaged files.
 */
export function inspectRun(store: RunStore, id: string): { done: Run | null; check: RunCheck | null } {
  if (!fs.existsSync(store.dirOf(id))) return { done: null, check: null };
  const check = checkRun(store, id, { checkpoints: false });
  const doneHealthy =
    check.state === 'done' &&
    !check.problems.some((p) => p.file === SPEC_FILE || p.file === STATUS_FILE || p.file === METRICS_FILE);
  return { done: doneHealthy ? (store.get(id) ?? null) : null, check };
}

/** True when the store holds run `id` done, with verified metrics (damaged files count as not done). */
export function isVerifiedDone(store: RunStore, id: string): boolean {
  return inspectRun(store, id).done !== null;
}
