/**
 * Exclusive claims: one writer per run (issue 18). A claim is a lock file created atomically
 * (a complete temporary file hard-linked to the lock's name: link() fails if the name exists,
 * also on NFS) that names its holder: host, pid, start time, an optional scheduler job id
 * (SLURM job/task), a random token, and a heartbeat time that the holder refreshes.
 *
 *   const r = tryClaim(file);                 // {ok: true, claim} or {ok: false, holder}
 *   const c = await acquireClaim(file, { signal, onWait });   // waits for a live holder
 *   c.check();                                // throws ClaimLostError if someone took it over
 *   c.heartbeat();                            // refresh (startHeartbeat() does it on a timer)
 *   c.release();
 *   inspectClaim(file);                       // who holds it, alive or not, and why
 *
 * A claim whose holder is dead is taken over: on the same host when its pid is gone; on any
 * host when its heartbeat is older than `staleAfterMs`. Takeover is serialised by a second,
 * short-lived lock (<file>.takeover), and the stale lock is removed only if it still holds
 * the token that was judged dead, so two contenders never both win.
 *
 * Residual races, documented rather than hidden: a holder whose heartbeat stalls for longer
 * than staleAfterMs (a machine suspended, a clock jumping) can be taken over while alive; it
 * notices at its next check()/heartbeat() and stops (ClaimLostError) without writing more.
 * A process that dies inside the takeover window (milliseconds) leaves a takeover lock that
 * others remove once it is older than `takeoverStaleMs`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fsyncDir, tmpPathFor, writeFileAtomic, writeFileDurable } from '../fsx.js';

export interface ClaimHolder {
  host: string;
  pid: number;
  /** ISO time the claim was made */
  startedAt: string;
  /** ISO time of the holder's last heartbeat */
  heartbeatAt: string;
  /** random; tells this claim from a later one by the same pid */
  token: string;
  /** scheduler job (e.g. SLURM "1234_7"), when there is one */
  job?: string;
}

export interface ClaimOptions {
  /** a holder on another host (or this one) whose heartbeat is older than this is dead (default 10 min) */
  staleAfterMs?: number;
  /** how often startHeartbeat() refreshes (default 30 s) */
  heartbeatMs?: number;
  /** a takeover lock older than this is removed (default 30 s) */
  takeoverStaleMs?: number;
  /** scheduler job id recorded in the claim (default: $SLURM_JOB_ID[_$SLURM_ARRAY_TASK_ID]) */
  job?: string;
}

export interface ClaimInspection {
  holder: ClaimHolder;
  alive: boolean;
  /** why the holder counts as dead (or 'alive') */
  reason: string;
}

export class ClaimLostError extends Error {
  constructor(
    readonly file: string,
    readonly by: ClaimHolder | undefined,
  ) {
    super(
      `${file}: this process no longer holds the claim${by ? ` (now held by ${describeHolder(by)})` : ' (the lock is gone)'}; stopped without writing`,
    );
    this.name = 'ClaimLostError';
  }
}

export class ClaimWaitAborted extends Error {
  constructor(readonly file: string) {
    super(`${file}: stopped while waiting for the claim`);
    this.name = 'ClaimWaitAborted';
  }
}

const DEFAULTS = { staleAfterMs: 10 * 60_000, heartbeatMs: 30_000, takeoverStaleMs: 30_000 };

function slurmJob(): string | undefined {
  const j = process.env.SLURM_JOB_ID;
  if (!j) return undefined;
  const t = process.env.SLURM_ARRAY_TASK_ID;
  return t ? `${j}_${t}` : j;
}

export function describeHolder(h: ClaimHolder): string {
  return `pid ${h.pid} on ${h.host}${h.job ? ` (job ${h.job})` : ''} since ${h.startedAt}, last heartbeat ${h.heartbeatAt}`;
}

