/**
 * Block-sparse causal attention in the spirit of Native Sparse Attention (NSA, Yuan et al. 2025):
 * a sliding window of local blocks plus a few earlier blocks selected by a compressed
 * (mean-pooled) attention score. Exact softmax over the attended tokens.
 *
 * Pattern, with blocks of `blockSize` tokens (nb = ceil(T / blockSize), the last may be short)
 * and L = localBlocks, S = selectedBlocks, query block i attends:
 *   local:    blocks max(0, i-L+1) .. i  (its own block causally masked inside)
 *   selected: the S most important of the eligible earlier blocks 0 .. i-L (all of them if
 *             there are no more than S), chosen per (batch, K/V head, query block):
 *               score_h(i, j) = qbar_i^h · mean(k_j) / sqrt(hs)
 *             where mean(k_j) is over block j's tokens and qbar_i is the mean of the bs most
 *             recent queries that every token of block i may see: positions i·bs-bs+1 .. i·bs
 *             (the block's first token and the bs-1 before it). Pooling over the whole query
 *             block would let a token's selection depend on later tokens' queries: not causal.
 *               importance(i, j) = Σ_{h in the K/V group} softmax_j(score_h(i, ·))  over eligible j
 *             (NSA's rule: selection is shared by the query heads of one GQA group, so the
 *             group reads one set of K/V blocks; with MHA the group is one head.) Ties go to
 *             the lower block index. Selection is an index choice: no gradient flows through it.
 * So query block i uses n_i = min(i+1, L+S) key blocks (sparseBlocksUsed).
 *
 * Work is proportional to the blocks used: the selected K/V blocks are gathered per query
 * block and a small dense attention [g·bs, n_i·bs] is computed; no T×T matrix is formed.
 * Query blocks with the same n_i are batched together, up to SPARSE_GROUP (4) per tile.
 * The selection runs in JS after reading the small score tensor back ('host', cpu/wasm) or as
 * tensor ops with no read-back ('device', webgpu): resolveSparseSelect, sparseSelectedDevice.
 */
import { tf } from '../../engine/index.js';
import type { SparseConfig } from '../../config.js';
import { SPARSE_SELECTS } from '../../config.js';
import type { AttendOptions } from './index.js';

const MASKED = -1e9;
/** Most query blocks batched into one tile (bounds the temporaries to SPARSE_GROUP·g·bs × (L+S)·bs per K/V head). */
export const SPARSE_GROUP = 4;

export function validateSparse(sparse: SparseConfig): void {
  const { blockSize, localBlocks, selectedBlocks } = sparse;
  if (!Number.isInteger(blockSize) || blockSize < 1)
    throw new Error(`sparse.blockSize must be a positive integer, got ${blockSize}`);
  if (!Number.isInteger(localBlocks) || localBlocks < 1)
    throw new Error(
      `sparse.localBlocks must be a positive integer (it includes the query's own block), got ${localBlocks}`,
    );
  if (!Number.isInteger(selectedBlocks) || selectedBlocks < 0)
    throw new Error(`sparse.selectedBlocks must be a non-negative integer, got ${selectedBlocks}`);
}

/** Number of key blocks each query block attends, for FLOP counting: n_i = min(i+1, L+S), i < ceil(T/bs). */
export function sparseBlocksUsed(T: number, sparse: SparseConfig): number[] {
  validateSparse(sparse);
  if (!Number.isInteger(T) || T < 1) throw new Error(`sequence length must be a positive integer, got ${T}`);
  const nb = Math.ceil(T / sparse.blockSize);
  const cap = sparse.localBlocks + sparse.selectedBlocks;
  return Array.from({ length: nb }, (_, i) => Math.min(i + 1, cap));
}

export interface SparseSelection {
  B: number;
  Hkv: number;
  T: number;
  bs: number;
  nb: number;
  /** blocks[b][h][i]: key blocks attended by query block i of K/V head h, ascending (own block last) */
  blocks: number[][][][];
}

