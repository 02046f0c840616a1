/**
 * The webgpu backend: @tensorflow/tfjs-backend-webgpu over Dawn (npm `webgpu`, dawn.node).
 *
 * Order matters: tfjs-backend-webgpu registers itself only if `navigator.gpu` exists when it
 * is imported, so we (1) prepare the Vulkan environment (./vulkan-env.ts: finds a private
 * lavapipe in <repo>/.vk), (2) create Dawn's GPU object and put it on globalThis.navigator,
 * (3) ask for an adapter ourselves, so that "no adapter" is a clear EngineError rather than
 * a crash inside tfjs, and only then (4) import the backend. initEngine() then calls
 * setBackend('webgpu').
 *
 * Dawn options: CEG_DAWN_OPTIONS="backend=vulkan,adapter=llvmpipe" (comma-separated; passed to
 * `create()`); default none (Dawn picks).
 * Exit: with webgpu@0.6.x Node exits by itself when work is done; `shutdownWebGPU()` destroys
 * the device explicitly (call it at the end of a CLI run or in a test's `after`).
 */
import { tf, EngineError } from './index.js';
import { createRequire } from 'node:module';
import { prepareVulkanEnv } from './vulkan-env.js';
import { replaceKernel } from './replace-kernel.js';
import { readEnv } from '../env.js';

type Flags = Record<string, string | number | boolean>;

let started: Flags | null = null;

/** Dawn option strings from CEG_DAWN_OPTIONS. */
export function dawnOptions(): string[] {
  const s = readEnv('CEG_DAWN_OPTIONS') ?? '';
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

export function noAdapterMessage(icd: string | null): string {
  return (
    'no WebGPU adapter: Dawn found no usable Vulkan driver' +
    (icd ? ` (VK_DRIVER_FILES/VK_ICD_FILENAMES = ${icd})` : ' (no ICD named, no .vk/ cache found)') +
    '. On a CPU-only machine run `source scripts/lavapipe.sh` once (it fetches Mesa 25 lavapipe into .vk/, ' +
    "which the engine then finds by itself); Debian 12's own Mesa 22.3 lavapipe is rejected by Dawn. " +
    "On an NVIDIA machine install the driver's Vulkan ICD and the Vulkan loader (libvulkan1), e.g. " +
    'VK_DRIVER_FILES=/usr/share/vulkan/icd.d/nvidia_icd.json.'
  );
}

/** Start Dawn, check for an adapter, load tfjs-backend-webgpu. Returns flags stored with runs. */
export async function initWebGPU(): Promise<Flags> {
  if (started) return started;
  const env = prepareVulkanEnv();
  let dawn: { create: (o: string[]) => GPU; globals: object };
  try {
    dawn = (await import('webgpu')) as unknown as typeof dawn;
  } catch (e) {
    throw new EngineError(`webgpu backend needs the npm package "webgpu" (dawn.node): ${(e as Error).message}`);
  }
  const g = globalThis as unknown as { navigator?: { gpu?: GPU } };
  if (!g.navigator?.gpu) {
    Object.assign(globalThis, dawn.globals);
    const gpu = dawn.create(dawnOptions());
    // Node 21+ has a read-only globalThis.navigator: define the property instead of assigning.
    if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
    else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  }
  const adapter = await g.navigator!.gpu!.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new EngineError(noAdapterMessage(env.icd));
  const info = adapter.info;
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!tf.findBackendFactory('webgpu')) {
    throw new EngineError('tfjs-backend-webgpu did not register (navigator.gpu was missing when it loaded)');
  }
  registerWebGPUKernels();
  started = {
    adapter: info.description || info.device || 'unknown',
    vendor: info.vendor || 'unknown',
    architecture: info.architecture || 'unknown',
    dawn: dawnPackageVersion(),
    icd: env.icd ?? 'system default',
    maxStorageBufferMiB: Math.floor(adapter.limits.maxStorageBufferBindingSize / 2 ** 20),
    // Dawn toggles may change how kernels compile: recorded with the run when set
    ...(dawnOptions().length ? { dawnOptions: dawnOptions().join(',') } : {}),
  };
  return started;
}