/** Whether a process of this host is alive (EPERM: alive, owned by another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The holder recorded in `file`, undefined when there is no lock; a garbled lock gives a placeholder holder aged by its mtime. */
function readHolder(file: string): ClaimHolder | undefined {
  let text: string;
  let mtime: Date;
  try {
    text = fs.readFileSync(file, 'utf8');
    mtime = fs.statSync(file).mtime;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const h = JSON.parse(text) as ClaimHolder;
    if (
      typeof h.host === 'string' &&
      Number.isInteger(h.pid) &&
      typeof h.token === 'string' &&
      typeof h.heartbeatAt === 'string'
    )
      return h;
  } catch {
    // fall through
  }
  // not written by this module (creation is atomic): judge it by its age only
  return {
    host: '?',
    pid: -1,
    startedAt: mtime.toISOString(),
    heartbeatAt: mtime.toISOString(),
    token: `garbled:${text.length}`,
  };
}

function judge(h: ClaimHolder, staleAfterMs: number, now = Date.now()): { alive: boolean; reason: string } {
  const age = now - Date.parse(h.heartbeatAt);
  if (!(age <= staleAfterMs))
    return {
      alive: false,
      reason: `heartbeat ${Math.round(age / 1000)} s old (limit ${Math.round(staleAfterMs / 1000)} s)`,
    };
  if (h.host === os.hostname() && h.pid !== process.pid && !isAlive(h.pid))
    return { alive: false, reason: `process ${h.pid} is gone` };
  return { alive: true, reason: 'alive' };
}

/** Who holds `file`, and whether they count as alive; undefined when nobody does. */
export function inspectClaim(file: string, opts: ClaimOptions = {}): ClaimInspection | undefined {
  const h = readHolder(file);
  if (!h) return undefined;
  return { holder: h, ...judge(h, opts.staleAfterMs ?? DEFAULTS.staleAfterMs) };
}