/** Shapes checked: q [B, H, T, hs], k [B, Hkv, T, hs]. */
function shapes(q: tf.Tensor, k: tf.Tensor) {
  if (q.rank !== 4 || k.rank !== 4)
    throw new Error(`sparse attention expects rank-4 q and k; got ranks ${q.rank}, ${k.rank}`);
  const [B, H, T, hs] = q.shape;
  const [Bk, Hkv, Tk, hsk] = k.shape;
  if (Bk !== B || Tk !== T || hsk !== hs)
    throw new Error(
      `k ${JSON.stringify(k.shape)} must be [${B}, Hkv, ${T}, ${hs}] to match q ${JSON.stringify(q.shape)}`,
    );
  if (H % Hkv !== 0) throw new Error(`key/value heads ${Hkv} must divide query heads ${H}`);
  return { B, H, Hkv, g: H / Hkv, T, hs };
}

/** Pad the T axis of [B, h, T, d] with zeros to nb·bs. */
function padT(x: tf.Tensor4D, Tp: number): tf.Tensor4D {
  const T = x.shape[2];
  return T === Tp
    ? x
    : tf.pad(x, [
        [0, 0],
        [0, 0],
        [0, Tp - T],
        [0, 0],
      ]);
}

/**
 * Block scores of the selection (see the header): score_h(i, j) = qbar_i^h · mean(k_j) / sqrt(hs),
 * q [B, H, T, hs], k [B, Hkv, T, hs] -> [B, Hkv, g·nb, nb] (rows: query head of the group, then query block).
 */
function selectionScores(q: tf.Tensor4D, k: tf.Tensor4D, bs: number, nb: number): tf.Tensor4D {
  const { B, H, Hkv, g, T, hs } = shapes(q, k);
  const Tp = nb * bs;
  // keys: mean over block j's tokens (only complete past blocks are ever eligible)
  const kCounts = tf.tensor2d(
    Array.from({ length: nb }, (_, j) => Math.min(bs, T - j * bs)),
    [nb, 1],
  );
  const kp = tf.div(tf.sum(tf.reshape(padT(k, Tp), [B, Hkv, nb, bs, hs]), 3), kCounts); // [B, Hkv, nb, hs]
  // queries: shift right by bs-1 so that window i holds positions i·bs-bs+1 .. i·bs (causal for block i)
  const qShift = tf.slice(
    tf.pad(q, [
      [0, 0],
      [0, 0],
      [bs - 1, bs - 1],
      [0, 0],
    ]),
    [0, 0, 0, 0],
    [B, H, Tp, hs],
  );
  const qCounts = tf.tensor2d(
    Array.from({ length: nb }, (_, i) => Math.min(bs, i * bs + 1)),
    [nb, 1],
  );
  const qp = tf.reshape(tf.div(tf.sum(tf.reshape(qShift, [B, H, nb, bs, hs]), 3), qCounts), [B, Hkv, g * nb, hs]);
  return tf.mul(tf.matMul(qp, kp, false, true), 1 / Math.sqrt(hs)) as tf.Tensor4D; // [B, Hkv, g·nb, nb]
}

