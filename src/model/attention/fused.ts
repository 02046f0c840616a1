/**
 * Fused exact causal attention: the FlashAttention algorithm (Dao et al. 2022) written in
 * TensorFlow.js ops, with a FlashAttention-2 style backward pass (Dao 2023).
 *
 * Forward, per query block i (rows r0 .. r0+nr) and key block j (cols c0 .. c0+nc), j only up
 * to the causal diagonal (blocks wholly above it are skipped):
 *   s   = (q_i / sqrt(hs)) · k_jᵀ  (+ causal mask on blocks crossing the diagonal)
 *   m'  = max(m, rowmax s) ;  p = exp(s - m')
 *   l'  = l·exp(m - m') + rowsum p
 *   acc = acc·exp(m - m') + dropout(p) · v_j
 *   out_i = acc / l ;  lse_i = m + log l          (per-row logsumexp, saved for backward)
 * Backward recomputes each tile from q, k, v, out and lse only:
 *   p = exp(s - lse) ; dV_j += dropout(p)ᵀ·dO_i ; dP = dropout(dO_i·v_jᵀ) ;
 *   dS = p ∘ (dP - D_i) with D = rowsum(dO ∘ out) ; dQ_i += dS·k_j/sqrt(hs) ; dK_j += dSᵀ·q_i/sqrt(hs)
 * The T×T score matrix is never materialised: the largest temporary is one tile
 * [B, Hkv, g·nr, nc]. Grouped K/V (GQA/MQA) are never repeated: the g query heads sharing a
 * K/V head are stacked as g·nr rows of one tile, so dK/dV sum over the group for free.
 */
import { tf } from '../../engine/index.js';
import type { AttendOptions } from './index.js';

/** Default tokens per query/key block. */
export const DEFAULT_FUSED_BLOCK = 64;
/** Additive mask value for masked scores (finite, so no -inf - -inf = NaN). */
const MASKED = -1e30;

interface Geometry {
  B: number;
  H: number;
  Hkv: number;
  /** query heads per K/V head */
  g: number;
  T: number;
  hs: number;
  /** block size and number of blocks (the last block may be shorter) */
  bs: number;
  nb: number;
}

export function attentionGeometry(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, blockSize: number): Geometry {
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4)
    throw new Error(`attention expects rank-4 q, k, v [B, H, T, hs]; got ranks ${q.rank}, ${k.rank}, ${v.rank}`);
  const [B, H, T, hs] = q.shape;
  const [Bk, Hkv, Tk, hsk] = k.shape;
  if (Bk !== B || Tk !== T || hsk !== hs || v.shape.join() !== k.shape.join())
    throw new Error(
      `k ${JSON.stringify(k.shape)} and v ${JSON.stringify(v.shape)} must both be [${B}, Hkv, ${T}, ${hs}] to match q ${JSON.stringify(q.shape)}`,
    );
  if (H % Hkv !== 0) throw new Error(`key/value heads ${Hkv} must divide query heads ${H}`);
  if (!Number.isInteger(blockSize) || blockSize < 1)
    throw new Error(`fused block size must be a positive integer, got ${blockSize}`);
  return { B, H, Hkv, g: H / Hkv, T, hs, bs: blockSize, nb: Math.ceil(T / blockSize) };
}

/** [start, length] of block i. */
function blockSpan(i: number, G: Geometry): [number, number] {
  const s = i * G.bs;
  return [s, Math.min(G.bs, G.T - s)];
}

/** Rows of q-shaped [B, H, T, d] tensor for query block i, heads stacked per K/V group: [B, Hkv, g·nr, d]. */
function queryRows(x: tf.Tensor4D, i: number, G: Geometry): tf.Tensor4D {
  const [r0, nr] = blockSpan(i, G);
  const d = x.shape[3];
  return tf.tidy(() => {
    const x5 = tf.reshape(x, [G.B, G.Hkv, G.g, G.T, d]);
    return tf.reshape(tf.slice(x5, [0, 0, 0, r0, 0], [G.B, G.Hkv, G.g, nr, d]), [G.B, G.Hkv, G.g * nr, d]);
  });
}

/** Inverse of queryRows over all blocks: list of [B, Hkv, g·nr, d] -> [B, H, T, d]. */
function joinRows(parts: tf.Tensor4D[], G: Geometry): tf.Tensor4D {
  const d = parts[0].shape[3];
  return tf.tidy(() => {
    const p5 = parts.map((p, i) => tf.reshape(p, [G.B, G.Hkv, G.g, blockSpan(i, G)[1], d]));
    return tf.reshape(p5.length === 1 ? p5[0] : tf.concat(p5, 3), [G.B, G.H, G.T, d]);
  });
}