/** Create `file` with `content` iff it does not exist, atomically (complete when it appears). */
function createExclusive(file: string, content: string): boolean {
  const tmp = tmpPathFor(file);
  writeFileDurable(tmp, content);
  try {
    fs.linkSync(tmp, file);
    fsyncDir(path.dirname(file));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

export class Claim {
  private lastBeat = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private released = false;
  /** set when a timer heartbeat found the claim lost (reported by the next check()) */
  private lost: ClaimLostError | undefined;

  constructor(
    readonly file: string,
    private holderNow: ClaimHolder,
    private readonly opts: Required<Pick<ClaimOptions, 'heartbeatMs'>>,
  ) {}

  get holder(): ClaimHolder {
    return this.holderNow;
  }

  /** Throw ClaimLostError unless the lock still holds this claim's token. Call before writing. */
  check(): void {
    if (this.lost) throw this.lost;
    const h = readHolder(this.file);
    if (!h || h.token !== this.holderNow.token) {
      this.lost = new ClaimLostError(this.file, h);
      throw this.lost;
    }
  }

  /** Verify ownership and record a new heartbeat time (atomic rewrite of the lock). */
  heartbeat(): void {
    this.check();
    this.holderNow = { ...this.holderNow, heartbeatAt: new Date().toISOString() };
    writeFileAtomic(this.file, JSON.stringify(this.holderNow) + '\n');
    this.lastBeat = Date.now();
  }

  /** Heartbeat when one is due (cheap to call at every training step). */
  beatIfDue(): void {
    if (Date.now() - this.lastBeat >= this.opts.heartbeatMs) this.heartbeat();
  }

  /** Heartbeat on a timer (unref'd: it never keeps the process alive) until release(). */
  startHeartbeat(): void {
    if (this.timer || this.released) return;
    this.timer = setInterval(() => {
      try {
        this.heartbeat();
      } catch (e) {
        if (e instanceof ClaimLostError) this.lost = e;
        // other I/O errors: the next check() or heartbeat() reports them
      }
    }, this.opts.heartbeatMs);
    this.timer.unref();
  }

  /** Remove the lock if it is still this claim's. Idempotent. */
  release(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.released) return;
    this.released = true;
    const h = readHolder(this.file);
    if (h && h.token === this.holderNow.token) {
      fs.rmSync(this.file, { force: true });
      fsyncDir(path.dirname(this.file));
    }
  }
}

export type ClaimAttempt =
  | { ok: true; claim: Claim /** the dead holder whose claim was taken over */; tookOver?: ClaimInspection }
  | { ok: false; holder: ClaimHolder };

/** One attempt: claim `file` if free or held by a dead holder; never waits. */
export function tryClaim(file: string, opts: ClaimOptions = {}): ClaimAttempt {
  const o = { ...DEFAULTS, ...opts };
  const now = new Date().toISOString();
  const me: ClaimHolder = {
    host: os.hostname(),
    pid: process.pid,
    startedAt: now,
    heartbeatAt: now,
    token: randomBytes(8).toString('hex'),
    ...((opts.job ?? slurmJob()) ? { job: opts.job ?? slurmJob() } : {}),
  };
  const content = JSON.stringify(me) + '\n';
  fs.mkdirSync(path.dirname(file), { recursive: true });
  for (let attempt = 0; attempt < 3; attempt++) {
    if (createExclusive(file, content)) return { ok: true, claim: new Claim(file, me, o) };
    const seen = inspectClaim(file, o);
    if (!seen) continue; // released in between: try again
    if (seen.alive) return { ok: false, holder: seen.holder };
    // dead holder: take over under the takeover lock, only if the lock still holds that token
    const guard = `${file}.takeover`;
    if (!createExclusive(guard, content)) {
      try {
        if (Date.now() - fs.statSync(guard).mtimeMs > o.takeoverStaleMs) fs.rmSync(guard, { force: true });
      } catch {
        // gone meanwhile
      }
      return { ok: false, holder: seen.holder };
    }
    try {
      const again = readHolder(file);
      if (again && again.token !== seen.holder.token) {
        const j = judge(again, o.staleAfterMs);
        if (j.alive) return { ok: false, holder: again };
        continue; // another dead holder (rare): judge it on the next attempt
      }
      fs.rmSync(file, { force: true });
      if (createExclusive(file, content)) return { ok: true, claim: new Claim(file, me, o), tookOver: seen };
    } finally {
      fs.rmSync(guard, { force: true });
    }
  }
  const h = readHolder(file);
  return h ? { ok: false, holder: h } : tryClaim(file, opts);
}

export interface AcquireOptions extends ClaimOptions {
  /** stop waiting (ClaimWaitAborted) */
  signal?: AbortSignal;
  /** called once per distinct holder while waiting */
  onWait?: (holder: ClaimHolder) => void;
  /** called when a dead holder's claim was taken over */
  onTakeover?: (dead: ClaimInspection) => void;
  /** poll interval while waiting (default 500 ms) */
  pollMs?: number;
}

/** Claim `file`, waiting while a live holder has it. */
export async function acquireClaim(file: string, opts: AcquireOptions = {}): Promise<Claim> {
  let told = '';
  for (;;) {
    if (opts.signal?.aborted) throw new ClaimWaitAborted(file);
    const r = tryClaim(file, opts);
    if (r.ok) {
      if (r.tookOver) opts.onTakeover?.(r.tookOver);
      return r.claim;
    }
    if (r.holder.token !== told) {
      told = r.holder.token;
      opts.onWait?.(r.holder);
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, opts.pollMs ?? 500);
      function done() {
        clearTimeout(t);
        opts.signal?.removeEventListener('abort', done);
        resolve();
      }
      opts.signal?.addEventListener('abort', done, { once: true });
    });
  }
}

/** Lock files are named <something>.lock; their temporaries carry TMP_MARK (cleaned like any other). */
export const CLAIM_SUFFIX = '.lock';
