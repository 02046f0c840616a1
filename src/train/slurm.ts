/**
 * SLURM as an executor of sweeps (issue 16): the runs a sweep still misses become one `sbatch`
 * job array whose task i runs `ceg train` for run i into the same (shared) run store. We write
 * no scheduler: SLURM queues, places, throttles (`%N`), signals and requeues; the run store's
 * claims (src/runs/claim.ts, holder names the SLURM job/task) keep two tasks from training one
 * run, and checkpoints make a requeued or re-submitted task resume bit-for-bit.
 *
 *   const ex = slurmExecutor({ partition: 'gpu', time: '2:00:00', throttle: 8 });
 *   await ensureRuns({ ...sweep, executor: ex });   // submits, waits with progress, then reads the store
 *
 * The job folder `<store>/.slurm/<time>-<scale>-<rand>/` keeps `job.sh` (the array script, fit
 * to re-submit by hand: `sbatch job.sh`), `overrides.json` (when --config was given) and
 * `logs/<job>_<task>.out`.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { runId, writeFileAtomic, type RunSpec } from '../runs/index.js';
import { PROJECT_ROOT } from '../paths.js';
import {
  finishedState,
  progressStream,
  specOptionArgs,
  SweepError,
  EXIT_DIVERGED,
  type Executor,
  type SweepOptions,
} from './sweep.js';
import { InterruptedError, stopReason } from './trainer.js';

/** The store's folder of SLURM job folders (hidden: not a run). */
export const SLURM_DIR = '.slurm';

export interface SlurmOptions {
  partition?: string;
  account?: string;
  /** time limit per task, SLURM syntax (`30`, `2:00:00`, `1-00:00:00`) */
  time?: string;
  cpusPerTask?: number;
  gpusPerTask?: number;
  /** at most this many tasks of the array at once (`--array=0-N%throttle`) */
  throttle?: number;
  /** extra `#SBATCH` lines, e.g. `--qos=high` or `#SBATCH --constraint=a100` */
  sbatchLines?: readonly string[];
  /** lines run before `ceg train` in every task (e.g. `module load nodejs`) */
  setupLines?: readonly string[];
  /** seconds before the time limit at which SLURM warns the task (`--signal=B:USR1@N`; default 120) */
  signalLeadSeconds?: number;
  /** false: submit, print the job id and return (SlurmDetached); default true: wait until the array ends */
  wait?: boolean;
  /** how often the wait polls the store and squeue (default 5000 ms) */
  pollMs?: number;
  /** the node executable tasks run (default: this one's) */
  nodePath?: string;
  /**
   * job ids that must complete (every task COMPLETED) before this array starts
   * (`--dependency=afterok:…`, `--kill-on-invalid-dep=yes`: a failed dependency cancels the
   * array instead of leaving it pending): a study's forks submitted with --no-wait behind
   * the array of their trunks
   */
  afterOk?: readonly string[];
}

/** How each task names its run to `ceg train`: by (innovation, scale, seed) and the sweep's flags, or by id and a spec file. */
export type TaskArgs = 'named' | 'spec-file';

/** The SLURM executor, with the options it was made with (a study derives dependent arrays from them). */
export interface SlurmExecutor extends Executor {
  readonly options: SlurmOptions;
}

/** `--no-wait`: the array is submitted; the command ends here (exit 0) with this message. */
export class SlurmDetached extends Error {
  constructor(
    readonly jobId: string,
    readonly script: string,
    readonly tasks: number,
    /** nothing was submitted: every run is still in earlier arrays (jobId lists them) */
    readonly queued = false,
  ) {
    super(
      queued
        ? `the ${tasks} missing run(s) are still queued or running in SLURM job ${jobId}: nothing submitted; follow with: squeue -j ${jobId}, and run the same command again when it has ended`
        : `submitted SLURM job ${jobId} (${tasks} task${tasks === 1 ? '' : 's'}); script ${script}; follow with: squeue -j ${jobId}`,
    );
    this.name = 'SlurmDetached';
  }
}

