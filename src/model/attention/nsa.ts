/**
 * Native Sparse Attention (NSA, Yuan et al. 2025) with the semantics of
 * fla-org/native-sparse-attention's `naive_nsa_with_compression` (ops/naive.py), the reference
 * of the `parallel_nsa` kernel the paper trained with. From already-projected heads:
 *   q [B, H, T, D], k, v [B, Hkv, T, D] (query head h uses K/V head floor(h / G), G = H / Hkv),
 *   gates [B, H, T, 3] = sigmoid(g_proj(x)) in the order (compressed, selected, sliding)
 *   -> o [B, H, T, D] = g_slc·o_slc + g_cmp·o_cmp (+ g_swa·o_swa when windowSize > 0).
 *
 * With blocks of BS tokens (C = T / BS blocks) and scale = 1/sqrt(D), for query token t:
 *  - Compression: k_cmp[c], v_cmp[c] = mean of k, v over block c. Only *complete* blocks are
 *    visible: block c if (c+1)·BS - 1 <= t, i.e. the nc_t = floor((t+1)/BS) first blocks (a
 *    block becomes visible at its last token, t itself included). p_cmp = softmax over those of
 *    q_t·k_cmp·scale; o_cmp = Σ p_cmp·v_cmp; o_cmp = 0 when nc_t = 0 (t < BS - 1).
 *  - Selection scores, per K/V head (shared by its G query heads): importance[c] =
 *    Σ_{h in group} p_cmp[h, c] for complete blocks, with the query's own block t//BS set to 1
 *    per head (so G in total: it is always among the top); blocks after t//BS are not eligible.
 *  - Top-k: the S = min(blockCounts, C) eligible blocks of highest importance (all of them when
 *    t//BS + 1 <= S). Ties go to the later block (so the own block wins a tie). Selection is an
 *    index choice: no gradient flows through it (as torch.topk's indices).
 *  - Selected attention: softmax of q_t·k_j·scale over tokens j <= t of the selected blocks,
 *    o_slc = Σ p·v_j.
 *  - Sliding window (off at windowSize 0, as in the paper): softmax over the last windowSize
 *    tokens j in (t - windowSize, t].
 *
 * The implementation is dense under masks: the selection is a [T, T] token mask and the
 * selected branch a masked softmax over all T keys, so its cost is T² per head while the FLOP
 * count (src/model/flops.ts) counts the algorithm's work (the selected keys only). Every op is
 * a plain tf op, so it runs and trains on every backend. No attention dropout (NSA has none).
 */
import { tf } from '../../engine/index.js';
import type { NsaConfig } from '../../config.js';

const MASKED = -1e9;

export interface NsaShapes {
  B: number;
  H: number;
  Hkv: number;
  G: number;
  T: number;
  D: number;
  BS: number;
  /** blocks C = T / BS */
  C: number;
  /** blocks selected per query, S = min(blockCounts, C) */
  S: number;
}

export function nsaShapes(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, nsa: NsaConfig): NsaShapes {
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4)
    throw new Error(`NSA expects rank-4 q, k, v; got ranks ${q.rank}, ${k.rank}, ${v.rank}`);
  const [B, H, T, D] = q.shape;
  const [Bk, Hkv, Tk, Dk] = k.shape;
  if (Bk !== B || Tk !== T || Dk !== D)
    throw new Error(
      `k ${JSON.stringify(k.shape)} must be [${B}, Hkv, ${T}, ${D}] to match q ${JSON.stringify(q.shape)}`,
    );
  if (v.shape.join() !== k.shape.join())
    throw new Error(`v ${JSON.stringify(v.shape)} must have k's shape ${JSON.stringify(k.shape)}`);
  if (H % Hkv !== 0) throw new Error(`NSA: key/value heads ${Hkv} must divide query heads ${H}`);
  const BS = nsa.blockSize;
  if (!Number.isInteger(BS) || BS < 1 || T % BS !== 0)
    throw new Error(`NSA: sequence length ${T} must be a multiple of the block size ${BS}`);
  if (!Number.isInteger(nsa.blockCounts) || nsa.blockCounts < 1)
    throw new Error(`NSA: blockCounts must be a positive integer, got ${nsa.blockCounts}`);
  const C = T / BS;
  return { B, H, Hkv, G: H / Hkv, T, D, BS, C, S: Math.min(nsa.blockCounts, C) };
}

