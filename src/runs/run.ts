/**
 * One run's folder: spec.json, status.json, metrics.jsonl and checkpoints (ckpt-<step>/).
 * See docs/runs.md for the layout and the crash-safety guarantees.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { RunSpec } from './id.js';
import type { Provenance, ReplayProbe } from './provenance.js';
import type { ImportedRunSpec } from './import.js';
import {
  TMP_MARK,
  tmpPathFor,
  appendDurable,
  fsyncDir,
  readJson,
  repairTornTail,
  writeFileAtomic,
  writeFileDurable,
  writeJsonAtomic,
} from '../fsx.js';

/** diverged: training stopped on a non-finite or exploding loss (a result, not a failure: see status.divergence) */
export type RunState = 'running' | 'done' | 'failed' | 'diverged';
export const RUN_STATES: readonly RunState[] = ['running', 'done', 'failed', 'diverged'];

export interface RunStatus {
  state: RunState;
  /** ISO time the run folder was created */
  startedAt: string;
  /** ISO time of the last status write */
  updatedAt: string;
  /** ISO time the run reached done/failed (set automatically) */
  finishedAt?: string;
  /** failure message when state = failed */
  error?: string;
  /** process and host that last set the status (to tell an interrupted run from a live one) */
  pid?: number;
  host?: string;
  /** state done: metrics.jsonl as it was when the run finished (set automatically by setStatus) */
  metricsSeal?: MetricsSeal;
  /** what trained the run: code, kernels, backend, dependencies, machine (src/runs/provenance.ts) */
  provenance?: Provenance;
  /** code fingerprints the run was trained under, in order (more than one: resumed under other code) */
  trainedWith?: string[];
  /** per-step training losses of the first steps, for the stale check's replay */
  probe?: ReplayProbe;
  [k: string]: unknown;
}

/** What metrics.jsonl held when a run became done: a done run is only served if it still does. */
export interface MetricsSeal {
  /** complete lines */
  rows: number;
  bytes: number;
  /** step of the last row (null: no rows) */
  lastStep: number | null;
  sha256: string;
}

/** checkpoint.json: sizes and (since checksums were added) sha256 of every file of the checkpoint. */
export interface CheckpointManifest {
  step: number;
  files: Record<string, number>;
  /** absent in checkpoints saved before checksums (sizes are still checked) */
  sha256?: Record<string, string>;
  savedAt?: string;
  /** kept for good, never pruned (a cooldown fork point); absent otherwise */
  kept?: boolean;
}

/** A checkpoint whose files do not match its manifest (or that has none): never restored. */
export class CheckpointCorruptError extends Error {
  constructor(
    readonly dir: string,
    readonly reason: string,
  ) {
    super(`checkpoint ${dir}: ${reason}`);
    this.name = 'CheckpointCorruptError';
  }
}

export type StatusUpdate = Partial<RunStatus> & { state: RunState };

/** One evaluation point. One row per step: a later row for the same step replaces the earlier one. */
export interface MetricRow {
  step: number;
  /** training tokens seen so far */
  tokens: number;
  /** model FLOPs so far (forward + backward) */
  flops: number;
  /** wall-clock training seconds so far */
  seconds: number;
  trainLoss: number | null;
  valLoss: number | null;
  lr: number;
  [k: string]: unknown;
}

export interface CheckpointRef {
  step: number;
  dir: string;
  /** kept for good, never pruned (saveCheckpoint's `keep`): e.g. the fork points of cooldown forks */
  kept?: boolean;
}

export type CheckpointFiles = Record<string, Uint8Array | Buffer | string>;

export const SPEC_FILE = 'spec.json';
export const STATUS_FILE = 'status.json';
export const METRICS_FILE = 'metrics.jsonl';
/** written inside every checkpoint folder, last before the folder is renamed into place */
export const CHECKPOINT_MANIFEST = 'checkpoint.json';