/** Key/value block j: [B, Hkv, nc, hs]. */
function keyBlock(x: tf.Tensor4D, j: number, G: Geometry): tf.Tensor4D {
  const [c0, nc] = blockSpan(j, G);
  return tf.slice(x, [0, 0, c0, 0], [G.B, G.Hkv, nc, G.hs]);
}

/** Does query block i see any key of block j (causally)? */
function visible(i: number, j: number, G: Geometry): boolean {
  const [r0, nr] = blockSpan(i, G);
  return j * G.bs <= r0 + nr - 1;
}

/** Additive causal mask for tile (i, j), tiled over the g stacked heads: [g·nr, nc]; null when nothing is masked. */
function tileMask(i: number, j: number, G: Geometry): tf.Tensor2D | null {
  const [r0, nr] = blockSpan(i, G);
  const [c0, nc] = blockSpan(j, G);
  if (c0 + nc - 1 <= r0) return null; // wholly on or below the diagonal
  const m = new Float32Array(G.g * nr * nc);
  for (let h = 0; h < G.g; h++)
    for (let r = 0; r < nr; r++) for (let c = 0; c < nc; c++) if (c0 + c > r0 + r) m[(h * nr + r) * nc + c] = MASKED;
  return tf.tensor2d(m, [G.g * nr, nc]);
}

/**
 * Dropout multiplier of tile (i, j): [B, Hkv, g·nr, nc] holding 0 (dropped) or 1/(1-rate),
 * a pure function of (seed, i, j, shape) so the backward pass regenerates the forward mask.
 * Row h·nr + r of the tile is query head kvHead·g + h at position r0 + r.
 */
export function fusedDropoutTile(seed: number, rate: number, i: number, j: number, shape: number[]): tf.Tensor {
  return tf.tidy(() => {
    const u = tf.randomUniform(shape, 0, 1, 'float32', `${seed}:fused:${i}:${j}`);
    return tf.mul(tf.cast(tf.greaterEqual(u, rate), 'float32'), 1 / (1 - rate));
  });
}

