/**
 * Shared by the fault-injection suites (test/faults-*.test.ts): real `ceg` processes, waiting
 * on the run store, finding a sweep's child trainers. `npm test` runs the short version;
 * `npm run test:faults` sets CEG_FAULTS=long for more repetitions and random offsets.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export const LONG = process.env.CEG_FAULTS === 'long';

export const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `ceg-faults-${name}-`));

/** Seeded uniform [0, 1) (mulberry32), so a failing repetition can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Proc {
  child: ChildProcess;
  out: () => string;
  /** resolves with the exit code (or 128 + signal number when killed) and the ms it took from `since` */
  exit: Promise<{ code: number; at: number }>;
}

const SIGNO: Record<string, number> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/** Start `ceg <args>` (stdout and stderr collected together). */
export function ceg(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', path.resolve('src/cli/main.ts'), ...args], {
    env: { ...process.env, CEG_PROGRESS: 'plain', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout!.on('data', (d) => (text += d));
  child.stderr!.on('data', (d) => (text += d));
  const exit = new Promise<{ code: number; at: number }>((resolve) =>
    child.on('exit', (code, sig) => resolve({ code: code ?? 128 + (SIGNO[sig ?? ''] ?? 0), at: Date.now() })),
  );
  return { child, out: () => text, exit };
}

/** Poll `cond` every 50 ms until true; throws after `ms`. */
export async function waitFor(what: string, cond: () => boolean, ms = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Run folders of a store. */
export function runDirs(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .filter((d) => /^[0-9a-f]{16}$/.test(d))
    .map((d) => path.join(root, d));
}

/** Metric rows (parsed lines) of a run folder. */
export function metricLines(dir: string): { step: number }[] {
  const f = path.join(dir, 'metrics.jsonl');
  if (!fs.existsSync(f)) return [];
  return fs
    .readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

/** pids of a sweep's child trainers (src/train/child.ts) writing into the store `root`, from ps. */
export function trainersOf(root: string): number[] {
  const r = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .filter((l) => l.includes('train/child.ts') && l.includes(root))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A --config file: smoke with more steps, so that a run lasts long enough to be interrupted. */
export function longConfig(dir: string, steps = 600, every = 50): string {
  const file = path.join(dir, `steps${steps}.json`);
  fs.writeFileSync(
    file,
    JSON.stringify({ train: { steps, decaySteps: steps, evalInterval: every, checkpointInterval: every } }),
  );
  return file;
}

/** Metric rows without the wall-clock seconds (which differ between runs of the same numbers). */
export const strip = (rows: readonly Record<string, unknown>[]) => rows.map(({ seconds: _s, ...r }) => r);
