/**
 * GPT parameters: names, shapes, GPT-2 initialisation, counting, weight-decay groups.
 *
 * Names are nanoGPT's / Hugging Face GPT-2's (`transformer.h.{i}.attn.c_attn.weight`, ...).
 * In-memory layout (what the model computes with):
 *   - Linear weights are [in, out] (the HF GPT-2 Conv1D layout), so a layer is the plain
 *     2-D product x2d[N, in] · W[in, out]: the wasm backend's fast path (ENGINE-NOTES trap 2).
 *   - Embeddings are [rows, C]: wte [V, C], wpe [T, C]. The lm_head is tied to wte
 *     (one variable; logits = x · wteᵀ).
 * File layout (safetensors.ts): nanoGPT's PyTorch layout, Linear weights [out, in].
 *
 * Extra names beyond GPT-2:
 *   SwiGLU: mlp.c_fc  [C, Hs] = W3, the "up" (value) branch
 *           mlp.c_fc2 [C, Hs] = W1, the gate (silu applied)
 *           mlp.c_proj [Hs, C] = W2            (Hs = swigluHidden(cfg))
 *   NSA:    attn.q_proj [C, H·D], attn.k_proj / attn.v_proj [C, Hkv·D] (bias = cfg.bias),
 *           attn.g_proj [C, 3H], attn.o_proj [H·D, C] (no bias), H/Hkv/D from cfg.nsa
 *   QK-norm: attn.q_norm.weight, attn.k_norm.weight [head size] (RMSNorm gains, shared by the heads)
 *   MoE:    mlp.router.weight [C, E]  (no bias)
 *           mlp.experts.{e}.c_fc.weight/.bias [C, Hd], mlp.experts.{e}.c_proj.weight/.bias [Hd, C]
 */
import { tf } from '../engine/index.js';
import type { ModelConfig, NsaConfig } from '../config.js';

/** All trainable tensors of one model, keyed by nanoGPT name, in a stable order. */
export type Params = Map<string, tf.Variable>;

export type InitKind = 'normal' | 'residual' | 'zeros' | 'ones';

export interface ParamSpec {
  name: string;
  /** in-memory shape */
  shape: number[];
  init: InitKind;
  /** a Linear weight stored [in, out] in memory and [out, in] in files */
  linear: boolean;
  /**
   * AdamW weight decay applies to it. Declared where the parameter is created (below), never
   * derived from its name: matmul weights and embeddings decay, biases and norm gains do not
   * (nanoGPT's `p.dim() >= 2` rule). An innovation adding a parameter says which it is.
   */
  decay: boolean;
}

export const INIT_STD = 0.02;

/** SwiGLU hidden width: 2/3 of cfg.mlpHidden, rounded up to a multiple of 8 (LLaMA's rule). */
export function swigluHidden(cfg: ModelConfig): number {
  return 8 * Math.ceil(Math.floor((2 * cfg.mlpHidden) / 3) / 8);
}

/** The NSA settings of a config with attnKernel 'nsa' (an Error if they are missing). */
export function nsaOf(cfg: ModelConfig): NsaConfig {
  if (!cfg.nsa)
    throw new Error("attnKernel 'nsa' needs model.nsa {heads, kvHeads, blockSize, blockCounts, windowSize}");
  return cfg.nsa;
}

/** Head size hs = C / H. */
export function headSize(cfg: ModelConfig): number {
  return cfg.nEmbd / cfg.nHead;
}

/** Every parameter of the configured model, in a stable order (embeddings, blocks, ln_f). */
export function paramSpecs(cfg: ModelConfig): ParamSpec[] {
  const C = cfg.nEmbd;
  const hs = headSize(cfg);
  const out: ParamSpec[] = [];
  const lin = (name: string, nin: number, nout: number, residual = false, bias = cfg.bias) => {
    out.push({
      name: `${name}.weight`,
      shape: [nin, nout],
      init: residual ? 'residual' : 'normal',
      linear: true,
      decay: true,
    });
    if (bias) out.push({ name: `${name}.bias`, shape: [nout], init: 'zeros', linear: false, decay: false });
  };
  const norm = (name: string, kind: 'layernorm' | 'rmsnorm', width = C) => {
    out.push({ name: `${name}.weight`, shape: [width], init: 'ones', linear: false, decay: false });
    if (kind === 'layernorm' && cfg.bias)
      out.push({ name: `${name}.bias`, shape: [width], init: 'zeros', linear: false, decay: false });
  };
  // QK-norm: RMSNorm gains over a head's channels, one for queries and one for keys (not decayed)
  const qkNorms = (h: string, width: number) => {
    norm(`${h}.attn.q_norm`, 'rmsnorm', width);
    norm(`${h}.attn.k_norm`, 'rmsnorm', width);
  };
  const mlpGelu = (prefix: string, hidden: number) => {
    lin(`${prefix}.c_fc`, C, hidden);
    lin(`${prefix}.c_proj`, hidden, C, true);
  };

  out.push({ name: 'transformer.wte.weight', shape: [cfg.vocabSize, C], init: 'normal', linear: false, decay: true });
  if (cfg.positions === 'learned')
    out.push({ name: 'transformer.wpe.weight', shape: [cfg.blockSize, C], init: 'normal', linear: false, decay: true });
  for (let i = 0; i < cfg.nLayer; i++) {
    const h = `transformer.h.${i}`;
    if (cfg.norm !== 'none') norm(`${h}.ln_1`, cfg.norm);
    if (cfg.attnKernel === 'nsa') {
      // NativeSparseAttention's own projections (fla-org/native-sparse-attention): q/k/v with
      // qkv_bias = bias, g_proj (3 gates per head) and o_proj without bias; nanoGPT's init gives
      // them all N(0, 0.02) (its residual scaling applies to names ending in c_proj.weight only)
      const n = nsaOf(cfg);
      const d = C / n.heads;
      lin(`${h}.attn.q_proj`, C, n.heads * d);
      lin(`${h}.attn.k_proj`, C, n.kvHeads * d);
      lin(`${h}.attn.v_proj`, C, n.kvHeads * d);
      lin(`${h}.attn.g_proj`, C, 3 * n.heads, false, false);
      lin(`${h}.attn.o_proj`, n.heads * d, C, false, false);
      if (cfg.qkNorm) qkNorms(h, d);
    } else {
      lin(`${h}.attn.c_attn`, C, C + 2 * cfg.nKvHead * hs);
      lin(`${h}.attn.c_proj`, C, C, true);
      if (cfg.qkNorm) qkNorms(h, hs);
    }
    if (cfg.norm !== 'none') norm(`${h}.ln_2`, cfg.norm);
    switch (cfg.mlp) {
      case 'gelu':
        mlpGelu(`${h}.mlp`, cfg.mlpHidden);
        break;
      case 'swiglu': {
        const hsw = swigluHidden(cfg);
        lin(`${h}.mlp.c_fc`, C, hsw);
        lin(`${h}.mlp.c_fc2`, C, hsw);
        lin(`${h}.mlp.c_proj`, hsw, C, true);
        break;
      }
      case 'moe':
        lin(`${h}.mlp.router`, C, cfg.moe.experts, false, false);
        for (let e = 0; e < cfg.moe.experts; e++) mlpGelu(`${h}.mlp.experts.${e}`, cfg.mlpHidden);
        break;
    }
  }
  norm('transformer.ln_f', cfg.norm === 'rmsnorm' ? 'rmsnorm' : 'layernorm');
  return out;
}