/** Fused exact causal attention: q [B, H, T, hs], k/v [B, Hkv, T, hs] -> [B, H, T, hs]. */
export function fusedAttention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  opts: AttendOptions,
  blockSize: number = opts.fusedBlock ?? DEFAULT_FUSED_BLOCK,
): tf.Tensor4D {
  const G = attentionGeometry(q, k, v, blockSize);
  const rate = opts.training ? opts.dropout : 0;
  if (!(rate >= 0 && rate < 1)) throw new Error(`dropout must be in [0, 1), got ${opts.dropout}`);
  const scale = 1 / Math.sqrt(G.hs);
  const keep = (i: number, j: number, shape: number[]) => fusedDropoutTile(opts.seed, rate, i, j, shape);

  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [qq, kk, vv] = args.slice(0, 3) as tf.Tensor4D[];
    const save = args[3] as tf.GradSaveFunc;
    // runs inside the engine's tidy: every tensor not returned or saved is freed at the end
    const qs = tf.mul(qq, scale) as tf.Tensor4D;
    const kB = [...Array(G.nb).keys()].map((j) => keyBlock(kk, j, G)); // [B, Hkv, nc, hs] each
    const vB = [...Array(G.nb).keys()].map((j) => keyBlock(vv, j, G));
    const outs: tf.Tensor4D[] = [];
    const lses: tf.Tensor4D[] = [];
    for (let i = 0; i < G.nb; i++) {
      const qi = queryRows(qs, i, G); // [B, Hkv, g·nr, hs]
      let m: tf.Tensor | null = null; // running row max  [B, Hkv, g·nr, 1]
      let l: tf.Tensor | null = null; // running row sum  [B, Hkv, g·nr, 1]
      let acc: tf.Tensor | null = null; // running p·v    [B, Hkv, g·nr, hs]
      for (let j = 0; j < G.nb && visible(i, j, G); j++) {
        const next: tf.Tensor[] = tf.tidy(() => {
          const kj = kB[j];
          const vj = vB[j];
          let s: tf.Tensor = tf.matMul(qi, kj, false, true); // [B, Hkv, g·nr, nc]
          const mask = tileMask(i, j, G);
          if (mask) s = tf.add(s, mask);
          const mNew = m ? tf.maximum(m, tf.max(s, -1, true)) : tf.max(s, -1, true);
          const p = tf.exp(tf.sub(s, mNew));
          const rowSum = tf.sum(p, -1, true);
          const pv = tf.matMul(rate > 0 ? tf.mul(p, keep(i, j, p.shape)) : p, vj); // [B, Hkv, g·nr, hs]
          if (!m || !l || !acc) return [mNew, rowSum, pv];
          const alpha = tf.exp(tf.sub(m, mNew));
          return [mNew, tf.add(tf.mul(l, alpha), rowSum), tf.add(tf.mul(acc, alpha), pv)];
        });
        tf.dispose([m, l, acc].filter((t): t is tf.Tensor => t !== null));
        [m, l, acc] = next;
      }
      outs.push(tf.div(acc!, l!) as tf.Tensor4D);
      lses.push(tf.tidy(() => tf.add(m!, tf.log(l!))) as tf.Tensor4D);
      tf.dispose([qi, m!, l!, acc!]);
    }
    tf.dispose([qs, ...kB, ...vB]);
    const out = joinRows(outs, G); // [B, H, T, hs]
    const lse = joinRows(lses, G); // [B, H, T, 1]
    tf.dispose([...outs, ...lses]);
    save([qq, kk, vv, out, lse]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => backward(dy as tf.Tensor4D, saved as tf.Tensor4D[]),
    };
  });

  function backward(dO: tf.Tensor4D, saved: tf.Tensor4D[]): tf.Tensor[] {
    const [qq, kk, vv, out, lse] = saved;
    return tf.tidy(() => {
      const qs = tf.mul(qq, scale) as tf.Tensor4D;
      const D = tf.sum(tf.mul(dO, out), -1, true) as tf.Tensor4D; // [B, H, T, 1]
      const qB = [...Array(G.nb).keys()].map((i) => queryRows(qs, i, G));
      const dOB = qB.map((_, i) => queryRows(dO, i, G));
      const lseB = qB.map((_, i) => queryRows(lse, i, G));
      const DB = qB.map((_, i) => queryRows(D, i, G));
      tf.dispose([qs, D]); // the per-block copies above are all the loop needs
      const dQ: (tf.Tensor4D | null)[] = qB.map(() => null);
      const dK: tf.Tensor4D[] = [];
      const dV: tf.Tensor4D[] = [];
      for (let j = 0; j < G.nb; j++) {
        const kj = keyBlock(kk, j, G);
        const vj = keyBlock(vv, j, G);
        let dKj: tf.Tensor4D | null = null;
        let dVj: tf.Tensor4D | null = null;
        for (let i = j; i < G.nb; i++) {
          if (!visible(i, j, G)) continue;
          const [dQc, dKc, dVc] = tf.tidy(() => {
            let s: tf.Tensor = tf.matMul(qB[i], kj, false, true); // [B, Hkv, g·nr, nc]
            const mask = tileMask(i, j, G);
            if (mask) s = tf.add(s, mask);
            const p = tf.exp(tf.sub(s, lseB[i])); // exact probabilities
            const z = rate > 0 ? keep(i, j, p.shape) : null;
            const dVc = tf.matMul(z ? tf.mul(p, z) : p, dOB[i], true, false); // [B, Hkv, nc, hs]
            let dP: tf.Tensor = tf.matMul(dOB[i], vj, false, true); // [B, Hkv, g·nr, nc]
            if (z) dP = tf.mul(dP, z);
            const dS = tf.mul(p, tf.sub(dP, DB[i]));
            const dQc = tf.mul(tf.matMul(dS, kj), scale); // [B, Hkv, g·nr, hs]
            const dKc = tf.matMul(dS, qB[i], true, false); // q already scaled: [B, Hkv, nc, hs]
            return [
              dQ[i] ? tf.add(dQ[i]!, dQc) : dQc,
              dKj ? tf.add(dKj, dKc) : dKc,
              dVj ? tf.add(dVj, dVc) : dVc,
            ] as tf.Tensor4D[];
          });
          tf.dispose([dQ[i], dKj, dVj].filter((t): t is tf.Tensor4D => t !== null));
          [dQ[i], dKj, dVj] = [dQc, dKc, dVc];
        }
        dK.push(dKj!);
        dV.push(dVj!);
        tf.dispose([kj, vj]);
      }
      const dq = joinRows(dQ as tf.Tensor4D[], G);
      const dk = dK.length === 1 ? dK[0] : tf.concat(dK, 2);
      const dv = dV.length === 1 ? dV[0] : tf.concat(dV, 2);
      return [dq, dk, dv];
    });
  }

  return f(q, k, v) as tf.Tensor4D;
}
