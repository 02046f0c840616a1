/**
 * A trained run's weights out of the run store: `ceg export` (safetensors with nanoGPT's names
 * and layout, src/model/safetensors.ts) and `ceg sample` (text generation as nanoGPT's
 * sample.py does: temperature, top-k, seeded). Both read the run's latest checkpoint (the
 * last one of a completed run holds its final weights).
 */
import { initEngine, tf, type BackendName } from '../engine/index.js';
import { paramSpecs, paramCount, type Params } from '../model/params.js';
import { gptForward } from '../model/gpt.js';
import { saveSafetensors } from '../model/safetensors.js';
import { createRng, getTokenizer } from '../data/index.js';
import { isImportedSpec, type RunStore, type RunSpec } from '../runs/index.js';
import { unpackTensors, type TensorIndexEntry } from './checkpoint.js';

export class StoredModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoredModelError';
  }
}

/** The run's spec and the parameters of its latest checkpoint (tf variables: dispose them). */
export function loadRunParams(store: RunStore, id: string): { spec: RunSpec; params: Params; step: number } {
  const run = store.get(id);
  if (!run) throw new StoredModelError(`no run "${id}" in ${store.root}; \`ceg runs\` lists the runs and their ids`);
  if (isImportedSpec(run.spec))
    throw new StoredModelError(
      `run ${id} was imported from ${run.spec.imported.file}: it has a loss curve but no weights`,
    );
  const spec = run.spec;
  const ck = run.loadCheckpoint();
  if (!ck) {
    const state = run.status().state;
    throw new StoredModelError(
      state === 'done'
        ? `run ${id} is complete but holds no checkpoint (a store with metrics only, such as the committed data/runs); retrain it into your own store: ceg train --innovation ${spec.innovation} --scale ${spec.scale} --seed ${spec.seed} --runs DIR`
        : `run ${id} has no checkpoint yet (state ${state}); train it first`,
    );
  }
  const state = JSON.parse(ck.files['state.json'].toString('utf8')) as { tensorIndex: TensorIndexEntry[] };
  const tensors = unpackTensors(state.tensorIndex, ck.files['tensors.bin']);
  const params: Params = new Map();
  for (const p of paramSpecs(spec.model)) {
    const t = tensors.get(`param/${p.name}`);
    if (!t) throw new StoredModelError(`run ${id}: checkpoint at step ${ck.step} lacks parameter ${p.name}`);
    params.set(p.name, tf.variable(tf.tensor(t.values, t.shape), false, `stored/${p.name}`));
  }
  return { spec, params, step: ck.step };
}

function dispose(params: Params): void {
  for (const v of params.values()) v.dispose();
}

/** Write the run's latest weights to `file` (safetensors, nanoGPT names and [out, in] Linear layout). */
export async function exportRun(
  store: RunStore,
  id: string,
  file: string,
): Promise<{ step: number; tensors: number; parameters: number }> {
  await initEngine({ backend: 'cpu' });
  const { spec, params, step } = loadRunParams(store, id);
  try {
    await saveSafetensors(file, params, spec.model);
    return { step, tensors: params.size, parameters: paramCount(spec.model) };
  } finally {
    dispose(params);
  }
}

export interface SampleOptions {
  prompt: string;
  /** new tokens per sample */
  tokens: number;
  samples: number;
  /** 0: greedy (argmax) */
  temperature: number;
  topK: number;
  seed: number;
  backend?: BackendName;
}

/**
 * Next-token choice from logits as nanoGPT's sample.py: logits / temperature, keep the topK
 * largest (others -inf), softmax, draw with `u` in [0, 1). Temperature 0 is argmax.
 */
export function chooseToken(logits: ArrayLike<number>, temperature: number, topK: number, u: number): number {
  const n = logits.length;
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < n; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  const scaled = Array.from(logits, (l) => l / temperature);
  const k = Math.min(topK, n);
  const kth = [...scaled].sort((a, b) => b - a)[k - 1];
  const max = Math.max(...scaled);
  const w = scaled.map((l) => (l < kth ? 0 : Math.exp(l - max)));
  const total = w.reduce((a, b) => a + b, 0);
  let acc = 0;
  for (let i = 0; i < n; i++) {
    acc += w[i] / total;
    if (u < acc) return i;
  }
  for (let i = n - 1; i >= 0; i--) if (w[i] > 0) return i; // u rounding past the last bucket
  return 0;
}

/** Generate `samples` continuations of the prompt from the run's latest weights; returns prompt + continuation each. */
export async function sampleRun(store: RunStore, id: string, o: SampleOptions): Promise<string[]> {
  const run = store.get(id);
  const backend = o.backend ?? (run && !isImportedSpec(run.spec) ? run.spec.backend : undefined);
  await initEngine(backend ? { backend } : {});
  const { spec, params } = loadRunParams(store, id);
  const cfg = spec.model;
  const tok = getTokenizer(spec.data.tokenizer);
  const rng = createRng(o.seed);
  const start = Array.from(tok.encode(o.prompt));
  if (start.length === 0) throw new StoredModelError('--prompt encodes to no token');
  const out: string[] = [];
  try {
    for (let s = 0; s < o.samples; s++) {
      const ids = [...start];
      for (let t = 0; t < o.tokens; t++) {
        const ctx = ids.slice(-cfg.blockSize);
        const logits = tf.tidy(() => {
          const idx = tf.tensor2d(ctx, [1, ctx.length], 'int32');
          const r = gptForward(params, idx, cfg, { training: false, seed: 0 });
          if (r.aux) r.aux.dispose();
          if (r.expertCounts) r.expertCounts.dispose();
          return tf.slice(r.logits, [0, ctx.length - 1, 0], [1, 1, tok.vocabSize]);
        });
        const v = logits.dataSync();
        logits.dispose();
        ids.push(chooseToken(v, o.temperature, o.topK, rng.nextFloat()));
      }
      out.push(tok.decode(ids));
    }
  } finally {
    dispose(params);
  }
  return out;
}
