/**
 * File-system errors of the environment (a full disk, a read-only or forbidden folder, too many
 * open files): one line naming the path, exit 2. Shared by the `ceg` command line
 * (src/cli/errors.ts) and the sweep's child trainer (src/train/child.ts).
 */
import path from 'node:path';

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

/** One line and exit code 2 for an error of the environment; null for anything else. */
export function describeIoError(e: unknown): HandledError | null {
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
      return {
        message: `${where} is on a read-only file system (EROFS): pass --runs DIR (or set CEG_RUNS) to a writable folder`,
        exitCode: 2,
      };
    case 'EMFILE':
    case 'ENFILE':
      return {
        message: `too many open files (${code}) opening ${where}: raise the limit (ulimit -n) and run again`,
        exitCode: 2,
      };
    default:
      return {
        message: `permission denied (${code}) on ${where}: make it writable for this user or pass --runs DIR (or set CEG_RUNS) to a folder you can write`,
        exitCode: 2,
      };
  }
}
