/**
 * The tensor engine: the only module that imports TensorFlow.js and picks a backend.
 * Everything else does `import { tf } from '../engine/index.js'`.
 *
 * Backends (chosen once per process, by option or by the CEG_BACKEND variable):
 *  - wasm        default; @tensorflow/tfjs-backend-wasm with SIMD, no download needed
 *  - webgpu      @tensorflow/tfjs-backend-webgpu over Dawn (npm `webgpu`); see ./webgpu.ts
 *  - tensorflow  @tensorflow/tfjs-node(-gpu), only if the user installed it (optional)
 *  - cpu         pure JS, last resort
 * Asking for a backend that cannot start throws an EngineError naming what is missing;
 * there is no silent fallback.
 */
import * as tf from '@tensorflow/tfjs-core';
import './vendor/tfjs-gradients.js'; // all of tfjs-core's gradients: see scripts/build-gradients.sh
import '@tensorflow/tfjs-backend-cpu';
import { createRequire } from 'node:module';
import path from 'node:path';
import { patchKernels, kernelPatches } from './kernels.js';
import { readEnv } from '../env.js';
import { log } from '../log.js';

export { tf };

export const BACKENDS = ['wasm', 'webgpu', 'tensorflow', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface EngineInfo {
  backend: BackendName;
  tfjsVersion: string;
  /** backend-specific facts worth storing with a run: simd, threads, adapter name, ... */
  flags: Record<string, string | number | boolean>;
}

export class EngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EngineError';
  }
}

export interface EngineOptions {
  backend?: BackendName;
  /** print the chosen backend to stderr (default false) */
  verbose?: boolean;
}

let current: EngineInfo | null = null;
// Production mode: no debug NaN checks, and no "install tfjs-node" banner from the cpu backend.
tf.enableProdMode();
const require = createRequire(import.meta.url);

export function isBackendName(s: string): s is BackendName {
  return (BACKENDS as readonly string[]).includes(s);
}

/** Resolve the requested backend name from options and the CEG_BACKEND variable. */
export function requestedBackend(opts: EngineOptions = {}): BackendName {
  const name = opts.backend ?? readEnv('CEG_BACKEND') ?? 'wasm';
  if (!isBackendName(name)) {
    throw new EngineError(
      `unknown backend "${name}" (from ${opts.backend ? 'option' : 'CEG_BACKEND'}); valid: ${BACKENDS.join(', ')}`,
    );
  }
  return name;
}

/**
 * Start the engine once. Calling again with the same backend returns the same info;
 * calling with a different backend switches (useful in tests) .
 */
export async function initEngine(opts: EngineOptions = {}): Promise<EngineInfo> {
  const name = requestedBackend(opts);
  if (current && current.backend === name) return current;
  let flags: EngineInfo['flags'] = {};
  switch (name) {
    case 'cpu':
      await setBackend('cpu');
      break;
    case 'wasm':
      flags = await initWasm();
      break;
    case 'webgpu': {
      const { initWebGPU } = await import('./webgpu.js');
      flags = await initWebGPU();
      await setBackend('webgpu');
      break;
    }
    case 'tensorflow':
      flags = await initTensorflow();
      break;
  }
  patchKernels(name);
  const patches = kernelPatches(name);
  if (patches.length) flags = { ...flags, kernels: patches.join(',') };
  current = { backend: name, tfjsVersion: tf.version_core, flags };
  if (opts.verbose) {
    const f = Object.entries(flags)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    log.info(`[ceg] backend ${name}${f ? ` (${f})` : ''}`);
  }
  return current;
}

/** The engine info of the running backend; throws if initEngine was not called. */
export function engineInfo(): EngineInfo {
  if (!current) throw new EngineError('engine not started: call initEngine() first');
  return current;
}

async function setBackend(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok || tf.getBackend() !== name) {
    throw new EngineError(`backend "${name}" is registered but failed to initialise`);
  }
  await tf.ready();
}

async function initWasm(): Promise<EngineInfo['flags']> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
  wasm.setWasmPaths(dist + path.sep);
  tf.env().set('WASM_HAS_SIMD_SUPPORT', true);
  // Emscripten's Node glue installs process-wide handlers that re-throw every uncaught
  // error and print the whole 200 kB module source with it; remove what it added.
  const before = {
    uncaughtException: new Set(process.listeners('uncaughtException')),
    unhandledRejection: new Set(process.listeners('unhandledRejection')),
  };
  await setBackend('wasm');
  for (const l of process.listeners('uncaughtException'))
    if (!before.uncaughtException.has(l)) process.removeListener('uncaughtException', l);
  for (const l of process.listeners('unhandledRejection'))
    if (!before.unhandledRejection.has(l)) process.removeListener('unhandledRejection', l);
  return {
    simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT'),
    threads: 1, // single-threaded wasm (a sweep runs one process per core); recorded as before
  };
}

async function initTensorflow(): Promise<EngineInfo['flags']> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      require.resolve(pkg);
    } catch {
      continue;
    }
    await import(pkg);
    await setBackend('tensorflow');
    return { package: pkg };
  }
  throw new EngineError(
    'backend "tensorflow" needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, and neither is installed. ' +
      'On a machine that can download libtensorflow, run `npm install @tensorflow/tfjs-node-gpu@4.22.0` ' +
      '(CUDA 11.2 / cuDNN 8.1) or `npm install @tensorflow/tfjs-node@4.22.0`.',
  );
}