/** Choose the attended key blocks (see the header). Reads the small pooled score tensor back to JS. */
export function sparseSelection(q: tf.Tensor4D, k: tf.Tensor4D, sparse: SparseConfig): SparseSelection {
  validateSparse(sparse);
  const { B, Hkv, g, T } = shapes(q, k);
  const bs = sparse.blockSize;
  const nb = Math.ceil(T / bs);
  const L = sparse.localBlocks;
  const S = sparse.selectedBlocks;
  const needScores = S > 0 && nb > L + S; // otherwise every eligible block is taken
  // [B, Hkv, g, nb, nb]
  const score = needScores ? (tf.tidy(() => selectionScores(q, k, bs, nb)).dataSync() as Float32Array) : null;
  const blocks: number[][][][] = [];
  const imp = new Float64Array(nb);
  for (let b = 0; b < B; b++) {
    const perHead: number[][][] = [];
    for (let h = 0; h < Hkv; h++) {
      const perBlock: number[][] = [];
      for (let i = 0; i < nb; i++) {
        const E = Math.max(0, i - L + 1); // eligible earlier blocks 0 .. E-1
        const local = Array.from({ length: i + 1 - E }, (_, t) => E + t);
        if (E <= S) {
          perBlock.push([...Array(E).keys(), ...local]); // every eligible block fits
          continue;
        }
        if (!score) {
          perBlock.push(local); // S = 0: sliding window only
          continue;
        }
        imp.fill(0, 0, E);
        for (let gi = 0; gi < g; gi++) {
          const base = ((((b * Hkv + h) * g + gi) * nb + i) * nb) as number;
          let mx = -Infinity;
          for (let j = 0; j < E; j++) mx = Math.max(mx, score[base + j]);
          let z = 0;
          for (let j = 0; j < E; j++) z += Math.exp(score[base + j] - mx);
          for (let j = 0; j < E; j++) imp[j] += Math.exp(score[base + j] - mx) / z;
        }
        const order = [...Array(E).keys()].sort((a, c) => imp[c] - imp[a] || a - c);
        const chosen = order.slice(0, S).sort((a, c) => a - c);
        perBlock.push([...chosen, ...local]);
      }
      perHead.push(perBlock);
    }
    blocks.push(perHead);
  }
  return { B, Hkv, T, bs, nb, blocks };
}

/**
 * Where the selection is computed (same choice, see docs/attention.md):
 *  'host':   the small score tensor is read back (synchronously) and the blocks chosen in JS (float64).
 *  'device': the blocks are ranked and gathered by tensor ops (float32), nothing is read back.
 *  'auto':   'device' on webgpu (no synchronous read exists there), 'host' elsewhere; the default.
 * The choice is the model config's `sparseSelect` (part of the run's identity), passed in AttendOptions.
 */
export type SparseSelect = (typeof SPARSE_SELECTS)[number];
export { SPARSE_SELECTS };

export function resolveSparseSelect(select?: SparseSelect): 'host' | 'device' {
  const want = select ?? 'auto';
  if (!SPARSE_SELECTS.includes(want))
    throw new Error(`sparse selection "${want}" (model.sparseSelect) is unknown; valid: ${SPARSE_SELECTS.join(', ')}`);
  if (want !== 'auto') return want;
  return tf.getBackend() === 'webgpu' ? 'device' : 'host';
}

/** bool -> float32 0/1 by tf.where: webgpu's bool->float32 cast only relabels the buffer (a later transpose of it fails). */
function asFloat(b: tf.Tensor): tf.Tensor {
  const flat = tf.reshape(b, [b.size]); // webgpu's Select (tf.where) stops at rank 4
  return tf.reshape(tf.where(flat, tf.ones([b.size]), tf.zeros([b.size])), b.shape);
}

/**
 * The selected (non-local) blocks computed on the device: int32 [B, Hkv, nb, S], ascending per
 * query block. Row i holds the S chosen blocks among the eligible 0 .. i-L; it is meaningful
 * for i >= L+S-1 (earlier rows take every eligible block and are built without scores).
 * Same rule as sparseSelection: importance = Σ over the group's heads of the softmax over the
 * eligible blocks (with one head per group, the raw score, which orders the same way); rank_j =
 * #{j' more important, or equally important with j' < j}; chosen = eligible and rank < S.
 */
