/**
 * Per-kernel timing: re-registers every kernel of a backend with a wrapper that records
 * kernel name, input shapes, milliseconds and this process's CPU milliseconds (process.cpuUsage:
 * what the kernel cost, without the time the OS gave other processes, so profiles taken on a loaded
 * machine still add up). Valid for synchronous backends (wasm, cpu), where a kernel's work is done
 * when its function returns.
 */
import { tf } from '../src/engine/index.js';

export interface KernelStat {
  kernel: string;
  shapes: string;
  calls: number;
  ms: number;
  /** CPU time of this process inside the kernel (user + system) */
  cpuMs: number;
}

const stats = new Map<string, KernelStat>();
let enabled = false;

/** Wrap all kernels of `backend` once; recording is off until startProfile(). */
export function installProfiler(backend: string): void {
  for (const k of tf.getKernelsForBackend(backend)) {
    const orig = k.kernelFunc;
    const name = k.kernelName;
    tf.unregisterKernel(name, backend);
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        if (!enabled) return orig(args);
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const out = orig(args);
        const ms = performance.now() - t0;
        const c = process.cpuUsage(c0);
        const cpuMs = (c.user + c.system) / 1000;
        const inputs = Object.values(args.inputs) as tf.TensorInfo[];
        const attrs = args.attrs as Record<string, unknown> | undefined;
        const flags =
          name.includes('MatMul') && attrs ? `${attrs.transposeA ? 'T' : 'N'}${attrs.transposeB ? 'T' : 'N'} ` : '';
        const shapes = flags + inputs.map((t) => `[${t.shape.join(',')}]`).join('x');
        const key = `${name} ${shapes}`;
        const s = stats.get(key) ?? { kernel: name, shapes, calls: 0, ms: 0, cpuMs: 0 };
        s.calls += 1;
        s.ms += ms;
        s.cpuMs += cpuMs;
        stats.set(key, s);
        return out;
      },
    });
  }
}

export function startProfile(): void {
  stats.clear();
  enabled = true;
}

/** Stop recording; returns per-(kernel, shapes) totals divided by `steps`, largest first. */
export function stopProfile(steps: number): KernelStat[] {
  enabled = false;
  return [...stats.values()]
    .map((s) => ({ ...s, calls: s.calls / steps, ms: s.ms / steps, cpuMs: s.cpuMs / steps }))
    .sort((a, b) => b.ms - a.ms);
}

/** Totals per kernel name (all shapes together), largest first. */
export function byKernel(rows: KernelStat[]): { kernel: string; calls: number; ms: number; cpuMs: number }[] {
  const m = new Map<string, { kernel: string; calls: number; ms: number; cpuMs: number }>();
  for (const r of rows) {
    const s = m.get(r.kernel) ?? { kernel: r.kernel, calls: 0, ms: 0, cpuMs: 0 };
    s.calls += r.calls;
    s.ms += r.ms;
    s.cpuMs += r.cpuMs;
    m.set(r.kernel, s);
  }
  return [...m.values()].sort((a, b) => b.ms - a.ms);
}
