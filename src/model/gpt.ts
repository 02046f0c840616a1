/**
 * The GPT (nanoGPT semantics), assembled from parts chosen by ModelConfig:
 *   x = drop(s · (wte[idx] + wpe[0..T)))      (no wpe with RoPE; s = embedScale, default 1)
 *   per block i:  x = x + drop(attn(n1(x)))    n1/n2 = LayerNorm | RMSNorm | identity (norm 'none')
 *                 x = x + drop(mlp(n2(x)))     mlp = gelu | swiglu | moe
 *   post-LN (normPlacement 'post'): x = n1(x + drop(attn(x))); x = n2(x + drop(mlp(x)))
 *   logits = ln_f(x) · wteᵀ                     (tied lm_head)
 *   QK-norm (qkNorm): q, k = RMSNorm(q), RMSNorm(k) over each head's channels, before RoPE
 * The residual stream is kept 2-D, x [N = B·T, C], so every Linear is a plain 2-D matmul.
 */
import { tf } from '../engine/index.js';
import { causalAttention, nativeAttention, softmaxCrossEntropy } from '../engine/fused.js';
import type { ModelConfig } from '../config.js';
import { attend } from './attention/index.js';
import { getParam, headSize, mixSeed, nsaOf, type Params } from './params.js';
import { nsaAttention } from './attention/nsa.js';
import { layerNorm, rmsNorm } from './norms.js';
import { applyRope } from './rope.js';
import { geluMlp, linearP, moeMlp, swigluMlp } from './mlp.js';

export interface ForwardOptions {
  /** dropout on (training) or off (evaluation) */
  training: boolean;
  /** seed of this forward pass; every dropout site derives its own seed from it */
  seed: number;
}

export interface ForwardResult {
  logits: tf.Tensor3D; // [B, T, V]
  /** MoE load-balancing loss, mean over layers (0 without MoE) */
  aux: tf.Scalar;
  /**
   * MoE only: tokens routed to each expert, per layer, on the device: [nLayer, E] float32
   * (read it with `await t.data()`; the caller disposes it). null without MoE.
   */
  expertCounts: tf.Tensor2D | null;
}

export interface LossResult {
  /** ce + cfg.moe.auxLossWeight·aux when mlp is 'moe', else ce */
  loss: tf.Scalar;
  ce: tf.Scalar;
  aux: tf.Scalar;
  /** as ForwardResult.expertCounts: [nLayer, E] on the device, or null without MoE */
  expertCounts: tf.Tensor2D | null;
}

/** Dropout sites: 0 = embeddings; per layer i: 3i+1 attention probs, 3i+2 attn residual, 3i+3 mlp residual. */
export function dropoutSeed(seed: number, site: number): number {
  return mixSeed(seed, `dropout/${site}`);
}

const t1 = (p: Params, n: string) => p.get(n) as unknown as tf.Tensor1D | undefined;

function norm(params: Params, name: string, kind: 'layernorm' | 'rmsnorm', x: tf.Tensor2D): tf.Tensor2D {
  const g = getParam(params, `${name}.weight`) as unknown as tf.Tensor1D;
  return kind === 'rmsnorm' ? rmsNorm(x, g) : layerNorm(x, g, t1(params, `${name}.bias`));
}

function dropout<T extends tf.Tensor>(x: T, rate: number, opts: ForwardOptions, site: number): T {
  return opts.training && rate > 0 ? (tf.dropout(x, rate, undefined, dropoutSeed(opts.seed, site)) as T) : x;
}

/**
 * NSA attention of block i (the paper's sparse attention): its own q/k/v projections with the
 * NSA head layout, three sigmoid gates per head from g_proj, o_proj; no rotary (the paper's
 * is the identity). x [B·T, C] -> [B·T, C] (before residual dropout).
 */
function nsaBlock(params: Params, i: number, x: tf.Tensor2D, B: number, T: number, cfg: ModelConfig) {
  const n = nsaOf(cfg);
  const D = cfg.nEmbd / n.heads;
  const pre = `transformer.h.${i}.attn`;
  const heads = (t: tf.Tensor, h: number, d: number) =>
    tf.transpose(tf.reshape(t, [B, T, h, d]), [0, 2, 1, 3]) as tf.Tensor4D;
  let q = heads(linearP(params, `${pre}.q_proj`, x), n.heads, D);
  let k = heads(linearP(params, `${pre}.k_proj`, x), n.kvHeads, D);
  if (cfg.qkNorm) {
    q = headNorm(params, `${pre}.q_norm`, q);
    k = headNorm(params, `${pre}.k_norm`, k);
  }
  const v = heads(linearP(params, `${pre}.v_proj`, x), n.kvHeads, D);
  const gates = heads(tf.sigmoid(linearP(params, `${pre}.g_proj`, x)), n.heads, 3); // [B, H, T, 3]: cmp, slc, swa
  const y = nsaAttention(q, k, v, gates, n); // [B, H, T, D]
  return linearP(
    params,
    `${pre}.o_proj`,
    tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B * T, n.heads * D]) as tf.Tensor2D,
  );
}

