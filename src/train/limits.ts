/**
 * Limits checked before anything is written: a model whose training cannot fit in the
 * backend's memory, or whose tensors would be larger than a typed array can hold, is refused
 * with one message naming the field, its value and the limit (and the largest value that
 * would fit with the other settings unchanged), instead of crashing with `RangeError: Invalid
 * typed array length` or `RuntimeError: memory access out of bounds` after creating the run.
 * (The context against the data's length is checked where the data is read: trainer.ts.)
 *
 * The memory estimate is calibrated against tf.profile's peak bytes of real training steps on
 * wasm (smoke/micro, plain/fused/sparse attention, GELU/SwiGLU/MoE, char and GPT-2 vocab):
 * it is within about -5%..+35% of the measured peak, and 15% is added for fragmentation.
 *   bytes ≈ 4 · [17·P  (params, grads, AdamW m/v and the update's temporaries)
 *              + L·B·T·(18·C + 8·hidden)            (activations kept for the backward pass)
 *              + L·B·H·T·keys · (11 | 25 sparse | 3 native kernel)  (attention scores, probabilities, their grads)
 *              + 4·B·T·V]                          (logits, softmax, their grads)
 */
import os from 'node:os';
import type { ModelConfig, TrainConfig } from '../config.js';
import { ConfigError } from '../config.js';
import type { BackendName } from '../engine/index.js';
import { paramSpecs, swigluHidden } from '../model/params.js';

/** Most elements one tensor may hold: typed arrays and the backends' int32 indexing. */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;
/** The wasm backend's heap: 32-bit addresses (tfjs-backend-wasm's getHeapMax). */
export const WASM_HEAP_BYTES = 4294901760;
const MARGIN = 1.15;
const GiB = 2 ** 30;

export interface MemoryEstimate {
  /** parameters, gradients and optimizer state, in bytes */
  params: number;
  /** activations kept for the backward pass (without attention scores) */
  activations: number;
  /** attention scores and probabilities (and their gradients) */
  attention: number;
  /** logits and their softmax/gradients */
  logits: number;
  /** sum with the margin */
  total: number;
  /** the largest single tensor training makes */
  largest: { name: string; elements: number };
}

function attentionKeys(m: ModelConfig): { perQuery: number; extra: number; sparse: boolean; heads: number } {
  const T = m.blockSize;
  // NSA (src/model/attention/nsa.ts) is computed densely under masks with its own heads: token
  // scores over every key for the selected and sliding branches, plus the compressed blocks
  if (m.attnKernel === 'nsa' && m.nsa)
    return { perQuery: T + Math.ceil(T / m.nsa.blockSize), extra: 0, sparse: true, heads: m.nsa.heads };
  if (m.attnKernel === 'fused') return { perQuery: Math.min(T, 64), extra: 0, sparse: false, heads: m.nHead }; // one 64-wide tile at a time
  if (m.attnKernel === 'sparse') {
    const nb = Math.ceil(T / m.sparse.blockSize);
    return {
      perQuery: Math.min(T, (m.sparse.localBlocks + m.sparse.selectedBlocks) * m.sparse.blockSize),
      extra: nb * nb,
      sparse: true,
      heads: m.nHead,
    };
  }
  return { perQuery: T, extra: 0, sparse: false, heads: m.nHead };
}

/**
 * Estimated peak tensor memory of one training step (see the module comment). `nativeAttention`:
 * the step's attention runs as the native kernel (src/model/gpt.ts usesNativeAttention, known only
 * once the engine has started); the default is the tensor path, the larger, which the pre-flight
 * check assumes since it runs before any engine starts.
 */
export function estimateTrainingMemory(
  m: ModelConfig,
  t: Pick<TrainConfig, 'batchSize'>,
  o: { nativeAttention?: boolean } = {},
): MemoryEstimate {
  const B = t.batchSize,
    T = m.blockSize,
    C = m.nEmbd,
    L = m.nLayer,
    V = m.vocabSize;
  let P = 0;
  let largest = { name: '', elements: 0 };
  const consider = (name: string, elements: number) => {
    if (elements > largest.elements) largest = { name, elements };
  };
  for (const p of paramSpecs(m)) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    P += n;
    consider(`parameter ${p.name} [${p.shape.join(', ')}]`, n);
  }
  const hidden = m.mlp === 'swiglu' ? 3 * swigluHidden(m) : m.mlp === 'moe' ? m.moe.experts * m.mlpHidden : m.mlpHidden;
  const keys = attentionKeys(m);
  const Ha = keys.heads;
  consider(
    `the attention scores [batchSize ${B}, heads ${Ha}, blockSize ${T}, ${keys.perQuery}]`,
    B * Ha * T * keys.perQuery,
  );
  consider(`the logits [batchSize ${B}, blockSize ${T}, vocabSize ${V}]`, B * T * V);
  consider(
    `the MLP activations [batchSize ${B}, blockSize ${T}, ${m.mlp === 'swiglu' ? swigluHidden(m) : m.mlpHidden}]`,
    B * T * (m.mlp === 'swiglu' ? swigluHidden(m) : m.mlpHidden),
  );
  const params = 4 * 17 * P;
  const activations = 4 * L * B * T * (18 * C + 8 * hidden);
  // the tensor path keeps scores, probabilities and their gradients (11 copies; 25 sparse); the
  // native kernel (o.nativeAttention) keeps the probabilities for the backward pass and one
  // gradient-sized scratch at a time (3 copies bound the measured peak: test/limits.test.ts)
  const copies = keys.sparse ? 25 : o.nativeAttention ? 3 : 11;
  const attention = 4 * copies * L * B * Ha * (T * keys.perQuery + keys.extra);
  const logits = 4 * 4 * B * T * V;
  return {
    params,
    activations,
    attention,
    logits,
    total: MARGIN * (params + activations + attention + logits),
    largest,
  };
}