export function sparseSelectedDevice(q: tf.Tensor4D, k: tf.Tensor4D, sparse: SparseConfig): tf.Tensor4D {
  validateSparse(sparse);
  const { B, Hkv, g, T } = shapes(q, k);
  const bs = sparse.blockSize;
  const nb = Math.ceil(T / bs);
  const L = sparse.localBlocks;
  const S = sparse.selectedBlocks;
  if (S === 0) throw new Error('sparseSelectedDevice: selectedBlocks is 0, nothing to select');
  return tf.tidy(() => {
    // constants over (i, j): eligible j < i-L+1; additive masks; j' < j; j' < j for prefix counts
    const elig = new Float32Array(nb * nb);
    const addS = new Float32Array(nb * nb);
    const addImp = new Float32Array(nb * nb);
    const before = new Uint8Array(nb * nb); // [j, j']: j' < j
    const upper = new Float32Array(nb * nb); // [j', j]: j' < j
    for (let i = 0; i < nb; i++)
      for (let j = 0; j < nb; j++) {
        const e = j < i - L + 1;
        elig[i * nb + j] = e ? 1 : 0;
        addS[i * nb + j] = e ? 0 : -1e30;
        addImp[i * nb + j] = e ? 0 : -1;
        before[i * nb + j] = j < i ? 1 : 0; // here i plays j, j plays j'
        upper[i * nb + j] = i < j ? 1 : 0;
      }
    // every tensor below has rank <= 4: webgpu's binary ops with a 1-D operand fail to compile at rank 5
    const BH = B * Hkv;
    const sc = tf.reshape(selectionScores(q, k, bs, nb), [BH * g, nb, nb]); // [(b, h, head in group), i, j]
    const masked = tf.add(sc, tf.tensor2d(addS, [nb, nb]));
    const key =
      g === 1
        ? masked // softmax is monotone: the score orders like the importance
        : tf.add(tf.sum(tf.reshape(tf.softmax(masked, -1), [BH, g, nb, nb]), 1), tf.tensor2d(addImp, [nb, nb])); // [BH, nb, nb]
    const kj = tf.expandDims(key, 3); // [BH, i, j, 1]
    const kjp = tf.expandDims(key, 2); // [BH, i, 1, j']
    const beats = tf.logicalOr(
      tf.greater(kjp, kj),
      tf.logicalAnd(tf.equal(kjp, kj), tf.tensor2d(before, [nb, nb], 'bool')),
    ); // [BH, i, j, j']
    const rank = tf.sum(asFloat(beats), -1); // [BH, i, j]
    const chosen = tf.mul(asFloat(tf.less(rank, S)), tf.tensor2d(elig, [nb, nb])); // [BH, i, j] 0/1
    const pos = tf.reshape(tf.matMul(tf.reshape(chosen, [BH * nb, nb]), tf.tensor2d(upper, [nb, nb])), [BH, nb, nb]); // chosen before j
    const slot = asFloat(tf.equal(tf.expandDims(pos, 3), tf.reshape(tf.range(0, S, 1, 'float32'), [1, S]))); // [BH, i, j, S]
    const jIdx = tf.reshape(tf.range(0, nb, 1, 'float32'), [nb, 1]);
    const sel = tf.reshape(tf.sum(tf.mul(slot, tf.mul(tf.expandDims(chosen, 3), jIdx)), 2), [B, Hkv, nb, S]); // block in slot s
    return tf.cast(tf.round(sel), 'int32') as tf.Tensor4D;
  });
}

/** What the sparse kernel attends: bool [B, Hkv, T, T], true where query t sees key s. */
export function sparseMask(q: tf.Tensor4D, k: tf.Tensor4D, sparse: SparseConfig): tf.Tensor4D {
  const sel = sparseSelection(q, k, sparse);
  return maskOf(sel);
}

function maskOf({ B, Hkv, T, bs, blocks }: SparseSelection): tf.Tensor4D {
  const m = new Uint8Array(B * Hkv * T * T);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hkv; h++)
      for (let t = 0; t < T; t++) {
        const row = ((b * Hkv + h) * T + t) * T;
        for (const j of blocks[b][h][Math.floor(t / bs)])
          for (let s = j * bs; s < Math.min(T, (j + 1) * bs); s++) if (s <= t) m[row + s] = 1;
      }
  return tf.tensor4d(m, [B, Hkv, T, T], 'bool');
}

