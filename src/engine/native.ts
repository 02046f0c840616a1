/**
 * The optional native matmul addon (native/sgemm.cc, built by `npm install`'s postinstall or
 * `npm run build:native` into native/build/ceg_native.node). When present it serves the wasm
 * backend's BatchMatMul (src/engine/kernels.ts) directly on the wasm heap; when absent, or with
 * CEG_NATIVE=0, the wasm (XNNPACK) kernels are used and that is announced once on stderr.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { projectPath } from '../paths.js';
import { readEnv } from '../env.js';
import { log } from '../log.js';

export interface NativeAddon {
  /** "avx512" | "avx2" | "sse": the vector width its target allows (native/build.mjs: a declared x86-64 level) */
  isa: string;
  /**
   * heap[c + b·M·N ...] = op(A_b)·op(B_b) for b < batch, A_b at heap[a + b·aStride] ([M, K], or [K, M]
   * if transA), B_b at heap[b + b·bStride] ([K, N], or [N, K] if transB); offsets in floats.
   */
  matmul(
    heap: Float32Array,
    a: number,
    b: number,
    c: number,
    batch: number,
    M: number,
    N: number,
    K: number,
    transA: boolean,
    transB: boolean,
    aStride: number,
    bStride: number,
  ): void;
  /** fused kernels of src/engine/fused.ts on the heap (offsets in 4-byte elements; targets are int32); returns the mean loss (NaN: a target out of range) */
  ceForward(heap: Float32Array, x: number, targets: number, N: number, V: number, lse: number): number;
  ceBackward(
    heap: Float32Array,
    x: number,
    targets: number,
    lse: number,
    g: number,
    N: number,
    V: number,
    dx: number,
  ): void;
  geluForward(heap: Float32Array, x: number, n: number, y: number): void;
  geluBackward(heap: Float32Array, dy: number, x: number, n: number, dx: number): void;
  adamw(
    heap: Float32Array,
    p: number,
    m: number,
    v: number,
    g: number,
    n: number,
    p1: number,
    m1: number,
    v1: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    decay: number,
    bc1: number,
    bc2: number,
    gscale?: number,
  ): void;
  /** causal softmax of scores [rows, T] (row r = query r mod T) scaled by `scale`; masked entries 0 (src/engine/fused.ts causalSoftmax) */
  causalSoftmaxForward(heap: Float32Array, x: number, rows: number, T: number, scale: number, y: number): void;
  causalSoftmaxBackward(
    heap: Float32Array,
    dy: number,
    y: number,
    rows: number,
    T: number,
    scale: number,
    dx: number,
  ): void;
  /**
   * Causal self-attention from qkv [B·T, 3·H·hs] (q | k | v) to y [B·T, H·hs] (heads merged), scores
   * scaled by `scale`; the probabilities [B, H, T, T] go to p (src/engine/fused.ts causalAttention)
   */
  attnForward(
    heap: Float32Array,
    qkv: number,
    B: number,
    T: number,
    H: number,
    hs: number,
    scale: number,
    y: number,
    p: number,
  ): void;
  /** its gradient: dqkv [B·T, 3·H·hs] from dy [B·T, H·hs], qkv and the saved probabilities */
  attnBackward(
    heap: Float32Array,
    dy: number,
    qkv: number,
    p: number,
    B: number,
    T: number,
    H: number,
    hs: number,
    scale: number,
    dqkv: number,
  ): void;
  /** Σ heap[off + i]² for i < n */
  sumSquares(heap: Float32Array, off: number, n: number): number;
  /** heap[dst + c] = Σ_r heap[src + r·cols + c] */
  colsum(heap: Float32Array, src: number, rows: number, cols: number, dst: number): void;
  /** dlopen an OpenBLAS (single-threaded) for matmul: "" when loaded, else why not */
  loadBlas(file: string): string;
  /** openblas_get_config() of the loaded OpenBLAS, "" when none */
  blasConfig(): string;
  /** which SGEMM serves matmul: 0 ours, 1 the loaded OpenBLAS (every product); returns the previous mode */
  setGemm(mode: 0 | 1): number;
}

const addonPath = projectPath('native', 'build', 'ceg_native.node');
/** written by native/build.mjs beside the binary: the target it was compiled for */
const manifestPath = projectPath('native', 'build', 'ceg_native.json');
let cached: NativeAddon | null | undefined;
let reason = '';

/** What native/build.mjs compiled for: `march` (e.g. x86-64-v4) and the /proc/cpuinfo features that target needs. */
export interface NativeManifest {
  arch: string;
  march: string;
  requires: string[];
}

/**
 * Why a build for `manifest` must not be loaded on this CPU (arch, and every feature the declared
 * target may use), or null when it may. Checked BEFORE the binary is loaded: loading code built
 * for instructions the CPU lacks can kill the process with an illegal instruction.
 * `cpuFlags` null: no /proc/cpuinfo (not Linux), where the build ran on this machine.
 */