/**
 * Runs of this store's earlier arrays whose tasks SLURM still lists (queued or running): run
 * id -> its array's job id. Read from the job folders (`job-id`, and `job.sh`'s `# run ID`
 * comment on each task's line) and squeue.
 */
export function queuedRuns(storeRoot: string): Map<string, string> {
  const out = new Map<string, string>();
  const base = path.join(path.resolve(storeRoot), SLURM_DIR);
  if (!fs.existsSync(base)) return out;
  for (const d of fs.readdirSync(base)) {
    let jobId: string;
    let script: string;
    try {
      jobId = fs.readFileSync(path.join(base, d, 'job-id'), 'utf8').trim();
      script = fs.readFileSync(path.join(base, d, 'job.sh'), 'utf8');
    } catch {
      continue; // not submitted (or not ours)
    }
    const q = squeueTasks(jobId);
    if (!q?.size) continue;
    for (const m of script.matchAll(/^ {2}(\d+)\) args=.* # run ([0-9a-f]{16})$/gm))
      if (q.has(Number(m[1]))) out.set(m[2], jobId);
  }
  return out;
}

/** sbatch/squeue missing or refusing: one message, exit 2 (nothing trained). */
export class SlurmUnavailableError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'SlurmUnavailableError';
  }
}

/** POSIX shell quoting of one word. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=,@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The `ceg train` arguments of one run (what a local child gets too). */
export function trainArgs(spec: RunSpec, o: SweepOptions, configFile: string | undefined): string[] {
  return [
    '--innovation',
    spec.innovation,
    '--scale',
    spec.scale,
    '--seed',
    String(spec.seed),
    '--backend',
    spec.backend,
    '--runs',
    path.resolve(o.store.root),
    ...specOptionArgs(o.specOptions ?? {}, configFile),
    ...(o.allowSmallCorpus ? ['--allow-small-corpus'] : []),
  ];
}

/**
 * `ceg train` arguments of an explicit run spec (a study's trunk or fork): its id and its spec
 * file in the job folder (on the shared filesystem, written before submission).
 */
export function specFileArgs(spec: RunSpec, o: SweepOptions, specFile: string): string[] {
  return [
    '--run',
    runId(spec),
    '--spec',
    specFile,
    '--runs',
    path.resolve(o.store.root),
    ...(o.allowSmallCorpus ? ['--allow-small-corpus'] : []),
  ];
}

/** Where a spec-file task's spec lives in its job folder. */
export function specFileOf(jobDir: string, spec: RunSpec): string {
  return path.join(jobDir, 'specs', `${runId(spec)}.json`);
}

/**
 * The job array script: task i trains specs[i]. Pure (tested without a cluster). With
 * `args = 'spec-file'` task i runs `ceg train --run ID --spec <jobDir>/specs/ID.json`.
 */