function dawnPackageVersion(): string {
  try {
    return (createRequire(import.meta.url)('webgpu/package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The running tfjs webgpu backend (device, runWebGPUProgram); throws if webgpu is not active. */
export function webgpuBackend(): WebGPUBackendLike {
  if (tf.getBackend() !== 'webgpu') {
    throw new EngineError(
      `the active backend is "${tf.getBackend()}", not "webgpu"; call initEngine({backend: 'webgpu'}) first`,
    );
  }
  return tf.backend() as unknown as WebGPUBackendLike;
}

/** The parts of tfjs-backend-webgpu's WebGPUBackend we use. */
export interface WebGPUBackendLike {
  device: GPUDevice;
  runWebGPUProgram(
    program: unknown,
    inputs: tf.TensorInfo[],
    outputDtype: tf.DataType,
    uniforms?: Array<{ type: string; data: number[] }>,
  ): tf.TensorInfo;
}

/** Destroy the Dawn device so that nothing keeps Node alive; the backend is removed. */
export function shutdownWebGPU(): void {
  if (!tf.findBackend('webgpu')) return;
  const b = tf.findBackend('webgpu') as unknown as WebGPUBackendLike;
  tf.removeBackend('webgpu');
  b.device.destroy();
  started = null;
}

/**
 * Kernels training needs. tfjs-backend-webgpu 4.22 registers all of them (UnsortedSegmentSum
 * included, so tf.gather has a gradient); the check names any that an upgrade loses.
 */
export const WEBGPU_REQUIRED_KERNELS = [
  'BatchMatMul',
  '_FusedMatMul',
  'Softmax',
  'GatherV2',
  'UnsortedSegmentSum',
  'ScatterNd',
  'Max',
  'Sum',
  'Mean',
  'Exp',
  'Log',
  'Sqrt',
  'Rsqrt',
  'Tanh',
  'Erf',
  'Relu',
  'Transpose',
  'Reshape',
  'Tile',
  'Concat',
  'Slice',
  'StridedSlice',
  'Select',
  'Cast',
  'OneHot',
  'Pack',
  'SquaredDifference',
  'Maximum',
  'Minimum',
  'RealDiv',
  'Multiply',
  'Sub',
  'Add',
  'Pow',
  'Sigmoid',
  'GreaterEqual',
] as const;

let kernelsPatched = false;

/**
 * Replacements registered for webgpu:
 *  - Tile of rank >= 5 (e.g. repeating K/V heads for GQA: [B,Hkv,1,T,hs] x [1,1,g,1,1]) falls
 *    back to the CPU in tfjs-backend-webgpu through a synchronous read-back, which cannot
 *    work in Node (it needs OffscreenCanvas). We merge every dimension whose repeat is 1 into
 *    the dimension before it (tiling [a, b] by [r, 1] = tiling [a*b] by [r]), which brings
 *    such tiles to rank <= 4, run the GPU kernel, and reshape back.
 *  - AddN with more inputs than the device binds storage buffers per shader stage (8 on
 *    lavapipe) makes an invalid pipeline and a garbage sum: summed in chunks that fit.
 *  - readSync (dataSync/arraySync) of a GPU tensor: throws a clear EngineError instead of
 *    "OffscreenCanvas is not defined". Use `await t.data()` / `await t.array()`.
 */
function registerWebGPUKernels(): void {
  const missing = WEBGPU_REQUIRED_KERNELS.filter((k) => !tf.getKernel(k, 'webgpu'));
  if (missing.length) {
    throw new EngineError(`tfjs-backend-webgpu lacks kernels training needs: ${missing.join(', ')}`);
  }
  if (kernelsPatched) return;
  kernelsPatched = true;
  replaceKernel('Tile', 'webgpu', (tile) => (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const reps = (args.attrs as unknown as { reps: number[] }).reps;
    if (x.shape.length < 5) return tile(args);
    const { shape, reps: r } = collapseTile(x.shape, reps);
    if (shape.length >= 5)
      throw new EngineError(`Tile of rank ${x.shape.length} with reps ${reps} cannot run on webgpu`);
    const xr: tf.TensorInfo = { dataId: x.dataId, shape, dtype: x.dtype };
    const out = tile({ ...args, inputs: { x: xr }, attrs: { reps: r } as unknown as tf.NamedAttrMap }) as tf.TensorInfo;
    return { dataId: out.dataId, shape: x.shape.map((n, i) => n * reps[i]), dtype: out.dtype };
  });
  // AddN binds every input as a storage buffer; past the device's maxStorageBuffersPerShaderStage
  // (8 on lavapipe and Dawn's default) the pipeline is invalid and the sum is garbage (e.g. the
  // global gradient norm over all parameters). Sum in chunks that fit, then sum the partial sums.
  replaceKernel('AddN', 'webgpu', (addN) => (args) => {
    const backend = args.backend as unknown as WebGPUBackendLike & { disposeData(id: object): void };
    const room = Math.max(2, backend.device.limits.maxStorageBuffersPerShaderStage - 1); // one buffer is the output
    let xs = args.inputs as unknown as tf.TensorInfo[];
    const temps: tf.TensorInfo[] = [];
    while (xs.length > room) {
      const next: tf.TensorInfo[] = [];
      for (let i = 0; i < xs.length; i += room) {
        const part = xs.slice(i, i + room);
        if (part.length === 1) next.push(part[0]);
        else {
          const r = addN({ ...args, inputs: part as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
          temps.push(r);
          next.push(r);
        }
      }
      xs = next;
    }
    const out = addN({ ...args, inputs: xs as unknown as tf.NamedTensorInfoMap });
    for (const t of temps) backend.disposeData(t.dataId);
    return out;
  });
  const factory = tf.findBackendFactory('webgpu')!;
  tf.removeBackend('webgpu');
  tf.registerBackend(
    'webgpu',
    async () => {
      const backend = (await factory()) as unknown as {
        readSync: (id: object) => unknown;
        tensorMap: { get(id: object): { values?: unknown; resource?: unknown } };
      };
      const readSync = backend.readSync.bind(backend);
      backend.readSync = (dataId: object) => {
        const d = backend.tensorMap.get(dataId);
        if (d && d.values == null && d.resource != null) {
          throw new EngineError(
            'dataSync()/arraySync() cannot read a GPU tensor on webgpu in Node; use `await t.data()` or `await t.array()`',
          );
        }
        return readSync(dataId);
      };
      return backend as unknown as tf.KernelBackend;
    },
    3,
  );
}

/** Tile shape/reps with every reps-1 dimension merged into the one before: [a,b]x[r,1] = [a*b]x[r]. */
export function collapseTile(shape: number[], reps: number[]): { shape: number[]; reps: number[] } {
  const s: number[] = [];
  const r: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    if (i > 0 && reps[i] === 1) s[s.length - 1] *= shape[i];
    else {
      s.push(shape[i]);
      r.push(reps[i]);
    }
  }
  return { shape: s, reps: r };
}
