/**
 * The run store: a folder of runs named by their config hash (see ./id.ts).
 *   <root>/<id>/spec.json, status.json, metrics.jsonl, ckpt-<step>/, labels.json (optional)
 * Root defaults to $CEG_RUNS or <project>/data/runs. open() is for the process that trains a run (it
 * creates and repairs); get(), list(), find() and table() only read, so a report may run
 * while training goes on.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultRunsRoot } from '../paths.js';
import { createHash, randomBytes } from 'node:crypto';
import * as aq from 'arquero';
import type { RunSpec } from './id.js';
import { canonicalJson, isRunId, runId, validateRunSpec } from './id.js';
import { isImportedSpec, type ImportedRow, type ImportedRunSpec } from './import.js';
import { TMP_MARK, fsyncDir, readJson, writeFileDurable, writeJsonAtomic } from '../fsx.js';
import type { RunOptions, RunState, RunStatus } from './run.js';
import { METRICS_FILE, Run, SPEC_FILE, STATUS_FILE, encodeRow } from './run.js';
import type { RunRecord } from './record.js';
import { doneProblems, formatProblems } from './verify.js';
import {
  CLAIM_SUFFIX,
  acquireClaim,
  inspectClaim,
  isAlive,
  tryClaim,
  type AcquireOptions,
  type Claim,
  type ClaimAttempt,
  type ClaimInspection,
  type ClaimOptions,
} from './claim.js';

/** Other (innovation, scale) labels under which the same run was opened. */
export const LABELS_FILE = 'labels.json';
/** Where archive() moves stale runs (not a run id, so list() never sees them). */
export const STALE_DIR = '.stale';

/**
 * A run by name: an innovation at a scale, optionally one seed. The store's labels (a run's own
 * and the others it was opened under, labels.json) are RunRefs without a seed; text
 * ("rope@micro", "rope@micro#2") exists only at the CLI's edge (src/cli/run-ref.ts).
 */
export interface RunRef {
  innovation: string;
  scale: string;
  seed?: number;
}

/** Every name a run answers to: its own (innovation, scale) first, then its aliases. */
export function labelsOf(s: Pick<RunSummary, 'innovation' | 'scale' | 'aliases'>): RunRef[] {
  return [{ innovation: s.innovation, scale: s.scale }, ...s.aliases];
}

/** One run folder as the store lists it: the run's identity (RunRecord's) and its stored status, without its metric rows. */
export interface RunSummary extends Pick<RunRecord, 'id' | 'innovation' | 'scale' | 'seed' | 'backend'> {
  /** stored state, or 'corrupt' when the run folder cannot be read or a done run's metrics fail verification (see error) */
  state: RunState | 'corrupt';
  /** state is running but the recorded process (on this host) is gone: killed, crashed */
  interrupted: boolean;
  /** planned optimizer steps (train.steps) */
  totalSteps: number | null;
  /** last step with a metric row (null: no rows yet) */
  steps: number | null;
  /** rows with a validation loss */
  evals: number;
  lastValLoss: number | null;
  bestValLoss: number | null;
  /** from the last metric row */
  tokens: number | null;
  flops: number | null;
  seconds: number | null;
  checkpointStep: number | null;
  /** other labels this run was opened under (same numbers, different name) */
  aliases: RunRef[];
  startedAt: string | null;
  updatedAt: string | null;
  error: string | null;
  dir: string;
  /** 'imported' for a run read from another trainer's log (ceg import), else 'trained' */
  source: 'trained' | 'imported';
}

export type RunFilter = Partial<{
  innovation: string;
  scale: string;
  seed: number;
  backend: string;
  state: RunState | 'corrupt';
}>;

export class RunStore {
  readonly root: string;

  constructor(
    root: string = defaultRunsRoot(),
    private readonly opts: RunOptions = {},
  ) {
    this.root = path.resolve(root);
  }

  dirOf(id: string): string {
    if (!isRunId(id)) throw new Error(`bad run id ${JSON.stringify(id)}: expected 16 hex characters`);
    return path.join(this.root, id);
  }