/** QK-norm: RMSNorm of every head's vectors over its channels, t [B, H, T, d], gain `${name}.weight` [d] shared by the heads. */
function headNorm(params: Params, name: string, t: tf.Tensor4D): tf.Tensor4D {
  return rmsNorm(t, getParam(params, `${name}.weight`) as unknown as tf.Tensor1D);
}

/**
 * Whether block attention runs as one native kernel from qkv to the merged heads
 * (src/engine/fused.ts causalAttention, the same formula as the tensor path): plain attention
 * without dropout, GQA, QK-norm or rope, on wasm with the native addon. An innovation that
 * changes q, k or v between c_attn and the softmax must be excluded here
 * (test/every-innovation.test.ts catches one that is not: its parameters get no gradient).
 * The memory estimate (src/train/limits.ts) asks the same question.
 */
export function usesNativeAttention(cfg: ModelConfig, training: boolean): boolean {
  return (
    cfg.attnKernel === 'plain' &&
    cfg.nKvHead === cfg.nHead &&
    cfg.positions !== 'rope' &&
    !cfg.qkNorm &&
    !(training && cfg.dropout > 0) &&
    nativeAttention()
  );
}

/** Causal self-attention of block i: x [B·T, C] -> [B·T, C] (before residual dropout). */
function attention(
  params: Params,
  i: number,
  x: tf.Tensor2D,
  B: number,
  T: number,
  cfg: ModelConfig,
  opts: ForwardOptions,
) {
  if (cfg.attnKernel === 'nsa') return nsaBlock(params, i, x, B, T, cfg);
  const C = cfg.nEmbd;
  const H = cfg.nHead;
  const Hkv = cfg.nKvHead;
  const hs = headSize(cfg);
  const pre = `transformer.h.${i}.attn`;
  const qkv = linearP(params, `${pre}.c_attn`, x); // [B·T, C + 2·Hkv·hs]
  if (usesNativeAttention(cfg, opts.training)) return linearP(params, `${pre}.c_proj`, causalAttention(qkv, B, T, H));
  const [q2, k2, v2] = tf.split(qkv, [C, Hkv * hs, Hkv * hs], 1);
  const heads = (t: tf.Tensor, h: number) => tf.transpose(tf.reshape(t, [B, T, h, hs]), [0, 2, 1, 3]) as tf.Tensor4D;
  let q = heads(q2, H); // [B, H, T, hs]
  let k = heads(k2, Hkv); // [B, Hkv, T, hs]
  const v = heads(v2, Hkv); // [B, Hkv, T, hs]
  if (cfg.qkNorm) {
    q = headNorm(params, `${pre}.q_norm`, q);
    k = headNorm(params, `${pre}.k_norm`, k);
  }
  if (cfg.positions === 'rope') {
    q = applyRope(q, cfg.ropeBase);
    k = applyRope(k, cfg.ropeBase);
  }
  const y = attend(cfg.attnKernel, q, k, v, {
    dropout: cfg.dropout,
    training: opts.training,
    seed: dropoutSeed(opts.seed, 3 * i + 1),
    sparse: cfg.sparse,
    sparseSelect: cfg.sparseSelect,
  }); // [B, H, T, hs]
  const y2 = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B * T, C]) as tf.Tensor2D; // re-assemble heads
  return linearP(params, `${pre}.c_proj`, y2);
}