/** 32-bit FNV-1a hash of a string, mixed with a seed: stable per-name seeds. */
export function mixSeed(seed: number, salt: string | number): number {
  let h = (2166136261 ^ (seed >>> 0)) >>> 0;
  const s = String(salt);
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619) >>> 0;
  }
  // extra avalanche so that nearby seeds give unrelated streams
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  return h >>> 0;
}

/**
 * GPT-2 initialisation: weights and embeddings N(0, 0.02); residual projections
 * (every `c_proj.weight`, experts' included) N(0, 0.02/sqrt(2·nLayer)); biases 0; norm gains 1.
 * Each tensor's stream is seeded by (seed, name), so adding a tensor does not move the others.
 */
export function initParams(cfg: ModelConfig, seed: number): Params {
  if (!Number.isInteger(seed)) throw new Error(`initParams: seed must be an integer, got ${seed}`);
  const params: Params = new Map();
  const residualStd = INIT_STD / Math.sqrt(2 * cfg.nLayer);
  for (const p of paramSpecs(cfg)) {
    const t = tf.tidy(() => {
      switch (p.init) {
        case 'normal':
          return tf.randomNormal(p.shape, 0, INIT_STD, 'float32', mixSeed(seed, p.name));
        case 'residual':
          return tf.randomNormal(p.shape, 0, residualStd, 'float32', mixSeed(seed, p.name));
        case 'zeros':
          return tf.zeros(p.shape);
        case 'ones':
          return tf.ones(p.shape);
      }
    });
    params.set(p.name, tf.variable(t, true));
    t.dispose();
  }
  return params;
}

/** Free every variable of a model. */
export function disposeParams(params: Params): void {
  for (const v of params.values()) v.dispose();
}

/**
 * Which parameters of a model AdamW decays (AdamWOptions.decayed): the `decay` each parameter
 * declared in paramSpecs (matmul weights and embeddings, not biases or norm gains, as nanoGPT's
 * `p.dim() >= 2`). A name the config does not create is an Error, not silently undecayed.
 */
export function decayedParams(cfg: ModelConfig): (name: string) => boolean {
  const decay = new Map(paramSpecs(cfg).map((p) => [p.name, p.decay]));
  return (name) => {
    const d = decay.get(name);
    if (d === undefined)
      throw new Error(`parameter "${name}" is not part of this model config; it has no weight-decay group`);
    return d;
  };
}

export interface CountOptions {
  /**
   * nanoGPT's `get_num_params(non_embedding=True)`: subtract the position table wpe
   * (wte stays counted because it is also the lm_head). Default false: every parameter.
   */
  nonEmbedding?: boolean;
}

function countFrom(entries: { name: string; size: number }[], opts: CountOptions): number {
  let n = 0;
  for (const e of entries) if (!(opts.nonEmbedding && e.name === 'transformer.wpe.weight')) n += e.size;
  return n;
}

/** Parameter count of a config without allocating it (all parameters unless nonEmbedding). */
export function paramCount(cfg: ModelConfig, opts: CountOptions = {}): number {
  return countFrom(
    paramSpecs(cfg).map((p) => ({ name: p.name, size: p.shape.reduce((a, b) => a * b, 1) })),
    opts,
  );
}

/** Parameter count of allocated params (all parameters unless nonEmbedding). */
export function countParams(params: Params, opts: CountOptions = {}): number {
  return countFrom(
    [...params].map(([name, v]) => ({ name, size: v.size })),
    opts,
  );
}

/** The variable called `name`, or an Error naming it and the model's similar names. */
export function getParam(params: Params, name: string): tf.Variable {
  const v = params.get(name);
  if (!v) {
    const stem = name.split('.').slice(0, 3).join('.');
    const near = [...params.keys()].filter((k) => k.startsWith(stem)).slice(0, 8);
    throw new Error(`parameter "${name}" is missing${near.length ? `; present nearby: ${near.join(', ')}` : ''}`);
  }
  return v;
}