/** Constant masks of one (backend, T, BS, window), built once and kept. */
interface NsaMasks {
  /** [T, C] additive: 0 where block c is complete at t, MASKED otherwise */
  cmpAdd: tf.Tensor2D;
  /** [T, 1]: 1 where at least one block is complete at t, else 0 */
  cmpRow: tf.Tensor2D;
  /** [T, C]: 1 at the query's own block c = t // BS */
  own: tf.Tensor2D;
  /** [T, C] bool: block c is eligible for selection at t (c <= t // BS) */
  eligible: tf.Tensor2D;
  /** [T, 1, C] bool: the same, as the competitor axis of the rank count */
  eligibleOther: tf.Tensor3D;
  /** [C, C] bool: [c, c'] = c' > c (a later block wins a tie) */
  later: tf.Tensor2D;
  /** [T, T] bool: j <= t */
  causal: tf.Tensor2D;
  /** [T, T] additive: 0 for j in (t - window, t], MASKED otherwise (null without window) */
  windowAdd: tf.Tensor2D | null;
}
const maskCache = new Map<string, NsaMasks>();

function masks(T: number, BS: number, window: number): NsaMasks {
  const key = `${tf.getBackend()}:${T}:${BS}:${window}`;
  const hit = maskCache.get(key);
  if (hit && !hit.cmpAdd.isDisposed) return hit;
  const C = T / BS;
  const cmpAdd = new Float32Array(T * C);
  const cmpRow = new Float32Array(T);
  const own = new Float32Array(T * C);
  const eligible = new Uint8Array(T * C);
  const later = new Uint8Array(C * C);
  const causal = new Uint8Array(T * T);
  const windowAdd = new Float32Array(T * T);
  for (let t = 0; t < T; t++) {
    const nc = Math.floor((t + 1) / BS);
    cmpRow[t] = nc > 0 ? 1 : 0;
    for (let c = 0; c < C; c++) {
      cmpAdd[t * C + c] = c < nc ? 0 : MASKED;
      own[t * C + c] = c === Math.floor(t / BS) ? 1 : 0;
      eligible[t * C + c] = c <= Math.floor(t / BS) ? 1 : 0;
    }
    for (let j = 0; j < T; j++) {
      causal[t * T + j] = j <= t ? 1 : 0;
      windowAdd[t * T + j] = j <= t && j > t - window ? 0 : MASKED;
    }
  }
  for (let c = 0; c < C; c++) for (let c2 = 0; c2 < C; c2++) later[c * C + c2] = c2 > c ? 1 : 0;
  const m: NsaMasks = {
    cmpAdd: tf.keep(tf.tensor2d(cmpAdd, [T, C])),
    cmpRow: tf.keep(tf.tensor2d(cmpRow, [T, 1])),
    own: tf.keep(tf.tensor2d(own, [T, C])),
    eligible: tf.keep(tf.tensor2d(eligible, [T, C], 'bool')),
    eligibleOther: tf.keep(tf.tensor3d(eligible, [T, 1, C], 'bool')),
    later: tf.keep(tf.tensor2d(later, [C, C], 'bool')),
    causal: tf.keep(tf.tensor2d(causal, [T, T], 'bool')),
    windowAdd: window > 0 ? tf.keep(tf.tensor2d(windowAdd, [T, T])) : null,
  };
  maskCache.set(key, m);
  return m;
}

/**
 * Which blocks each query selects, from the compressed probabilities p [B·Hkv, G, T, C]:
 * a bool [B·Hkv, T, C]. No gradient (an index choice).
 */
function selectedBlocks(p: tf.Tensor4D, s: NsaShapes, m: NsaMasks): tf.Tensor3D {
  return tf.tidy(() => {
    const own = m.own;
    // importance [B·Hkv, T, C]: group sum of p, own block = 1 per head (G in total)
    const imp = tf.add(tf.mul(tf.sum(p, 1), tf.sub(1, own)), tf.mul(own, s.G));
    const mine = tf.expandDims(imp, 3); // [BH, T, C, 1]: block c's score
    const other = tf.expandDims(imp, 2); // [BH, T, 1, C]: competitor c'
    const beats = tf.logicalOr(tf.greater(other, mine), tf.logicalAnd(tf.equal(other, mine), m.later)); // [BH, T, C, C]
    const rank = tf.sum(tf.cast(tf.logicalAnd(beats, m.eligibleOther), 'int32'), 3); // eligible blocks ahead of c
    return tf.logicalAnd(tf.less(rank, s.S), m.eligible) as tf.Tensor3D; // [BH, T, C]
  });
}