/** Final hidden states [B·T, C] after ln_f, plus MoE aux and counts. */
function trunk(params: Params, idx: tf.Tensor2D, cfg: ModelConfig, opts: ForwardOptions) {
  const [B, T] = idx.shape;
  if (T > cfg.blockSize) throw new Error(`sequence length ${T} exceeds the context blockSize ${cfg.blockSize}`);
  if (idx.dtype !== 'int32') throw new Error(`idx must be int32 token ids, got dtype ${idx.dtype}`);
  const C = cfg.nEmbd;
  const loads: tf.Tensor1D[] = [];
  const auxes: tf.Scalar[] = [];
  const wte = getParam(params, 'transformer.wte.weight') as unknown as tf.Tensor2D; // [V, C]
  let x = tf.gather(wte, tf.reshape(idx, [B * T])) as tf.Tensor2D; // [B·T, C]
  if (cfg.positions === 'learned') {
    const wpe = getParam(params, 'transformer.wpe.weight') as unknown as tf.Tensor2D; // [blockSize, C]
    const pos = tf.slice(wpe, [0, 0], [T, C]); // [T, C]
    x = tf.reshape(tf.add(tf.reshape(x, [B, T, C]), pos), [B * T, C]);
  }
  if (cfg.embedScale !== undefined && cfg.embedScale !== 1) x = tf.mul(x, cfg.embedScale);
  x = dropout(x, cfg.dropout, opts, 0);
  const gain = cfg.blockInputScale ?? 1;
  const n = (name: string, h: tf.Tensor2D) =>
    cfg.norm !== 'none' ? norm(params, name, cfg.norm, h) : gain !== 1 ? (tf.mul(h, gain) as tf.Tensor2D) : h;
  // pre-LN: x + f(n(x)); post-LN: n(x + f(x)) (the norm moves from the sublayer's input to after the add)
  const post = cfg.normPlacement === 'post';
  const pre = (name: string, h: tf.Tensor2D) => (post ? h : n(name, h));
  for (let i = 0; i < cfg.nLayer; i++) {
    const h = `transformer.h.${i}`;
    const a = attention(params, i, pre(`${h}.ln_1`, x), B, T, cfg, opts);
    x = tf.add(x, dropout(a, cfg.dropout, opts, 3 * i + 2));
    if (post) x = n(`${h}.ln_1`, x);
    const hin = pre(`${h}.ln_2`, x);
    let m: tf.Tensor2D;
    if (cfg.mlp === 'gelu') m = geluMlp(params, `${h}.mlp`, hin);
    else if (cfg.mlp === 'swiglu') m = swigluMlp(params, `${h}.mlp`, hin);
    else {
      const r = moeMlp(params, `${h}.mlp`, hin, cfg.moe, cfg.moeImpl);
      m = r.y;
      auxes.push(r.aux);
      loads.push(r.load);
    }
    x = tf.add(x, dropout(m, cfg.dropout, opts, 3 * i + 3));
    if (post) x = n(`${h}.ln_2`, x);
  }
  x = norm(params, 'transformer.ln_f', cfg.norm === 'rmsnorm' ? 'rmsnorm' : 'layernorm', x);
  const aux = (auxes.length ? tf.div(tf.addN(auxes), auxes.length) : tf.scalar(0)) as tf.Scalar;
  const counts = loads.length ? (tf.stack(loads, 0) as tf.Tensor2D) : null; // [nLayer, E]
  return { x, aux, counts, wte };
}

/** idx [B, T] int32 -> logits [B, T, V] (tied head: x · wteᵀ), MoE aux, expert counts. */
export function gptForward(params: Params, idx: tf.Tensor2D, cfg: ModelConfig, opts: ForwardOptions): ForwardResult {
  const r = tf.tidy(() => {
    const { x, aux, counts, wte } = trunk(params, idx, cfg, opts);
    const [B, T] = idx.shape;
    const logits = tf.reshape(tf.matMul(x, wte, false, true), [B, T, cfg.vocabSize]) as tf.Tensor3D; // [B, T, V]
    return counts ? { logits, aux, counts } : { logits, aux };
  });
  return { logits: r.logits, aux: r.aux, expertCounts: r.counts ?? null };
}

/**
 * Mean cross-entropy of logits [N, V] against targets [N] (int32): mean of −log softmax[target].
 * One fused kernel forward and one backward on wasm/cpu (src/engine/fused.ts), tf ops elsewhere.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  return softmaxCrossEntropy(logits, targets);
}

/** Training loss: mean CE over all B·T tokens (+ auxLossWeight·aux with MoE). targets [B, T] int32. */
export function gptLoss(
  params: Params,
  idx: tf.Tensor2D,
  targets: tf.Tensor2D,
  cfg: ModelConfig,
  opts: ForwardOptions,
): LossResult {
  if (targets.shape[0] !== idx.shape[0] || targets.shape[1] !== idx.shape[1])
    throw new Error(`targets shape [${targets.shape}] must equal idx shape [${idx.shape}]`);
  const r = tf.tidy(() => {
    const { x, aux, counts, wte } = trunk(params, idx, cfg, opts);
    const logits = tf.matMul(x, wte, false, true) as tf.Tensor2D; // [B·T, V]
    const ce = crossEntropy(logits, tf.reshape(targets, [-1]) as tf.Tensor1D);
    const loss = (
      cfg.mlp === 'moe' && cfg.moe.auxLossWeight > 0 ? tf.add(ce, tf.mul(aux, cfg.moe.auxLossWeight)) : tf.clone(ce)
    ) as tf.Scalar;
    return counts ? { loss, ce, aux, counts } : { loss, ce, aux };
  });
  return { loss: r.loss, ce: r.ce, aux: r.aux, expertCounts: r.counts ?? null };
}
