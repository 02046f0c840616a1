/**
 * What produced a run (provenance, recorded in status.json by the trainer) and the verdicts of
 * the stale check (verdicts.json, one per code fingerprint). The store only stores these; the
 * fingerprint is computed and the replay run by the train layer (src/train/provenance.ts,
 * src/train/stale.ts). See docs/runs.md "Provenance and stale runs".
 */
import path from 'node:path';
import { readJson, writeJsonAtomic } from '../fsx.js';
import type { Run } from './run.js';

/** Everything recorded about the code, engine and machine that trained a run. */
export interface Provenance {
  /**
   * sha256 (16 hex) of what the stale check compares: the number-affecting sources' content
   * hash, the kernel set, the backend and the dependency versions. Equal fingerprint = same
   * numbers expected; a different one triggers a replay (src/train/stale.ts).
   */
  fingerprint: string;
  code: {
    /** git HEAD commit, or null outside a git checkout */
    commit: string | null;
    /** tracked files modified (git status), or null outside a git checkout */
    dirty: boolean | null;
    /** sha256 (16 hex) of the contents of the number-affecting sources (NUMERIC_SOURCES) */
    sourceHash: string;
    /** how many files sourceHash covers */
    files: number;
  };
  backend: string;
  /** backend facts from the engine (simd, threads, kernels, adapter, ...) */
  backendFlags: Record<string, string | number | boolean>;
  /** kernel set: which kernel replacements serve the backend, e.g. "wasm/patched+fused+native-avx512" */
  kernels: string;
  /** whether the native addon served the run, and why (not) */
  native: { active: boolean; status: string };
  /** versions of the packages that change numbers (tfjs, the backend, corpus packages, tokenizer) */
  deps: Record<string, string>;
  machine: { cpu: string; cores: number; platform: string; arch: string; node: string };
  recordedAt: string;
}

/** Per-step training losses of the first steps (the stale check replays and compares them). */
export interface ReplayProbe {
  /** trainLosses[i] = the training loss of step i + 1 */
  trainLosses: number[];
}

/** The stale check's outcome for one run under one code fingerprint. */
export interface StaleVerdict {
  /** the code fingerprint the run was checked against */
  fingerprint: string;
  /** confirmed: the replay reproduced the stored losses within tolerance; stale: it did not */
  verdict: 'confirmed' | 'stale';
  checkedAt: string;
  /** steps whose losses were compared */
  steps: number[];
  /** largest relative difference between stored and replayed losses */
  maxRelDiff: number;
  /** one line for people: what was compared, the largest difference, or what differed */
  detail: string;
}

export const VERDICTS_FILE = 'verdicts.json';

/** Cached verdicts of a run, by code fingerprint (empty when never checked). */
export function readVerdicts(run: Run): Record<string, StaleVerdict> {
  try {
    return readJson<Record<string, StaleVerdict>>(path.join(run.dir, VERDICTS_FILE)) ?? {};
  } catch {
    return {}; // an unreadable cache is recomputed
  }
}

/** The cached verdict of `run` under `fingerprint`, if any. */
export function cachedVerdict(run: Run, fingerprint: string): StaleVerdict | undefined {
  return readVerdicts(run)[fingerprint];
}

/** Store a verdict (atomic write of verdicts.json; other fingerprints' verdicts are kept). */
export function saveVerdict(run: Run, v: StaleVerdict): void {
  writeJsonAtomic(path.join(run.dir, VERDICTS_FILE), { ...readVerdicts(run), [v.fingerprint]: v });
}