/** Tensor memory the backend can use, or null when we cannot know it (GPU backends). */
export function memoryLimit(backend: BackendName): { bytes: number; what: string } | null {
  switch (backend) {
    case 'wasm':
      return { bytes: WASM_HEAP_BYTES, what: 'the wasm backend can address (32-bit heap)' };
    case 'cpu':
      return { bytes: os.totalmem(), what: `this machine has (${(os.totalmem() / GiB).toFixed(1)} GiB RAM)` };
    default:
      return null;
  }
}

/** Fields the user can set that drive memory, with getters/setters on a {model, train} pair. */
const FIELDS: {
  name: string;
  get: (m: ModelConfig, t: TrainConfig) => number;
  set: (m: ModelConfig, t: TrainConfig, v: number) => void;
}[] = [
  { name: 'model.blockSize', get: (m) => m.blockSize, set: (m, _t, v) => (m.blockSize = v) },
  { name: 'model.nEmbd', get: (m) => m.nEmbd, set: (m, _t, v) => (m.nEmbd = v) },
  { name: 'model.mlpHidden', get: (m) => m.mlpHidden, set: (m, _t, v) => (m.mlpHidden = v) },
  { name: 'model.nLayer', get: (m) => m.nLayer, set: (m, _t, v) => (m.nLayer = v) },
  {
    name: 'model.nHead',
    get: (m) => m.nHead,
    set: (m, _t, v) => {
      m.nHead = v;
      m.nKvHead = Math.min(m.nKvHead, v);
    },
  },
  {
    name: 'model.moe.experts',
    get: (m) => (m.mlp === 'moe' ? m.moe.experts : 0),
    set: (m, _t, v) => (m.moe = { ...m.moe, experts: v, topK: Math.min(m.moe.topK, v) }),
  },
  { name: 'train.batchSize', get: (_m, t) => t.batchSize, set: (_m, t, v) => (t.batchSize = v) },
];

interface Verdict {
  ok: boolean;
  why: string;
}

function judge(m: ModelConfig, t: TrainConfig, backend: BackendName): Verdict {
  const e = estimateTrainingMemory(m, t);
  const lim = memoryLimit(backend);
  // GPU backends (webgpu, tensorflow) keep tensors off the JS heap, with limits we cannot know here
  if (lim && e.largest.elements > MAX_TENSOR_ELEMENTS)
    return {
      ok: false,
      why: `${e.largest.name} would hold ${e.largest.elements.toExponential(2)} numbers, more than the ${MAX_TENSOR_ELEMENTS} one tensor can hold`,
    };
  if (lim && e.total > lim.bytes) {
    const g = (b: number) => `${(b / GiB).toFixed(1)} GiB`;
    return {
      ok: false,
      why:
        `training needs about ${g(e.total)} of tensor memory (attention ${g(e.attention)}, activations ${g(e.activations)}, ` +
        `logits ${g(e.logits)}, parameters and optimizer ${g(e.params)}), more than the ${g(lim.bytes)} ${lim.what}`,
    };
  }
  return { ok: true, why: '' };
}

/** Largest value of `field` in 1..current that passes (others unchanged), or 0 if none does. */
function largestFitting(field: (typeof FIELDS)[number], m: ModelConfig, t: TrainConfig, backend: BackendName): number {
  const at = (v: number) => {
    const mm = structuredClone(m);
    const tt = structuredClone(t);
    field.set(mm, tt, v);
    return judge(mm, tt, backend).ok;
  };
  let lo = 0;
  let hi = field.get(m, t);
  if (!at(1)) return 0;
  lo = 1;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (at(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * Throw a ConfigError (one line: field, value, limit) when training this model on `backend`
 * cannot fit. `changed` names the fields the user set (e.g. from --config): blamed first.
 */
export function checkTrainingLimits(
  m: ModelConfig,
  t: TrainConfig,
  backend: BackendName,
  changed: readonly string[] = [],
): void {
  const v = judge(m, t, backend);
  if (v.ok) return;
  const candidates = FIELDS.filter((f) => f.get(m, t) > 1)
    .map((f) => ({ f, value: f.get(m, t), max: largestFitting(f, m, t, backend) }))
    .filter((c) => c.max >= 1);
  const score = (c: { value: number; max: number }) => c.value / c.max;
  const pick = (cs: typeof candidates) => cs.sort((a, b) => score(b) - score(a))[0];
  const blamed = pick(candidates.filter((c) => changed.includes(c.f.name))) ?? pick(candidates);
  if (!blamed) throw new ConfigError(`this model cannot be trained on ${backend}: ${v.why}`);
  throw new ConfigError(
    `${blamed.f.name} ${blamed.value} is too large to train on ${backend}: ${v.why}; ` +
      `with the other settings unchanged, ${blamed.f.name} can be at most about ${blamed.max}`,
  );
}

/** checkTrainingLimits for a run spec; `overrides` (the --config sections) name the fields the user changed. */
export function checkSpecLimits(
  spec: { model: ModelConfig; train: TrainConfig; backend: BackendName },
  overrides: { model?: Record<string, unknown>; train?: Record<string, unknown> } = {},
): void {
  const changed = [
    ...Object.keys(overrides.model ?? {}).map((k) => `model.${k}`),
    ...Object.keys(overrides.train ?? {}).map((k) => `train.${k}`),
  ];
  checkTrainingLimits(spec.model, spec.train, spec.backend, changed);
}