export function jobScript(
  specs: readonly RunSpec[],
  o: SweepOptions,
  s: SlurmOptions,
  jobDir: string,
  configFile?: string,
  args: TaskArgs = 'named',
): string {
  const argsOf = (sp: RunSpec) =>
    args === 'spec-file' ? specFileArgs(sp, o, specFileOf(jobDir, sp)) : trainArgs(sp, o, configFile);
  if (!specs.length) throw new Error('jobScript: no runs');
  const lead = s.signalLeadSeconds ?? 120;
  const sb = (line: string) => `#SBATCH ${line}`;
  // `--qos=high`, `qos=high` and `#SBATCH --qos=high` are the same line
  const extra = (s.sbatchLines ?? [])
    .map((l) => l.trim())
    .map((l) => (l.startsWith('#SBATCH') ? l : sb(l.startsWith('-') ? l : `--${l}`)));
  const node = s.nodePath ?? process.execPath;
  const main = path.join(PROJECT_ROOT, 'src', 'cli', 'main.ts');
  return [
    '#!/bin/bash',
    `# ceg sweep through SLURM: ${specs.length} run(s) at scale ${specs[0].scale}, store ${path.resolve(o.store.root)}`,
    '# written by ceg (src/train/slurm.ts); re-submit with `sbatch job.sh`: finished runs return at once',
    sb(`--job-name=ceg-${specs[0].scale}`),
    sb(`--array=0-${specs.length - 1}${s.throttle ? `%${s.throttle}` : ''}`),
    sb(`--output=${path.join(jobDir, 'logs', '%A_%a.out')}`),
    sb('--open-mode=append'),
    sb('--ntasks=1'),
    sb(`--cpus-per-task=${s.cpusPerTask ?? 1}`),
    ...(s.gpusPerTask ? [sb(`--gpus-per-task=${s.gpusPerTask}`)] : []),
    ...(s.partition ? [sb(`--partition=${s.partition}`)] : []),
    ...(s.account ? [sb(`--account=${s.account}`)] : []),
    ...(s.time ? [sb(`--time=${s.time}`)] : []),
    // the time-limit warning (USR1) reaches the batch shell only, which forwards it to ceg train
    // as SIGTERM: it checkpoints at the next step and exits 143; the task then requeues itself.
    // A plain SIGTERM (scancel, preemption) is forwarded too but never requeues here: a
    // cancelled task stays cancelled, a preempted one is requeued by SLURM itself
    sb(`--signal=B:USR1@${lead}`),
    sb('--requeue'),
    ...(s.afterOk?.length ? [sb(`--dependency=afterok:${s.afterOk.join(':')}`), sb('--kill-on-invalid-dep=yes')] : []),
    ...extra,
    '',
    'set -u',
    `cd ${shellQuote(PROJECT_ROOT)}`,
    ...(s.setupLines ?? []),
    'case "$SLURM_ARRAY_TASK_ID" in',
    ...specs.map((sp, i) => `  ${i}) args=(${argsOf(sp).map(shellQuote).join(' ')}) ;; # run ${runId(sp)}`),
    '  *) echo "[ceg] no run for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;',
    'esac',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell variables of the job script
    'task="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell variables of the job script
    'echo "[ceg] task $task on $(hostname) at $(date -u +%FT%TZ) (restart ${SLURM_RESTART_COUNT:-0}): ceg train ${args[*]}"',
    `CEG_PROGRESS=plain ${shellQuote(node)} --import tsx ${shellQuote(main)} train "\${args[@]}" &`,
    'child=$!',
    'warned=0',
    "trap 'kill -TERM $child 2>/dev/null' TERM INT",
    'trap \'warned=1; echo "[ceg] task $task: time limit near: checkpointing"; kill -TERM $child 2>/dev/null\' USR1',
    'wait $child; rc=$?',
    // wait returns early when a trapped signal arrives: wait for the trainer's own exit
    'while kill -0 $child 2>/dev/null; do wait $child; rc=$?; done',
    `if [ $rc -eq ${EXIT_DIVERGED} ]; then echo "[ceg] task $task: the run diverged (a stored result)"; exit 0; fi`,
    'if [ $warned -eq 1 ] && { [ $rc -eq 143 ] || [ $rc -eq 130 ]; }; then',
    '  echo "[ceg] task $task: stopped by a signal after a checkpoint; requeueing it (it resumes from the checkpoint)"',
    '  scontrol requeue "$task" && exit 0',
    'fi',
    'exit $rc',
    '',
  ].join('\n');
}

interface Cmd {
  status: number | null;
  stdout: string;
  stderr: string;
  error?: Error;
}

function sh(cmd: string, args: readonly string[]): Cmd {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ...(r.error ? { error: r.error } : {}) };
}