/** Additive mask [g·bs, n·bs] for a gathered tile whose last block is the query's own block. */
function ownBlockMask(g: number, bs: number, n: number): tf.Tensor2D {
  const w = n * bs;
  const m = new Float32Array(g * bs * w);
  for (let h = 0; h < g; h++)
    for (let r = 0; r < bs; r++) for (let c = r + 1; c < bs; c++) m[(h * bs + r) * w + (n - 1) * bs + c] = MASKED;
  return tf.tensor2d(m, [g * bs, w]);
}

/** Dropout multiplier for group tile (0 or 1/(1-rate)), a pure function of (seed, group start, shape). */
export function sparseDropoutTile(seed: number, rate: number, i0: number, shape: number[]): tf.Tensor {
  return tf.tidy(() =>
    tf.mul(
      tf.cast(tf.greaterEqual(tf.randomUniform(shape, 0, 1, 'float32', `${seed}:sparse:${i0}`), rate), 'float32'),
      1 / (1 - rate),
    ),
  );
}

/**
 * Block-sparse causal attention: q [B, H, T, hs], k/v [B, Hkv, T, hs] -> [B, H, T, hs].
 * Custom gradient in the FlashAttention-2 manner: the forward saves q, k, v, the output and the
 * per-row logsumexp; the backward regathers each group's K/V blocks, recomputes its tile and
 * scatters dK/dV back (tf.scatterND sums blocks gathered by several query blocks).
 */