export function nativeTargetProblem(
  manifest: NativeManifest | undefined,
  arch: string,
  cpuFlags: ReadonlySet<string> | null,
): string | null {
  if (!manifest)
    return 'has no target manifest (native/build/ceg_native.json; an older build?): rebuild with npm run build:native';
  if (manifest.arch !== arch)
    return `was built for ${manifest.arch}, this is ${arch}: rebuild with npm run build:native`;
  if (!cpuFlags) return null;
  const missing = manifest.requires.filter((f) => !cpuFlags.has(f));
  if (missing.length)
    return `was built for ${manifest.march}, whose ${missing.join(', ')} this CPU lacks: rebuild with npm run build:native`;
  return null;
}

function readManifest(file: string): NativeManifest | undefined {
  try {
    const m = JSON.parse(readFileSync(file, 'utf8')) as Partial<NativeManifest>;
    if (typeof m.arch === 'string' && typeof m.march === 'string' && Array.isArray(m.requires))
      return m as NativeManifest;
  } catch {
    /* missing or unreadable: treated as absent */
  }
  return undefined;
}

/**
 * Load the addon at `file` if its manifest allows it on this CPU: the addon, or null and why not.
 * (loadNative() with the project's paths; separate for tests.)
 */
export function loadAddonAt(
  file: string,
  manifestFile: string,
  flags: ReadonlySet<string> | null = cpuFlags(),
): { addon: NativeAddon | null; reason: string } {
  if (!existsSync(file))
    return {
      addon: null,
      reason: `not built (${path.relative(process.cwd(), file)} missing; run npm run build:native)`,
    };
  const problem = nativeTargetProblem(readManifest(manifestFile), process.arch, flags);
  if (problem) return { addon: null, reason: problem };
  try {
    const addon = createRequire(import.meta.url)(file) as NativeAddon;
    return { addon, reason: `loaded (${addon.isa})` };
  } catch (e) {
    return { addon: null, reason: `failed to load: ${(e as Error).message.split('\n')[0]}` };
  }
}

/** The addon, or null (see nativeStatus() for why). */
export function loadNative(): NativeAddon | null {
  if (cached !== undefined) return cached;
  cached = null;
  if (readEnv('CEG_NATIVE') === '0') reason = 'disabled by CEG_NATIVE=0';
  else ({ addon: cached, reason } = loadAddonAt(addonPath, manifestPath));
  if (cached) {
    connectBlas(cached);
    reason += `; matmul: ${blasReason}`;
  }
  if (!cached && readEnv('CEG_NATIVE') !== '0')
    log.warn(`[ceg] native matmul addon ${reason}; using the wasm matmul kernels`);
  return cached;
}

/**
 * Where the system OpenBLAS is looked for (Debian/Ubuntu: libopenblas0-pthread or -openmp, found
 * by the loader's path through the libopenblas.so.0 alternative; macOS: Homebrew's).
 */
const BLAS_CANDIDATES = [
  'libopenblas.so.0',
  'libopenblas.so',
  '/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0',
  '/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0',
  'libopenblas.dylib',
  '/opt/homebrew/opt/openblas/lib/libopenblas.dylib',
];
let blasReason = '';

/**
 * Connect the addon's matmul to the system OpenBLAS's cblas_sgemm when one is present (dlopen at
 * run time: neither the build nor the fallback needs it), single-threaded, for every product (chosen
 * globally from bench/gemm.ts's per-shape measurements: docs/performance.md). CEG_BLAS=0 keeps our
 * SGEMM. Returns the library's config string, or null.
 */
function connectBlas(addon: NativeAddon): string | null {
  if (typeof addon.loadBlas !== 'function') {
    blasReason = 'not supported by this build of the addon (rebuild with npm run build:native)';
    return null;
  }
  if (readEnv('CEG_BLAS') === '0') {
    blasReason = 'disabled by CEG_BLAS=0';
    return null;
  }
  const why: string[] = [];
  for (const file of BLAS_CANDIDATES) {
    const err = addon.loadBlas(file);
    if (!err) {
      addon.setGemm(1);
      blasReason = `${addon.blasConfig()} (cblas_sgemm, 1 thread) for every matmul`;
      return addon.blasConfig();
    }
    why.push(err);
  }
  blasReason = `no OpenBLAS found (${why[0]}); our SGEMM for every product`;
  return null;
}

/** Whether OpenBLAS serves some of the addon's products, and which library (for run metadata and the bench). */
export function blasStatus(): string {
  loadNative();
  return blasReason || 'native addon not loaded';
}

/** A short name of the connected OpenBLAS for the kernel set (e.g. "openblas-0.3.21"), or null. */
export function blasName(): string | null {
  const a = loadNative();
  const c = a && typeof a.blasConfig === 'function' ? a.blasConfig() : '';
  if (!c) return null;
  const v = /OpenBLAS\s+([0-9][0-9.]*)/.exec(c);
  return v ? `openblas-${v[1]}` : 'openblas';
}

/** Why the addon is or is not in use (for run metadata and the bench). */
export function nativeStatus(): string {
  loadNative();
  return reason;
}

/** The CPU's feature flags from /proc/cpuinfo; null where there is none (not Linux). */
export function cpuFlags(): Set<string> | null {
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:\s*(.*)$/m);
    return m ? new Set(m[1].split(/\s+/)) : null;
  } catch {
    return null;
  }
}
