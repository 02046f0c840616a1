/**
 * Where the project's own folders are, independent of the working directory (notebooks run in
 * notebooks/, the CLI may run anywhere): the run store, the token cache, native builds.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readEnv } from './env.js';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export function projectPath(...parts: string[]): string {
  return path.join(PROJECT_ROOT, ...parts);
}

/** The run store: CEG_RUNS, else <project>/data/runs. */
export function defaultRunsRoot(): string {
  return readEnv('CEG_RUNS') ?? projectPath('data', 'runs');
}

/** Tokenised corpora: CEG_CACHE, else <project>/data/cache. */
export function defaultCacheDir(): string {
  return readEnv('CEG_CACHE') ?? projectPath('data', 'cache');
}
