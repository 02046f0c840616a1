/**
 * How an error ends a `ceg` command (and the scripts): every error type of the project that
 * describes bad input or a state the user must act on prints ONE line (`ceg: <message>`) and
 * exits with code 2, without a stack trace; so do file-system errors of the environment
 * (a full disk, a read-only or forbidden folder), naming the path. Anything else is a bug and
 * keeps its stack trace (exit 1).
 */
import path from 'node:path';
import { ConfigError } from '../config.js';
import { EngineError } from '../engine/index.js';
import { DataError } from '../data/index.js';
import { CegError } from '../ceg/index.js';
import { NoRunsError } from '../report/from-runs.js';
import { ExportError } from '../report/export.js';
import { CheckpointCorruptError } from '../runs/index.js';
import { SweepError } from '../train/sweep.js';
import { UsageError } from './args.js';

/** Error classes whose message is the whole story (bad input, or a state to act on): exit 2. */
export const USER_ERRORS = [UsageError, ConfigError, EngineError, DataError, CegError, NoRunsError, ExportError, CheckpointCorruptError] as const;
/** Errors reported in full by someone else already (a sweep's children): one summary line, exit 1. */
export const REPORTED_ERRORS = [SweepError] as const;

/** errno codes of the environment rather than of the code: one line naming the path. */
export const IO_ERROR_CODES = ['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EMFILE', 'ENFILE'] as const;

export interface HandledError {
  message: string;
  exitCode: number;
}

/** The path an fs error concerns; a temporary file is named by its folder (what the user knows). */
function errPath(e: NodeJS.ErrnoException & { dest?: string }): string {
  const p = e.path ?? e.dest ?? '';
  if (!p) return '(unknown path)';
  const base = path.basename(p);
  return base.startsWith('.') && base.includes('.tmp-') ? path.dirname(p) : p;
}

/** One line and an exit code for an error we understand; null for anything else (a bug: keep the stack). */
export function describeError(e: unknown): HandledError | null {
  if (USER_ERRORS.some((C) => e instanceof C)) return { message: (e as Error).message, exitCode: 2 };
  if (REPORTED_ERRORS.some((C) => e instanceof C)) return { message: (e as Error).message, exitCode: 1 };
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== 'string' || !(IO_ERROR_CODES as readonly string[]).includes(code)) return null;
  const where = errPath(e as NodeJS.ErrnoException);
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return {
        message: `no space left on the device (${code}) writing ${where}. Nothing stored is lost: free some space (or pass --runs DIR on another disk) and run the same command again; interrupted runs resume from their last checkpoint`,
        exitCode: 2,
      };
    case 'EROFS':
      return { message: `${where} is on a read-only file system (EROFS): pass --runs DIR (or set CEG_RUNS) to a writable folder`, exitCode: 2 };
    case 'EMFILE':
    case 'ENFILE':
      return { message: `too many open files (${code}) opening ${where}: raise the limit (ulimit -n) and run again`, exitCode: 2 };
    default:
      return { message: `permission denied (${code}) on ${where}: make it writable for this user or pass --runs DIR (or set CEG_RUNS) to a folder you can write`, exitCode: 2 };
  }
}
