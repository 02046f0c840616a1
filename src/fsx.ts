/**
 * Crash-safe file primitives: the project's one atomic writer (run store, token files,
 * safetensors, figures, --out files). The rule everywhere: a reader never sees a
 * half-written JSON file or checkpoint. Whole files are written to a temporary name in the
 * same folder, fsynced, then renamed over the target (rename is atomic within a file system);
 * the folder is fsynced afterwards so that the rename itself survives a power loss.
 * Append-only files (metrics.jsonl) may end in a torn line after a kill; see `repairTornTail`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/** Marker in temporary file names; anything containing it is garbage after a crash. */
export const TMP_MARK = '.tmp-';

/** A fresh temporary path next to `target` (same folder, so rename stays atomic). */
export function tmpPathFor(target: string): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  return path.join(dir, `.${base}${TMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** fsync a folder so that renames/creations inside it are durable. Best effort on platforms that refuse. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // some platforms (Windows) cannot open or fsync a directory: the rename is still atomic
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Errors of fd-based calls (write, fsync: ENOSPC, EIO) carry no path: give them the file's, for the message. */
function withPath(e: unknown, file: string): unknown {
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err === 'object' && typeof err.code === 'string' && !err.path) err.path = file;
  return e;
}

/** Write `data` to `file` with an fsync before close. Creates or truncates. */
export function writeFileDurable(file: string, data: string | Uint8Array): void {
  const fd = fs.openSync(file, 'w');
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.byteLength) off += fs.writeSync(fd, buf, off, buf.byteLength - off);
    fs.fsyncSync(fd);
  } catch (e) {
    throw withPath(e, file);
  } finally {
    fs.closeSync(fd);
  }
}

/** Atomically replace `file` with `data`: temp file in the same folder, fsync, rename, fsync folder. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = tmpPathFor(file);
  try {
    writeFileDurable(tmp, data);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(path.dirname(file));
}

/** Atomically write a JSON value (pretty-printed, trailing newline). */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

/** Read and parse a JSON file; the error names the file. Returns undefined if it does not exist. */
export function readJson<T>(file: string): T | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`cannot parse ${file}: ${(e as Error).message}`);
  }
}

/** Append `text` to `file` (created if missing) and fsync. One write call per append. */
export function appendDurable(file: string, text: string): void {
  const fd = fs.openSync(file, 'a');
  try {
    const buf = Buffer.from(text, 'utf8');
    let off = 0;
    while (off < buf.byteLength) off += fs.writeSync(fd, buf, off, buf.byteLength - off);
    fs.fsyncSync(fd);
  } catch (e) {
    throw withPath(e, file);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * If `file` does not end with a newline (a torn final line from a killed append), truncate it
 * to just after its last newline (or to empty). Returns the number of bytes removed.
 */
export function repairTornTail(file: string): number {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r+');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) return 0;
    const last = Buffer.alloc(1);
    fs.readSync(fd, last, 0, 1, size - 1);
    if (last[0] === 0x0a) return 0;
    // scan backwards in chunks for the last newline
    const chunk = Buffer.alloc(64 * 1024);
    let end = size;
    let keep = 0;
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const n = fs.readSync(fd, chunk, 0, end - start, start);
      const i = chunk.subarray(0, n).lastIndexOf(0x0a);
      if (i >= 0) {
        keep = start + i + 1;
        break;
      }
      end = start;
    }
    fs.ftruncateSync(fd, keep);
    fs.fsyncSync(fd);
    return size - keep;
  } finally {
    fs.closeSync(fd);
  }
}