/** The additive token mask [B·Hkv, 1, T, T] of the selected branch, with no gradient to p. */
function selectionMask(p: tf.Tensor4D, s: NsaShapes, m: NsaMasks): tf.Tensor4D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const pp = args[0] as tf.Tensor4D;
    const value = tf.tidy(() => {
      const sel = selectedBlocks(pp, s, m); // [BH, T, C]
      const BH = s.B * s.Hkv;
      // block c -> its tokens c·BS .. c·BS + BS - 1
      const tok = tf.reshape(tf.tile(tf.reshape(tf.cast(sel, 'float32'), [BH * s.T, s.C, 1]), [1, 1, s.BS]), [
        BH,
        s.T,
        s.T,
      ]);
      const allowed = tf.logicalAnd(tf.cast(tok, 'bool'), m.causal);
      return tf.reshape(tf.where(allowed, tf.zerosLike(tok), tf.fill(tok.shape, MASKED)), [
        BH,
        1,
        s.T,
        s.T,
      ]) as tf.Tensor4D;
    });
    return { value, gradFunc: () => tf.zerosLike(pp) };
  });
  return f(p) as tf.Tensor4D;
}

/** The blocks each query selects: bool [B, Hkv, T, C] (for inspection and tests), from q and k. */
export function nsaSelection(q: tf.Tensor4D, k: tf.Tensor4D, nsa: NsaConfig): tf.Tensor4D {
  const s = nsaShapes(q, k, k, nsa);
  return tf.tidy(() => {
    const m = masks(s.T, s.BS, nsa.windowSize);
    const p = compressedProbs(q, k, s, m);
    return tf.reshape(selectedBlocks(p, s, m), [s.B, s.Hkv, s.T, s.C]) as tf.Tensor4D;
  });
}

/** Mean over blocks: [B, Hkv, T, D] -> [B, Hkv, C, D]. */
function pool(x: tf.Tensor4D, s: NsaShapes): tf.Tensor4D {
  return tf.reshape(tf.mean(tf.reshape(x, [s.B * s.Hkv, s.C, s.BS, s.D]), 2), [s.B, s.Hkv, s.C, s.D]) as tf.Tensor4D;
}

/** Compressed attention probabilities p [B·Hkv, G, T, C] (rows with no complete block are 0). */
function compressedProbs(q: tf.Tensor4D, k: tf.Tensor4D, s: NsaShapes, m: NsaMasks): tf.Tensor4D {
  const qg = tf.reshape(tf.mul(q, 1 / Math.sqrt(s.D)), [s.B, s.Hkv, s.G * s.T, s.D]);
  const sc = tf.reshape(tf.matMul(qg, pool(k, s), false, true), [s.B * s.Hkv, s.G, s.T, s.C]);
  return tf.mul(tf.softmax(tf.add(sc, m.cmpAdd)), m.cmpRow) as tf.Tensor4D;
}

/** NSA over projected heads (see the file comment): q [B,H,T,D], k, v [B,Hkv,T,D], gates [B,H,T,3] -> [B,H,T,D]. */
export function nsaAttention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  gates: tf.Tensor4D,
  nsa: NsaConfig,
): tf.Tensor4D {
  const s = nsaShapes(q, k, v, nsa);
  const { B, H, Hkv, G, T, D, C } = s;
  if (gates.shape.join() !== [B, H, T, 3].join())
    throw new Error(`NSA gates ${JSON.stringify(gates.shape)} must be [${B}, ${H}, ${T}, 3]`);
  if (!Number.isInteger(nsa.windowSize) || nsa.windowSize < 0)
    throw new Error(`NSA: windowSize must be a non-negative integer, got ${nsa.windowSize}`);
  return tf.tidy(() => {
    const m = masks(T, s.BS, nsa.windowSize);
    const toHeads = (x: tf.Tensor) => tf.reshape(x, [B, H, T, D]) as tf.Tensor4D;
    const gate = (i: number) => tf.slice(gates, [0, 0, 0, i], [B, H, T, 1]);
    // compression branch
    const p = compressedProbs(q, k, s, m); // [B·Hkv, G, T, C]
    const oCmp = toHeads(tf.matMul(tf.reshape(p, [B, Hkv, G * T, C]), pool(v, s)));
    // token scores, shared by the selected and sliding branches
    const qg = tf.reshape(tf.mul(q, 1 / Math.sqrt(D)), [B, Hkv, G * T, D]);
    const scores = tf.reshape(tf.matMul(qg, k, false, true), [B * Hkv, G, T, T]);
    const branch = (add: tf.Tensor) =>
      toHeads(tf.matMul(tf.reshape(tf.softmax(tf.add(scores, add)), [B, Hkv, G * T, T]), v));
    const oSlc = branch(selectionMask(p, s, m));
    let o = tf.add(tf.mul(oSlc, gate(1)), tf.mul(oCmp, gate(0)));
    if (m.windowAdd) o = tf.add(o, tf.mul(branch(m.windowAdd), gate(2)));
    return o as tf.Tensor4D;
  });
}