export function sparseAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, opts: AttendOptions): tf.Tensor4D {
  const { B, H, Hkv, g, T, hs } = shapes(q, k);
  if (v.shape.join() !== k.shape.join())
    throw new Error(`v ${JSON.stringify(v.shape)} must have the shape of k ${JSON.stringify(k.shape)}`);
  const rate = opts.training ? opts.dropout : 0;
  if (!(rate >= 0 && rate < 1)) throw new Error(`dropout must be in [0, 1), got ${opts.dropout}`);
  const sp = opts.sparse;
  validateSparse(sp);
  const bs = sp.blockSize;
  const nb = Math.ceil(T / bs);
  const L = sp.localBlocks;
  const S = sp.selectedBlocks;
  // device selection only matters when scores are needed; otherwise the host rule reads nothing
  const onDevice = resolveSparseSelect(opts.sparseSelect) === 'device' && S > 0 && nb > L + S;
  const blocks = onDevice ? null : sparseSelection(q, k, sp).blocks;
  const Tp = nb * bs;
  const used = sparseBlocksUsed(T, sp);
  const scale = 1 / Math.sqrt(hs);
  const BH = B * Hkv;

  // groups of consecutive query blocks with the same number n of key blocks, and their gather ids
  // (idx null: built on the device, from the selected blocks, in the forward pass)
  const groups: { i0: number; ng: number; n: number; idx: Int32Array | null }[] = [];
  for (let i0 = 0; i0 < nb; ) {
    const n = used[i0];
    let i1 = i0 + 1;
    while (i1 < nb && used[i1] === n && i1 - i0 < SPARSE_GROUP) i1++;
    const ng = i1 - i0;
    if (onDevice && n === L + S) {
      groups.push({ i0, ng, n, idx: null });
      i0 = i1;
      continue;
    }
    // without selection (n < L+S: every eligible block) the blocks of i are 0 .. i
    const blocksOf = (b: number, h: number, i: number) =>
      blocks ? blocks[b][h][i] : Array.from({ length: i + 1 }, (_, j) => j);
    const idx = new Int32Array(BH * ng * n);
    let p = 0;
    for (let b = 0; b < B; b++)
      for (let h = 0; h < Hkv; h++)
        for (let i = i0; i < i1; i++) for (const j of blocksOf(b, h, i)) idx[p++] = (b * Hkv + h) * nb + j;
    groups.push({ i0, ng, n, idx });
    i0 = i1;
  }
  /** Gather ids of every group, int32 [B·Hkv·ng·n] (row (b, kv head, block) of the flat K/V), from q and k. */
  const groupIds = (qq: tf.Tensor4D, kk: tf.Tensor4D): tf.Tensor1D[] =>
    tf.tidy(() => {
      const sel = groups.some((G) => G.idx === null) ? sparseSelectedDevice(qq, kk, sp) : null; // [B, Hkv, nb, S]
      const base = tf.tensor4d(
        Int32Array.from({ length: BH }, (_, r) => r * nb),
        [B, Hkv, 1, 1],
        'int32',
      ); // (b·Hkv + h)·nb
      return groups.map((G) => {
        if (G.idx) return tf.tensor1d(G.idx, 'int32');
        const local = Int32Array.from({ length: G.ng * L }, (_, a) => G.i0 + Math.floor(a / L) - L + 1 + (a % L)); // i-L+1 .. i
        const chosen = tf.slice(sel!, [0, 0, G.i0, 0], [B, Hkv, G.ng, S]);
        const loc = tf.add(tf.zeros([B, Hkv, G.ng, L], 'int32'), tf.tensor2d(local, [G.ng, L], 'int32'));
        return tf.reshape(tf.add(tf.concat([chosen, loc], 3), base), [BH * G.ng * G.n]) as tf.Tensor1D;
      });
    });
  /** [B, H, T, d] -> query blocks with K/V-group heads stacked: [B·Hkv, nb, g·bs, d] */
  const toBlocks = (x: tf.Tensor4D) =>
    tf.tidy(() => {
      const d = x.shape[3];
      return tf.reshape(tf.transpose(tf.reshape(padT(x, Tp), [B, Hkv, g, nb, bs, d]), [0, 1, 3, 2, 4, 5]), [
        BH,
        nb,
        g * bs,
        d,
      ]);
    });
  /** inverse of toBlocks */
  const fromBlocks = (x: tf.Tensor) =>
    tf.tidy(() => {
      const d = x.shape[3] as number;
      const y = tf.reshape(tf.transpose(tf.reshape(x, [B, Hkv, nb, g, bs, d]), [0, 1, 3, 2, 4, 5]), [B, H, Tp, d]);
      return (Tp === T ? y : tf.slice(y, [0, 0, 0, 0], [B, H, T, d])) as tf.Tensor4D;
    });
  const flatKv = (x: tf.Tensor4D) => tf.tidy(() => tf.reshape(padT(x, Tp), [BH * nb, bs, hs])); // one row per (b, kv head, block)
  /** group tile pieces: queries [B·Hkv, ng, g·bs, hs], gathered K/V [B·Hkv, ng, n·bs, hs], scores [B·Hkv, ng, g·bs, n·bs] */
  const tile = (qBlk: tf.Tensor, kFlat: tf.Tensor, vFlat: tf.Tensor, G: (typeof groups)[number], ids: tf.Tensor1D) => {
    const kSel = tf.reshape(tf.gather(kFlat, ids), [BH, G.ng, G.n * bs, hs]);
    const vSel = tf.reshape(tf.gather(vFlat, ids), [BH, G.ng, G.n * bs, hs]);
    const qg = tf.slice(qBlk, [0, G.i0, 0, 0], [BH, G.ng, g * bs, hs]);
    const s = tf.add(tf.matMul(qg, kSel, false, true), ownBlockMask(g, bs, G.n));
    return { qg, kSel, vSel, s };
  };

  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qq, kk, vv] = args.slice(0, 3) as tf.Tensor4D[];
    const save = args[3] as tf.GradSaveFunc;
    const qBlk = toBlocks(tf.mul(qq, scale) as tf.Tensor4D);
    const kFlat = flatKv(kk);
    const vFlat = flatKv(vv);
    const ids = groupIds(qq, kk);
    const ys: tf.Tensor[] = [];
    const lses: tf.Tensor[] = [];
    for (const [gi, G] of groups.entries()) {
      const [y, lse] = tf.tidy(() => {
        const { vSel, s } = tile(qBlk, kFlat, vFlat, G, ids[gi]);
        const m = tf.max(s, -1, true);
        const e = tf.exp(tf.sub(s, m));
        const l = tf.sum(e, -1, true);
        const p = tf.div(e, l); // [B·Hkv, ng, g·bs, n·bs]
        const pd = rate > 0 ? tf.mul(p, sparseDropoutTile(opts.seed, rate, G.i0, p.shape)) : p;
        return [tf.matMul(pd, vSel), tf.add(m, tf.log(l))]; // [B·Hkv, ng, g·bs, hs], [.., 1]
      });
      ys.push(y);
      lses.push(lse);
    }
    const out = fromBlocks(ys.length === 1 ? ys[0] : tf.concat(ys, 1));
    const lse = ys.length === 1 ? lses[0] : tf.concat(lses, 1); // [B·Hkv, nb, g·bs, 1]
    save([qq, kk, vv, out, lse, ...ids]); // the ids too: the backward regathers the same blocks
    return { value: out, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => backward(dy as tf.Tensor4D, saved) };
  });

  function backward(dO: tf.Tensor4D, saved: tf.Tensor[]): tf.Tensor[] {
    const [qq, kk, vv, out, lse] = saved as tf.Tensor4D[];
    const ids = saved.slice(5) as tf.Tensor1D[];
    return tf.tidy(() => {
      const qBlk = toBlocks(tf.mul(qq, scale) as tf.Tensor4D);
      const kFlat = flatKv(kk);
      const vFlat = flatKv(vv);
      const dOBlk = toBlocks(dO);
      const DBlk = toBlocks(tf.sum(tf.mul(dO, out), -1, true) as tf.Tensor4D); // [B·Hkv, nb, g·bs, 1]
      const dQs: tf.Tensor[] = [];
      let dK: tf.Tensor | null = null; // [B·Hkv·nb, bs, hs]
      let dV: tf.Tensor | null = null;
      for (const [gi, G] of groups.entries()) {
        const [dQg, dKn, dVn] = tf.tidy(() => {
          const { qg, kSel, vSel, s } = tile(qBlk, kFlat, vFlat, G, ids[gi]);
          const rows = (x: tf.Tensor) => tf.slice(x, [0, G.i0, 0, 0], [BH, G.ng, g * bs, x.shape[3] as number]);
          const dOg = rows(dOBlk);
          const p = tf.exp(tf.sub(s, rows(lse))); // exact probabilities
          const z = rate > 0 ? sparseDropoutTile(opts.seed, rate, G.i0, p.shape) : null;
          const dVsel = tf.matMul(z ? tf.mul(p, z) : p, dOg, true, false); // [B·Hkv, ng, n·bs, hs]
          let dP: tf.Tensor = tf.matMul(dOg, vSel, false, true);
          if (z) dP = tf.mul(dP, z);
          const dS = tf.mul(p, tf.sub(dP, rows(DBlk)));
          const dQg = tf.mul(tf.matMul(dS, kSel), scale); // [B·Hkv, ng, g·bs, hs]
          const dKsel = tf.matMul(dS, qg, true, false); // q already scaled
          const M = BH * G.ng * G.n;
          const ids2 = tf.reshape(ids[gi], [M, 1]);
          const scatter = (x: tf.Tensor) => tf.scatterND(ids2, tf.reshape(x, [M, bs, hs]), [BH * nb, bs, hs]);
          const dKn = scatter(dKsel);
          const dVn = scatter(dVsel);
          return [dQg, dK ? tf.add(dK, dKn) : dKn, dV ? tf.add(dV, dVn) : dVn];
        });
        tf.dispose([dK, dV].filter((t): t is tf.Tensor => t !== null));
        [dK, dV] = [dKn, dVn];
        dQs.push(dQg);
      }
      const unflat = (x: tf.Tensor) => {
        const y = tf.reshape(x, [B, Hkv, Tp, hs]);
        return Tp === T ? y : tf.slice(y, [0, 0, 0, 0], [B, Hkv, T, hs]);
      };
      const dq = fromBlocks(dQs.length === 1 ? dQs[0] : tf.concat(dQs, 1));
      return [dq, unflat(dK!), unflat(dV!)];
    });
  }

  return f(q, k, v) as tf.Tensor4D;
}
