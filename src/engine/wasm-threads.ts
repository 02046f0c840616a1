/**
 * Multithreaded wasm in Node. tfjs-backend-wasm 4.22.0 ships the threaded SIMD binary and
 * its Emscripten pthread worker, but hard-codes threads off under Node
 * (WASM_HAS_MULTITHREAD_SUPPORT = false) because the worker script and the main script
 * reach the workers as `blob:` URLs, which Node's worker_threads cannot load.
 *
 * enableWasmThreads(n), called before the wasm backend starts:
 *  1. writes the package's own worker script to a real file in a temp folder, with its one
 *     `blob:` import of the main script replaced by the package's real main-script path;
 *  2. makes `new Worker('blob:...')` (Emscripten's pthread pool, created while the backend
 *     starts) open that file instead, via a getter/setter on globalThis.Worker that only
 *     rewrites blob: URLs;
 *  3. sets WASM_HAS_MULTITHREAD_SUPPORT and the thread count;
 *  4. the wasm module caps its thread pool at os.cpus().length / 2 (it assumes two hardware
 *     threads per core), which is 1 on a 2-vCPU machine: os.cpus() is padded to 2n entries
 *     for calls that come from the tfjs-backend-wasm bundle only (checked on the stack).
 * Nothing inside node_modules is modified. If the worker script no longer has the expected
 * shape (another tfjs version), it throws an EngineError before touching anything.
 * The caller checks getThreadsCount() after start (src/engine/index.ts reports it).
 */
import { createRequire } from 'node:module';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker as NodeWorker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { EngineError } from './index.js';

const require = createRequire(import.meta.url);
const PINNED = '4.22.0';
/** The worker's blob branch, as shipped in 4.22.0. */
const BLOB_IMPORT =
  'var objectUrl=URL.createObjectURL(e.data.urlOrBlob);importScripts(objectUrl);URL.revokeObjectURL(objectUrl)';

let workerFile: string | null = null;

/**
 * Prepare threaded wasm with `n` threads (n >= 2). If this tfjs cannot be prepared, it
 * changes nothing, says so on stderr and returns false: the backend then starts with 1
 * thread (getThreadsCount() reports what was obtained).
 */
export async function enableWasmThreads(n: number): Promise<boolean> {
  if (!Number.isInteger(n) || n < 2) throw new EngineError(`enableWasmThreads needs an integer >= 2, got ${n}`);
  try {
    await prepare(n);
    return true;
  } catch (e) {
    process.stderr.write(`[ceg] wasm threads unavailable (${(e as Error).message}); falling back to 1 thread\n`);
    return false;
  }
}

async function prepare(n: number): Promise<void> {
  const pkgDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  const version = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version as string;
  if (version !== PINNED) {
    throw new EngineError(`wasm threads are tested with @tensorflow/tfjs-backend-wasm ${PINNED}, found ${version}; use threads=1`);
  }
  const mainScript = path.join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js');
  const { wasmWorkerContents } = require(path.join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.worker.js')) as {
    wasmWorkerContents: string;
  };
  if (!wasmWorkerContents.includes(BLOB_IMPORT)) {
    throw new EngineError('the wasm pthread worker script has an unexpected shape (tfjs changed?); use threads=1');
  }
  if (!workerFile) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ceg-wasm-threads-'));
    workerFile = path.join(dir, 'tfjs-backend-wasm-threaded-simd.worker.cjs');
    // the shipped string holds "\n" escapes already decoded to newlines inside string literals: re-escape (as tfjs does for its blob)
    const script = wasmWorkerContents.replace(/\n/g, "\\n").replace(BLOB_IMPORT, `importScripts(${JSON.stringify(mainScript)})`);
    writeFileSync(workerFile, script);
  }
  installWorkerRedirect(workerFile);
  padCpusForWasm(n);
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(n);
}

/** Node's Worker, but a blob: URL opens `file` (the only blob: workers are Emscripten's pthreads). */
function installWorkerRedirect(file: string): void {
  const g = globalThis as { Worker?: unknown };
  const desc = Object.getOwnPropertyDescriptor(g, 'Worker');
  if (desc?.get && (desc.get as { cegRedirect?: boolean }).cegRedirect) return;
  let base = NodeWorker;
  class RedirectWorker extends NodeWorker {
    constructor(url: string | URL, opts?: ConstructorParameters<typeof NodeWorker>[1]) {
      super(String(url).startsWith('blob:') ? file : url, opts);
    }
  }
  const get = () => (base === NodeWorker ? RedirectWorker : base);
  (get as { cegRedirect?: boolean }).cegRedirect = true;
  Object.defineProperty(g, 'Worker', {
    configurable: true,
    get,
    // Emscripten assigns worker_threads.Worker here; keep redirecting for it, honour anything else
    set: (w: typeof NodeWorker) => {
      base = w;
    },
  });
}

let cpuPad = 0;
/** Let the wasm bundle see at least 2n logical CPUs (its pool size is cpus / 2, capped by the request). */
function padCpusForWasm(n: number): void {
  const first = cpuPad === 0;
  cpuPad = Math.max(cpuPad, 2 * n);
  if (!first) return;
  const real = os.cpus;
  os.cpus = function cpus() {
    const list = real.call(os);
    if (list.length >= cpuPad || !new Error().stack?.includes('tfjs-backend-wasm')) return list;
    return Array.from({ length: cpuPad }, (_, i) => list[i % list.length]);
  };
}

/** Number of threads the running wasm module uses (1 when single-threaded). */
export async function wasmThreadsCount(): Promise<number> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  return wasm.getThreadsCount();
}