/** Submit a script with sbatch; the job id. */
export function sbatch(script: string): string {
  const r = sh('sbatch', ['--parsable', script]);
  if (r.error)
    throw new SlurmUnavailableError(
      `--executor slurm: cannot run sbatch (${r.error.message}); is SLURM installed and on PATH?`,
    );
  if (r.status !== 0)
    throw new SlurmUnavailableError(
      `--executor slurm: sbatch refused ${script}: ${r.stderr.trim() || r.stdout.trim()}`,
    );
  const id = r.stdout.trim().split(';')[0];
  if (!/^\d+$/.test(id))
    throw new SlurmUnavailableError(`--executor slurm: sbatch printed no job id (${JSON.stringify(r.stdout)})`);
  return id;
}

/** The array's tasks still known to squeue: task index -> state (PENDING, RUNNING, ...); undefined when squeue failed. */
export function squeueTasks(jobId: string): Map<number, string> | undefined {
  const r = sh('squeue', ['-h', '-r', '-j', jobId, '-o', '%K|%T']);
  if (r.error) return undefined;
  if (r.status !== 0) return /Invalid job id/i.test(r.stderr) ? new Map() : undefined;
  const out = new Map<number, string>();
  for (const line of r.stdout.split('\n')) {
    const [k, st] = line.trim().split('|');
    if (k && st && /^\d+$/.test(k)) out.set(Number(k), st);
  }
  return out;
}