  /**
   * Open the run for `spec`, creating it if new: the folder appears atomically with spec.json
   * and status.json {state: 'running'} already inside (built under a temporary name, renamed).
   * An existing run is returned as it is (check isDone(); call resume() to continue), after
   * cleaning what a crash left behind (Run.repair). Opening under new labels records them.
   */
  open(spec: RunSpec): Run {
    validateRunSpec(spec);
    const id = runId(spec);
    const dir = this.dirOf(id);
    fs.mkdirSync(this.root, { recursive: true });
    this.cleanRootLeftovers();
    if (!fs.existsSync(dir)) this.create(id, dir, spec);
    const stored = readJson<RunSpec>(path.join(dir, SPEC_FILE));
    if (!stored) {
      // a folder without spec.json was not made by this store (creation is atomic): adopt it
      writeJsonAtomic(path.join(dir, SPEC_FILE), spec);
    }
    const run = new Run(id, dir, stored ?? spec, this.opts);
    if (readJson<RunStatus>(path.join(dir, STATUS_FILE)) === undefined) run.setStatus({ state: 'running' });
    run.repair();
    if (stored && (stored.innovation !== spec.innovation || stored.scale !== spec.scale)) this.addLabel(dir, spec);
    return run;
  }

  /**
   * The lock file of a run's claim: <root>/.claims/<id>.lock (outside the run folder, which
   * does not exist yet when a new run is claimed; in a hidden folder, so the root still holds
   * only run folders).
   */
  claimFile(id: string): string {
    return path.join(this.root, CLAIMS_DIR, `${path.basename(this.dirOf(id))}${CLAIM_SUFFIX}`);
  }

  /**
   * Claim run `id` for writing, waiting while a live writer holds it (src/runs/claim.ts).
   * Take the claim before open(): a writer must hold it before anything is written, and
   * release it when done.
   */
  claim(id: string, opts: AcquireOptions = {}): Promise<Claim> {
    this.prepareClaims();
    return acquireClaim(this.claimFile(id), opts);
  }

  /** One claim attempt, without waiting. */
  tryClaim(id: string, opts: ClaimOptions = {}): ClaimAttempt {
    this.prepareClaims();
    return tryClaim(this.claimFile(id), opts);
  }