const CKPT_RE = /^ckpt-(\d+)$/;
const CKPT_JUNK_RE = /^ckpt-(\d+)\.(tmp|old|del)$/;
const FILE_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

export interface RunOptions {
  /** checkpoints kept after each save (default 2: the newest and the one before) */
  keepCheckpoints?: number;
}

export class Run {
  readonly keepCheckpoints: number;

  constructor(
    readonly id: string,
    readonly dir: string,
    /** a trained run's spec, or an imported run's (ceg import: no model/train/data) */
    readonly spec: RunSpec | ImportedRunSpec,
    opts: RunOptions = {},
  ) {
    const keep = opts.keepCheckpoints ?? 2;
    if (!Number.isInteger(keep) || keep < 1) throw new Error(`keepCheckpoints must be an integer >= 1, got ${keep}`);
    this.keepCheckpoints = keep;
  }

  // ---------------------------------------------------------------- status

  status(): RunStatus {
    const file = path.join(this.dir, STATUS_FILE);
    const s = readJson<RunStatus>(file);
    if (!s) throw new Error(`run ${this.id}: ${file} is missing`);
    if (!RUN_STATES.includes(s.state))
      throw new Error(
        `run ${this.id}: bad state ${JSON.stringify(s.state)} in ${file}; valid: ${RUN_STATES.join(', ')}`,
      );
    return s;
  }

  /**
   * Merge `update` over the current status and write it atomically. Going to done/failed sets
   * finishedAt (unless given); going back to running clears finishedAt and error.
   */
  setStatus(update: StatusUpdate): RunStatus {
    if (!RUN_STATES.includes(update.state))
      throw new Error(`unknown run state ${JSON.stringify(update.state)}; valid: ${RUN_STATES.join(', ')}`);
    const now = new Date().toISOString();
    let prev: Partial<RunStatus> = {};
    try {
      prev = this.status();
    } catch {
      // a missing or unreadable status is replaced
    }
    const next: RunStatus = {
      ...prev,
      startedAt: prev.startedAt ?? now,
      ...update,
      updatedAt: now,
      pid: process.pid,
      host: os.hostname(),
    };
    if (update.state === 'running') {
      if (!('finishedAt' in update)) delete next.finishedAt;
      if (!('error' in update)) delete next.error;
    } else {
      next.finishedAt = update.finishedAt ?? now;
    }
    // a done run records what its metrics were when it finished (verified by src/runs/verify.ts)
    if (update.state === 'done' && !('metricsSeal' in update)) next.metricsSeal = metricsSeal(this.metricsFile);
    writeJsonAtomic(path.join(this.dir, STATUS_FILE), next);
    return next;
  }

  isDone(): boolean {
    return this.status().state === 'done';
  }

  // ---------------------------------------------------------------- metrics

  get metricsFile(): string {
    return path.join(this.dir, METRICS_FILE);
  }

  /**
   * Append rows (one JSON line each, in a single write, then fsync). A torn last line left by
   * an earlier kill is cut off first, so a new row never lands glued to a half row.
   */
  appendMetrics(rows: MetricRow[]): void {
    if (rows.length === 0) return;
    rows.forEach((r, i) => checkRow(r, i));
    repairTornTail(this.metricsFile);
    appendDurable(this.metricsFile, rows.map(encodeRow).join(''));
  }

  /**
   * All rows, sorted by step, keeping the LAST row written for each step (rows repeated by a
   * resume without truncation are thus harmless). A torn final line is ignored; a corrupt line
   * anywhere else is an error naming the file and line.
   */
  metrics(): MetricRow[] {
    const byStep = new Map<number, MetricRow>();
    for (const { row } of readMetricLines(this.metricsFile)) byStep.set(row.step, row);
    return [...byStep.values()].sort((a, b) => a.step - b.step);
  }