/** Final states from accounting (`sacct`): task index -> {state, exit}; empty when accounting is off. */
export function sacctTasks(jobId: string): Map<number, { state: string; exitCode: string }> {
  const out = new Map<number, { state: string; exitCode: string }>();
  const r = sh('sacct', ['-X', '-n', '-P', '-j', jobId, '--format=JobID,State,ExitCode']);
  if (r.status !== 0) return out;
  for (const line of r.stdout.split('\n')) {
    const [jid, state, exitCode] = line.trim().split('|');
    const m = /^\d+_(\d+)$/.exec(jid ?? '');
    if (m && state) out.set(Number(m[1]), { state, exitCode });
  }
  return out;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

/** Write the job folder and script for `specs` (with `args = 'spec-file'`, each run's spec too); its paths. */
export function writeJob(
  specs: readonly RunSpec[],
  o: SweepOptions,
  s: SlurmOptions,
  args: TaskArgs = 'named',
): { dir: string; script: string } {
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const dir = path.join(
    path.resolve(o.store.root),
    SLURM_DIR,
    `${stamp}-${specs[0].scale}-${randomBytes(3).toString('hex')}`,
  );
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  const overrides = o.specOptions?.overrides;
  const configFile = overrides ? path.join(dir, 'overrides.json') : undefined;
  if (configFile) writeFileAtomic(configFile, JSON.stringify(overrides, null, 2) + '\n');
  if (args === 'spec-file') {
    fs.mkdirSync(path.join(dir, 'specs'));
    for (const sp of specs) writeFileAtomic(specFileOf(dir, sp), JSON.stringify(sp, null, 2) + '\n');
  }
  const script = path.join(dir, 'job.sh');
  writeFileAtomic(script, jobScript(specs, o, s, dir, configFile, args));
  fs.chmodSync(script, 0o755);
  return { dir, script };
}

/** The SLURM executor: one job array of the pending runs, submitted and (by default) waited for. */
export function slurmExecutor(s: SlurmOptions = {}): SlurmExecutor {
  return {
    name: 'slurm',
    options: s,
    async trainMany(pending: RunSpec[], o: SweepOptions, args: TaskArgs = 'named'): Promise<void> {
      const say = (m: string) => {
        progressStream(o)?.write(`[ceg] ${m}\n`);
      };
      const probe = sh('sbatch', ['--version']);
      if (probe.error || probe.status !== 0)
        throw new SlurmUnavailableError(
          `--executor slurm: cannot run sbatch (${probe.error?.message ?? probe.stderr.trim()}); is SLURM installed and on PATH? nothing was submitted`,
        );
      if (s.wait === false) {
        // --no-wait again before the earlier arrays ended: their runs are not submitted twice
        const queued = queuedRuns(o.store.root);
        const still = pending.filter((sp) => queued.has(runId(sp)));
        if (still.length) {
          const jobs = [...new Set(still.map((sp) => queued.get(runId(sp))!))];
          if (still.length === pending.length) throw new SlurmDetached(jobs.join(','), '', still.length, true);
          say(
            `${still.length} run(s) are still queued or running in SLURM job ${jobs.join(', ')}: not submitted again`,
          );
          pending = pending.filter((sp) => !queued.has(runId(sp)));
        }
      }
      const { dir, script } = writeJob(pending, o, s, args);
      let jobId: string;
      try {
        jobId = sbatch(script);
      } catch (e) {
        fs.rmSync(dir, { recursive: true, force: true }); // refused (a bad partition, account, time): nothing left behind
        throw e;
      }
      fs.writeFileSync(path.join(dir, 'job-id'), `${jobId}\n`);
      say(
        `submitted SLURM job array ${jobId}: ${pending.length} run(s) not in the store${s.throttle ? `, at most ${s.throttle} at once` : ''}` +
          `${s.afterOk?.length ? `, after job ${s.afterOk.join(', ')} completes` : ''}; script ${script}`,
      );
      if (s.wait === false) throw new SlurmDetached(jobId, script, pending.length);
      await waitForArray(jobId, pending, o, s, dir, say);
    },
  };
}

async function waitForArray(
  jobId: string,
  specs: readonly RunSpec[],
  o: SweepOptions,
  s: SlurmOptions,
  dir: string,
  say: (m: string) => void,
): Promise<void> {
  const poll = s.pollMs ?? 5000;
  let last = '';
  let emptyPolls = 0;
  for (;;) {
    if (o.signal?.aborted) {
      say(
        `stopped waiting (${stopReason(o.signal)}); SLURM job ${jobId} keeps running: squeue -j ${jobId}, or scancel ${jobId} to stop it`,
      );
      throw new InterruptedError(
        0,
        stopReason(o.signal),
        `stopped waiting for SLURM job ${jobId}; the same command resumes waiting for what is missing`,
      );
    }
    const q = squeueTasks(jobId);
    const done = specs.filter((sp) => finishedState(o.store, sp)).length;
    if (q) {
      const states = [...q.values()];
      const running = states.filter((x) => x === 'RUNNING' || x === 'COMPLETING').length;
      const queued = states.length - running;
      const failed = specs.filter((sp, i) => !q.has(i) && !finishedState(o.store, sp)).length;
      const line = `SLURM job ${jobId}: ${done}/${specs.length} done, ${running} running, ${queued} pending, ${failed} failed`;
      if (line !== last) say(line);
      last = line;
      emptyPolls = q.size === 0 ? emptyPolls + 1 : 0;
      if (emptyPolls >= 2 || (q.size === 0 && done === specs.length)) break;
    }
    await sleep(poll, o.signal);
  }
  const missing = specs.map((sp, i) => ({ sp, i })).filter(({ sp }) => !finishedState(o.store, sp));
  if (!missing.length) return;
  const acct = sacctTasks(jobId);
  for (const { sp, i } of missing) {
    const a = acct.get(i);
    say(
      `FAILED: ${sp.innovation} ${sp.scale} seed ${sp.seed} (run ${runId(sp)}), task ${jobId}_${i}${a ? ` ${a.state} exit ${a.exitCode}` : ''}: log ${path.join(dir, 'logs', `${jobId}_${i}.out`)}`,
    );
  }
  throw new SweepError(
    `${missing.length} of ${specs.length} run(s) of SLURM job ${jobId} did not complete (logs listed above); re-run the same command to submit only what is missing`,
  );
}
