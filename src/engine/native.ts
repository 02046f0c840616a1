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

export interface NativeAddon {
  /** "avx512" | "avx2" | "sse": the vector width it was compiled for (-march=native) */
  isa: string;
  /**
   * heap[c + b·M·N ...] = op(A_b)·op(B_b) for b < batch, A_b at heap[a + b·aStride] ([M, K], or [K, M]
   * if transA), B_b at heap[b + b·bStride] ([K, N], or [N, K] if transB); offsets in floats.
   */
  matmul(heap: Float32Array, a: number, b: number, c: number, batch: number, M: number, N: number, K: number,
    transA: boolean, transB: boolean, aStride: number, bStride: number): void;
  /** fused kernels of src/engine/fused.ts on the heap (offsets in 4-byte elements; targets are int32); returns the mean loss (NaN: a target out of range) */
  ceForward(heap: Float32Array, x: number, targets: number, N: number, V: number, lse: number): number;
  ceBackward(heap: Float32Array, x: number, targets: number, lse: number, g: number, N: number, V: number, dx: number): void;
  geluForward(heap: Float32Array, x: number, n: number, y: number): void;
  geluBackward(heap: Float32Array, dy: number, x: number, n: number, dx: number): void;
  adamw(heap: Float32Array, p: number, m: number, v: number, g: number, n: number, p1: number, m1: number, v1: number,
    lr: number, beta1: number, beta2: number, eps: number, decay: number, bc1: number, bc2: number): void;
  /** heap[dst + c] = Σ_r heap[src + r·cols + c] */
  colsum(heap: Float32Array, src: number, rows: number, cols: number, dst: number): void;
}

const addonPath = projectPath('native', 'build', 'ceg_native.node');
let cached: NativeAddon | null | undefined;
let reason = '';

/** The addon, or null (see nativeStatus() for why). */
export function loadNative(): NativeAddon | null {
  if (cached !== undefined) return cached;
  cached = null;
  if (process.env.CEG_NATIVE === '0') reason = 'disabled by CEG_NATIVE=0';
  else if (!existsSync(addonPath)) reason = `not built (${path.relative(process.cwd(), addonPath)} missing; run npm run build:native)`;
  else {
    try {
      const addon = createRequire(import.meta.url)(addonPath) as NativeAddon;
      // built with -march=native: refuse a build from another machine whose ISA this CPU lacks
      const need = addon.isa === 'avx512' ? 'avx512f' : addon.isa === 'avx2' ? 'avx2' : '';
      if (need && !cpuFlags().has(need)) reason = `built for ${addon.isa}, which this CPU lacks (rebuild: npm run build:native)`;
      else {
        cached = addon;
        reason = `loaded (${addon.isa})`;
      }
    } catch (e) {
      reason = `failed to load: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  if (!cached && process.env.CEG_NATIVE !== '0') process.stderr.write(`[ceg] native matmul addon ${reason}; using the wasm matmul kernels\n`);
  return cached;
}

/** Why the addon is or is not in use (for run metadata and the bench). */
export function nativeStatus(): string {
  loadNative();
  return reason;
}

function cpuFlags(): Set<string> {
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:\s*(.*)$/m);
    return new Set((m?.[1] ?? '').split(/\s+/));
  } catch {
    return new Set(['avx512f', 'avx2']); // not Linux: trust the build (it ran here)
  }
}