  /**
   * Drop every row with step > `step` (atomic rewrite). Call it when resuming from the
   * checkpoint at `step`, so that the resumed run ends with exactly the rows of an
   * uninterrupted one. Pass -1 to drop all rows. Returns the number of lines removed.
   */
  truncateMetricsAfter(step: number): number {
    const lines = readMetricLines(this.metricsFile);
    const keep = lines.filter((l) => l.row.step <= step);
    const total = countLines(this.metricsFile);
    if (keep.length === total) return 0;
    writeFileAtomic(this.metricsFile, keep.map((l) => l.text + '\n').join(''));
    return total - keep.length;
  }

  // ---------------------------------------------------------------- checkpoints

  /**
   * Save a checkpoint for `step`: files go to ckpt-<step>.tmp/ (each fsynced, plus a
   * checkpoint.json manifest), the folder is renamed to ckpt-<step>/, then checkpoints beyond
   * the newest `keepCheckpoints` are removed. A reader sees the old set or the new one, never
   * a partial checkpoint. Save a step's metric rows BEFORE its checkpoint (see resume()).
   */
  saveCheckpoint(step: number, files: CheckpointFiles, opts: { keep?: boolean } = {}): CheckpointRef {
    if (!Number.isSafeInteger(step) || step < 0)
      throw new Error(`checkpoint step must be a non-negative integer, got ${step}`);
    const names = Object.keys(files);
    for (const n of names) {
      if (!FILE_NAME_RE.test(n) || n === CHECKPOINT_MANIFEST || n.includes(TMP_MARK))
        throw new Error(
          `bad checkpoint file name ${JSON.stringify(n)}: use letters, digits, '.', '_', '-' (no folders), not starting with '.' or '-', and not "${CHECKPOINT_MANIFEST}"`,
        );
    }
    const final = path.join(this.dir, `ckpt-${step}`);
    // unique per writer (.ckpt-<step>.tmp-<pid>-<rand>, cleaned by repair() like any temporary)
    const tmp = tmpPathFor(final);
    const old = `${final}.old`;
    fs.mkdirSync(tmp);
    const sizes: Record<string, number> = {};
    const sha256: Record<string, string> = {};
    for (const n of names) {
      const v = files[n];
      const data = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
      writeFileDurable(path.join(tmp, n), data);
      sizes[n] = data.byteLength;
      sha256[n] = sha256Hex(data);
    }
    const manifest: CheckpointManifest = {
      step,
      files: sizes,
      sha256,
      savedAt: new Date().toISOString(),
      ...(opts.keep ? { kept: true } : {}),
    };
    writeFileDurable(path.join(tmp, CHECKPOINT_MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
    fsyncDir(tmp);
    if (fs.existsSync(final)) {
      // replacing a checkpoint of the same step: move it aside first (a rename cannot replace a non-empty folder)
      fs.rmSync(old, { recursive: true, force: true });
      fs.renameSync(final, old);
    }
    fs.renameSync(tmp, final);
    fsyncDir(this.dir);
    fs.rmSync(old, { recursive: true, force: true });
    this.pruneCheckpoints();
    return { step, dir: final, ...(opts.keep ? { kept: true } : {}) };
  }

  /** Complete checkpoints, oldest first. */
  checkpoints(): CheckpointRef[] {
    let entries: string[];
    try {
      entries = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: CheckpointRef[] = [];
    for (const e of entries) {
      const m = CKPT_RE.exec(e);
      const manifest = m ? path.join(this.dir, e, CHECKPOINT_MANIFEST) : '';
      if (m && fs.existsSync(manifest)) {
        let kept = false;
        try {
          kept = readJson<{ kept?: boolean }>(manifest)?.kept === true;
        } catch {
          // an unreadable manifest: listed all the same (loadCheckpoint and the integrity check report it), not kept
        }
        out.push({ step: Number(m[1]), dir: path.join(this.dir, e), ...(kept ? { kept } : {}) });
      }
    }
    return out.sort((a, b) => a.step - b.step);
  }

  latestCheckpoint(): CheckpointRef | undefined {
    return this.checkpoints().at(-1);
  }

  /** The complete checkpoint of exactly this step, if there is one (a cooldown fork's starting point). */
  checkpointAt(step: number): CheckpointRef | undefined {
    return this.checkpoints().find((c) => c.step === step);
  }

  /**
   * Read a checkpoint's files (default: the latest), checking every file's size and (for
   * checkpoints saved with checksums) its sha256 against the manifest. Undefined when there is
   * none; a CheckpointCorruptError naming the file when anything does not match.
   */
  loadCheckpoint(
    ref: CheckpointRef | undefined = this.latestCheckpoint(),
  ): { step: number; files: Record<string, Buffer> } | undefined {
    if (!ref) return undefined;
    const file = path.join(ref.dir, CHECKPOINT_MANIFEST);
    let manifest: CheckpointManifest | undefined;
    try {
      manifest = readJson<CheckpointManifest>(file);
    } catch (e) {
      throw new CheckpointCorruptError(ref.dir, (e as Error).message);
    }
    if (!manifest) throw new CheckpointCorruptError(ref.dir, `no ${CHECKPOINT_MANIFEST}`);
    if (
      manifest === null ||
      typeof manifest !== 'object' ||
      typeof manifest.files !== 'object' ||
      manifest.files === null ||
      manifest.step !== ref.step
    )
      throw new CheckpointCorruptError(ref.dir, `${CHECKPOINT_MANIFEST} is not a manifest of step ${ref.step}`);
    const files: Record<string, Buffer> = {};
    for (const [n, size] of Object.entries(manifest.files)) {
      if (!FILE_NAME_RE.test(n))
        throw new CheckpointCorruptError(ref.dir, `bad file name ${JSON.stringify(n)} in ${CHECKPOINT_MANIFEST}`);
      let b: Buffer;
      try {
        b = fs.readFileSync(path.join(ref.dir, n));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT')
          throw new CheckpointCorruptError(ref.dir, `${n} is missing`);
        throw e;
      }
      if (b.byteLength !== size)
        throw new CheckpointCorruptError(ref.dir, `${n} has ${b.byteLength} bytes, the manifest says ${size}`);
      const want = manifest.sha256?.[n];
      if (want !== undefined && sha256Hex(b) !== want)
        throw new CheckpointCorruptError(ref.dir, `${n} does not match its sha256 in the manifest (corrupted)`);
      files[n] = b;
    }
    return { step: manifest.step, files };
  }

  /**
   * Prepare to continue an interrupted run: take the latest checkpoint (if any), drop metric
   * rows after its step (all rows when there is no checkpoint: the run restarts from scratch),
   * and set the state back to running. Returns the checkpoint to restore, or undefined.
   */
  resume(): CheckpointRef | undefined {
    const ck = this.latestCheckpoint();
    this.truncateMetricsAfter(ck ? ck.step : -1);
    this.setStatus({ state: 'running' });
    return ck;
  }

  /**
   * Clean what a crash can leave behind (called by RunStore.open, i.e. by a writer):
   * temporary files, ckpt-*.tmp / *.del folders, a replaced checkpoint moved aside (*.old)
   * whose replacement never landed (renamed back), a torn last metrics line (cut off), and
   * checkpoints beyond keepCheckpoints (pruned).
   */
  repair(): { removed: string[]; tornBytes: number } {
    const removed: string[] = [];
    for (const e of fs.readdirSync(this.dir)) {
      const full = path.join(this.dir, e);
      if (e.startsWith('.') && e.includes(TMP_MARK)) {
        fs.rmSync(full, { recursive: true, force: true });
        removed.push(e);
        continue;
      }
      const m = CKPT_JUNK_RE.exec(e);
      if (!m) continue;
      const final = path.join(this.dir, `ckpt-${m[1]}`);
      if (m[2] === 'old' && !fs.existsSync(final)) {
        fs.renameSync(full, final);
        continue;
      }
      fs.rmSync(full, { recursive: true, force: true });
      removed.push(e);
    }
    const tornBytes = repairTornTail(this.metricsFile);
    if (removed.length) fsyncDir(this.dir);
    // a kill between renaming a new checkpoint into place and pruning leaves one too many
    this.pruneCheckpoints();
    return { removed, tornBytes };
  }

  private pruneCheckpoints(): void {
    const all = this.checkpoints().filter((c) => !c.kept); // kept checkpoints are never pruned
    const drop = all.slice(0, Math.max(0, all.length - this.keepCheckpoints));
    for (const c of drop) {
      // rename first (atomic), so a kill during the recursive delete never leaves a half checkpoint named ckpt-N
      const del = `${c.dir}.del`;
      fs.rmSync(del, { recursive: true, force: true });
      fs.renameSync(c.dir, del);
    }
    if (drop.length) fsyncDir(this.dir);
    for (const c of drop) fs.rmSync(`${c.dir}.del`, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ metric lines

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The seal of a metrics file as it is now (rows = complete lines). */
export function metricsSeal(file: string): MetricsSeal {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') buf = Buffer.alloc(0);
    else throw e;
  }
  const text = buf.toString('utf8');
  const lines = text
    .split('\n')
    .slice(0, -1)
    .filter((l) => l.trim() !== '');
  let lastStep: number | null = null;
  try {
    const s = lines.length ? (JSON.parse(lines[lines.length - 1]) as { step?: unknown }).step : null;
    lastStep = typeof s === 'number' ? s : null;
  } catch {
    lastStep = null;
  }
  return { rows: lines.length, bytes: buf.byteLength, lastStep, sha256: sha256Hex(buf) };
}

const NUMERIC_FIELDS = ['tokens', 'flops', 'seconds', 'lr'] as const;

function checkRow(r: MetricRow, i: number): void {
  const bad = (field: string, want: string) =>
    new Error(`metric row ${i}: ${field} must be ${want}, got ${JSON.stringify(r[field]) ?? String(r[field])}`);
  if (r === null || typeof r !== 'object')
    throw new Error(`metric row ${i} must be an object, got ${JSON.stringify(r)}`);
  if (!Number.isSafeInteger(r.step) || r.step < 0) throw bad('step', 'a non-negative integer');
  for (const f of NUMERIC_FIELDS)
    if (typeof r[f] !== 'number' || !Number.isFinite(r[f])) throw bad(f, 'a finite number');
  for (const f of ['trainLoss', 'valLoss'] as const)
    if (r[f] !== null && typeof r[f] !== 'number') throw bad(f, 'a number or null');
}

/** Non-finite numbers (a diverged loss) are stored as the strings "NaN", "Infinity", "-Infinity". */
export function encodeRow(r: MetricRow): string {
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) o[k] = typeof v === 'number' && !Number.isFinite(v) ? String(v) : v;
  return JSON.stringify(o) + '\n';
}

const NON_FINITE: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

function decodeRow(o: Record<string, unknown>): MetricRow {
  for (const [k, v] of Object.entries(o)) if (typeof v === 'string' && v in NON_FINITE) o[k] = NON_FINITE[v];
  return o as MetricRow;
}

export interface MetricLine {
  text: string;
  row: MetricRow;
}

export function readMetricLines(file: string): MetricLine[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const parts = text.split('\n');
  // parts.at(-1) is '' when the file ends with a newline, else a torn line: ignored
  const complete = parts.slice(0, -1);
  const out: MetricLine[] = [];
  complete.forEach((line, i) => {
    if (line.trim() === '') return;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: corrupt metric line (${(e as Error).message}): ${line.slice(0, 80)}`);
    }
    if (o === null || typeof o !== 'object' || !Number.isSafeInteger((o as MetricRow).step))
      throw new Error(`${file}:${i + 1}: metric line without an integer step: ${line.slice(0, 80)}`);
    out.push({ text: line, row: decodeRow(o as Record<string, unknown>) });
  });
  return out;
}

function countLines(file: string): number {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').length - 1;
  } catch {
    return 0;
  }
}
