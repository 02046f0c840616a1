/**
 * How an error ends a `ceg` command (and the scripts): every error type of the project that
 * describes bad input or a state the user must act on prints ONE line (`ceg: <message>`) and
 * exits with code 2, without a stack trace; so do file-system errors of the environment
 * (a full disk, a read-only or forbidden folder), naming the path. Anything else is a bug and
 * keeps its stack trace (exit 1).
 */
import { ConfigError } from '../config.js';
import { EngineError } from '../engine/index.js';
import { DataError } from '../data/index.js';
import { CegError } from '../ceg/index.js';
import { NoRunsError } from '../report/from-runs.js';
import { ExportError } from '../report/export.js';
import { CheckpointCorruptError } from '../runs/index.js';
import { SweepError } from '../train/sweep.js';
import { UsageError } from './args.js';
import { describeIoError, type HandledError } from '../io-errors.js';

/** Error classes whose message is the whole story (bad input, or a state to act on): exit 2. */
export const USER_ERRORS = [
  UsageError,
  ConfigError,
  EngineError,
  DataError,
  CegError,
  NoRunsError,
  ExportError,
  CheckpointCorruptError,
] as const;
/** Errors reported in full by someone else already (a sweep's children): one summary line, exit 1. */
export const REPORTED_ERRORS = [SweepError] as const;

/** One line and an exit code for an error we understand; null for anything else (a bug: keep the stack). */
export function describeError(e: unknown): HandledError | null {
  if (USER_ERRORS.some((C) => e instanceof C)) return { message: (e as Error).message, exitCode: 2 };
  if (REPORTED_ERRORS.some((C) => e instanceof C)) return { message: (e as Error).message, exitCode: 1 };
  return describeIoError(e);
}