  private prepareClaims(): void {
    const dir = path.join(this.root, CLAIMS_DIR);
    if (!fs.existsSync(dir)) {
      // not recursive when the root exists: a recursive mkdir on a read-only file system reports
      // ENOENT instead of the EROFS/EACCES that names the real problem
      try {
        if (fs.existsSync(this.root)) fs.mkdirSync(dir);
        else fs.mkdirSync(dir, { recursive: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // another writer made it meanwhile
      }
    }
    cleanDeadTemporaries(dir);
  }

  /** Who holds run `id`'s claim, if anyone (read-only). */
  claimHolder(id: string, opts: ClaimOptions = {}): ClaimInspection | undefined {
    return inspectClaim(this.claimFile(id), opts);
  }

  /** The run with this id, or undefined if there is none (read-only: repairs nothing). */
  get(id: string): Run | undefined {
    if (!isRunId(id)) return undefined;
    const dir = path.join(this.root, id);
    const spec = readJson<RunSpec | ImportedRunSpec>(path.join(dir, SPEC_FILE));
    return spec ? new Run(id, dir, spec, this.opts) : undefined;
  }

  /** Ids of every run folder, sorted. */
  ids(): string[] {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(this.root, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    return entries
      .filter((e) => e.isDirectory() && isRunId(e.name))
      .map((e) => e.name)
      .sort();
  }

  /** Summaries of all runs (optionally filtered), sorted by scale, innovation, seed, backend, id. */
  list(filter: RunFilter = {}): RunSummary[] {
    const out = this.ids()
      .map((id) => this.summarize(id))
      .filter((s) => matches(s, filter));
    return out.sort(
      (a, b) =>
        a.scale.localeCompare(b.scale) ||
        a.innovation.localeCompare(b.innovation) ||
        a.seed - b.seed ||
        a.backend.localeCompare(b.backend) ||
        a.id.localeCompare(b.id),
    );
  }

  /** The runs matching `filter` (innovation also matches a run's aliases), in list() order. */
  find(filter: RunFilter = {}): Run[] {
    return this.list(filter)
      .filter((s) => s.state !== 'corrupt')
      .map((s) => this.get(s.id))
      .filter((r): r is Run => r !== undefined);
  }

  /** list() as an arquero table, one row per run. */
  table(filter: RunFilter = {}): aq.ColumnTable {
    const rows = this.list(filter);
    if (rows.length === 0) return aq.table(Object.fromEntries(SUMMARY_COLUMNS.map((c) => [c, []])));
    return aq.from(rows);
  }

  private summarize(id: string): RunSummary {
    const dir = path.join(this.root, id);
    const base: RunSummary = {
      id,
      innovation: '?',
      scale: '?',
      seed: -1,
      backend: '?',
      state: 'corrupt',
      interrupted: false,
      totalSteps: null,
      steps: null,
      evals: 0,
      lastValLoss: null,
      bestValLoss: null,
      tokens: null,
      flops: null,
      seconds: null,
      checkpointStep: null,
      aliases: [],
      startedAt: null,
      updatedAt: null,
      error: null,
      dir,
      source: 'trained',
    };
    try {
      const run = this.get(id);
      if (!run) return { ...base, error: `${SPEC_FILE} missing` };
      const s = run.spec;
      Object.assign(base, {
        innovation: s.innovation,
        scale: s.scale,
        seed: s.seed,
        backend: s.backend,
        totalSteps: isImportedSpec(s) ? null : (s.train?.steps ?? null),
        source: isImportedSpec(s) ? 'imported' : 'trained',
      });
      const st = run.status();
      // a done run whose metrics are not complete and verified is damaged: never listed as done
      const damage = st.state === 'done' ? doneProblems(run, st) : [];
      if (damage.length)
        return {
          ...base,
          error: `damaged: ${formatProblems(damage)}`,
          startedAt: st.startedAt ?? null,
          updatedAt: st.updatedAt ?? null,
        };
      const rows = run.metrics();
      const vals = rows.map((r) => r.valLoss).filter((v): v is number => typeof v === 'number' && !Number.isNaN(v));
      const last = rows.at(-1);
      const labels = readJson<RunRef[]>(path.join(dir, LABELS_FILE)) ?? [];
      return {
        ...base,
        state: st.state,
        interrupted: st.state === 'running' && isDeadHere(st),
        steps: last ? last.step : null,
        evals: vals.length,
        lastValLoss: vals.length ? vals[vals.length - 1] : null,
        bestValLoss: vals.length ? Math.min(...vals) : null,
        tokens: last ? last.tokens : null,
        flops: last ? last.flops : null,
        seconds: last ? last.seconds : null,
        checkpointStep: run.latestCheckpoint()?.step ?? null,
        aliases: labels.map((l) => ({ innovation: l.innovation, scale: l.scale })),
        startedAt: st.startedAt ?? null,
        updatedAt: st.updatedAt ?? null,
        error: typeof st.error === 'string' ? st.error : null,
      };
    } catch (e) {
      return { ...base, state: 'corrupt', error: (e as Error).message };
    }
  }

  /**
   * Store a run trained elsewhere (ceg import): its folder (spec.json with the source,
   * status.json done, metrics.jsonl) is built under a temporary name and renamed into place,
   * replacing an earlier import of the same run (same file content, run, labels, seed and
   * conversion) as a whole. Rows may hold NaN on axes the source does not give.
   */
  importRun(spec: ImportedRunSpec, rows: ImportedRow[]): Run {
    for (const k of ['innovation', 'scale'] as const)
      if (typeof spec[k] !== 'string' || spec[k] === '')
        throw new Error(`imported run: ${k} must be a non-empty label`);
    if (!Number.isSafeInteger(spec.seed) || spec.seed < 0)
      throw new Error(`imported run: seed must be a non-negative integer, got ${spec.seed}`);
    if (rows.length === 0) throw new Error('imported run: no metric rows');
    rows.forEach((r, i) => {
      if (!Number.isSafeInteger(r.step) || r.step < 0 || (i > 0 && !(r.step > rows[i - 1].step)))
        throw new Error(`imported run: row ${i}: step ${r.step} must be an integer increasing from >= 0`);
    });
    const id = importedRunId(spec);
    const dir = this.dirOf(id);
    fs.mkdirSync(this.root, { recursive: true });
    this.cleanRootLeftovers();
    const tmp = path.join(this.root, `.${id}${TMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`);
    fs.mkdirSync(tmp);
    try {
      const now = new Date().toISOString();
      writeFileDurable(path.join(tmp, SPEC_FILE), JSON.stringify(spec, null, 2) + '\n');
      writeFileDurable(path.join(tmp, METRICS_FILE), rows.map((r) => encodeRow(r)).join(''));
      const status: RunStatus = {
        state: 'done',
        startedAt: now,
        updatedAt: now,
        finishedAt: now,
        pid: process.pid,
        host: os.hostname(),
      };
      writeFileDurable(path.join(tmp, STATUS_FILE), JSON.stringify(status, null, 2) + '\n');
      fsyncDir(tmp);
      if (fs.existsSync(dir)) {
        const old = path.join(this.root, `.${id}${TMP_MARK}${process.pid}-old`);
        fs.renameSync(dir, old);
        fs.renameSync(tmp, dir);
        fs.rmSync(old, { recursive: true, force: true });
      } else fs.renameSync(tmp, dir);
      fsyncDir(this.root);
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
    return new Run(id, dir, spec, this.opts);
  }

  private create(id: string, dir: string, spec: RunSpec): void {
    const tmp = path.join(this.root, `.${id}${TMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`);
    fs.mkdirSync(tmp);
    try {
      const now = new Date().toISOString();
      writeFileDurable(path.join(tmp, SPEC_FILE), JSON.stringify(spec, null, 2) + '\n');
      const status: RunStatus = {
        state: 'running',
        startedAt: now,
        updatedAt: now,
        pid: process.pid,
        host: os.hostname(),
      };
      writeFileDurable(path.join(tmp, STATUS_FILE), JSON.stringify(status, null, 2) + '\n');
      fsyncDir(tmp);
      fs.renameSync(tmp, dir);
      fsyncDir(this.root);
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      const code = (e as NodeJS.ErrnoException).code;
      // another process created the same run first: use theirs
      if ((code === 'EEXIST' || code === 'ENOTEMPTY') && fs.existsSync(dir)) return;
      throw e;
    }
  }

  private addLabel(dir: string, spec: RunSpec): void {
    const file = path.join(dir, LABELS_FILE);
    const labels = readJson<RunRef[]>(file) ?? [];
    if (labels.some((l) => l.innovation === spec.innovation && l.scale === spec.scale)) return;
    labels.push({ innovation: spec.innovation, scale: spec.scale });
    writeJsonAtomic(file, labels);
  }

  /**
   * Move a run out of the store (to <root>/.stale/<id>-<time>/, kept for inspection) so that
   * the next open() of its spec starts it afresh: what `ceg train/sweep` do with a stale run.
   * Returns the new folder.
   */
  archive(id: string): string {
    const dir = this.dirOf(id);
    const dest = path.join(this.root, STALE_DIR, `${id}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.renameSync(dir, dest);
    fsyncDir(this.root);
    return dest;
  }

  /** Remove half-created run folders left by processes (on this host) that are gone. */
  private cleanRootLeftovers(): void {
    cleanDeadTemporaries(this.root);
  }
}

/** Hidden folder of the store root holding the runs' claim locks (src/runs/claim.ts). */
export const CLAIMS_DIR = '.claims';

/** Remove temporaries (.<name>.tmp-<pid>-<rand>) in `dir` left by processes (on this host) that are gone. */
function cleanDeadTemporaries(dir: string): void {
  for (const e of fs.readdirSync(dir)) {
    if (!e.startsWith('.') || !e.includes(TMP_MARK)) continue;
    const pid = Number(e.slice(e.indexOf(TMP_MARK) + TMP_MARK.length).split('-')[0]);
    if (Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) {
      fs.rmSync(path.join(dir, e), { recursive: true, force: true });
    }
  }
}

/** Every column of a run summary, in table order (`ceg runs --all` and --columns use it). */
export const SUMMARY_COLUMNS: (keyof RunSummary)[] = [
  'id',
  'innovation',
  'scale',
  'seed',
  'backend',
  'state',
  'interrupted',
  'totalSteps',
  'steps',
  'evals',
  'lastValLoss',
  'bestValLoss',
  'tokens',
  'flops',
  'seconds',
  'checkpointStep',
  'aliases',
  'startedAt',
  'updatedAt',
  'error',
  'dir',
  'source',
];

/** Id of an imported run: sha256 of its spec without the file's path (the same content from elsewhere is the same run). */
export function importedRunId(spec: ImportedRunSpec): string {
  const { file: _path, ...source } = spec.imported;
  const hashed = { imported: source, innovation: spec.innovation, scale: spec.scale, seed: spec.seed };
  return createHash('sha256').update(canonicalJson(hashed)).digest('hex').slice(0, 16);
}

function matches(s: RunSummary, f: RunFilter): boolean {
  const labels = labelsOf(s);
  const labelOk = (l: RunRef) =>
    (f.innovation === undefined || l.innovation === f.innovation) && (f.scale === undefined || l.scale === f.scale);
  if (!labels.some(labelOk)) return false;
  if (f.seed !== undefined && s.seed !== f.seed) return false;
  if (f.backend !== undefined && s.backend !== f.backend) return false;
  if (f.state !== undefined && s.state !== f.state) return false;
  return true;
}

function isDeadHere(st: RunStatus): boolean {
  return typeof st.pid === 'number' && st.host === os.hostname() && st.pid !== process.pid && !isAlive(st.pid);
}
