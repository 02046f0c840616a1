/** Small computations that show what a mechanism does (notebooks' pictures): norms, RoPE, attention masks. */
import * as aq from 'arquero';
import { tf } from '../engine/index.js';
import { layerNorm, rmsNorm } from '../model/norms.js';
import { applyRope } from '../model/rope.js';
import { nsaSelection, sparseMask } from '../model/attention/index.js';
import { modelConfig } from './variants.js';

type Table = ReturnType<typeof aq.from>;

export const demo = {
  /** LayerNorm of one vector with unit gain and zero bias. */
  layerNorm(v: number[]): number[] {
    return tf.tidy(() =>
      Array.from(
        layerNorm(tf.tensor2d([v]), tf.ones([v.length]) as tf.Tensor1D, tf.zeros([v.length]) as tf.Tensor1D).dataSync(),
      ),
    );
  },
  rmsNorm(v: number[]): number[] {
    return tf.tidy(() => Array.from(rmsNorm(tf.tensor2d([v]), tf.ones([v.length]) as tf.Tensor1D).dataSync()));
  },
  /** q·k after RoPE for the same q, k placed at (m, n) pairs with equal and different offsets. */
  ropeRelativeScores(): Table {
    const hs = 8;
    const q = Array.from({ length: hs }, (_, i) => Math.sin(i + 1));
    const k = Array.from({ length: hs }, (_, i) => Math.cos(2 * i + 1));
    const score = (m: number, n: number) =>
      tf.tidy(() => {
        const T = Math.max(m, n) + 1;
        const Q = tf.buffer([1, 1, T, hs]);
        const K = tf.buffer([1, 1, T, hs]);
        for (let i = 0; i < hs; i++) {
          Q.set(q[i], 0, 0, m, i);
          K.set(k[i], 0, 0, n, i);
        }
        const rq = applyRope(Q.toTensor() as tf.Tensor4D, 10000);
        const rk = applyRope(K.toTensor() as tf.Tensor4D, 10000);
        const a = tf.slice(rq, [0, 0, m, 0], [1, 1, 1, hs]);
        const b = tf.slice(rk, [0, 0, n, 0], [1, 1, 1, hs]);
        return tf.sum(tf.mul(a, b)).dataSync()[0];
      });
    const pairs: [number, number][] = [
      [3, 1],
      [7, 5],
      [12, 10],
      [5, 1],
      [9, 5],
    ];
    return aq.from(pairs.map(([m, n]) => ({ query_pos: m, key_pos: n, offset: m - n, score: score(m, n) })));
  },
  /** Masks of causal and block-sparse attention (ours, 'blocksparse') for one head of a random input at a scale. */
  sparsePattern(scale: string): { title: string; mask: number[][] }[] {
    const cfg = modelConfig(scale, 'blocksparse');
    const T = Math.min(cfg.blockSize, 8 * cfg.sparse.blockSize);
    const hs = cfg.nEmbd / cfg.nHead;
    return tf.tidy(() => {
      const q = tf.randomNormal([1, 1, T, hs], 0, 1, 'float32', 7) as tf.Tensor4D;
      const k = tf.randomNormal([1, 1, T, hs], 0, 1, 'float32', 8) as tf.Tensor4D;
      const m = (sparseMask(q, k, cfg.sparse).arraySync() as unknown as number[][][][])[0][0].map((row) =>
        row.map((x) => (x ? 1 : 0)),
      );
      const causal = Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => (j <= i ? 1 : 0)));
      return [
        { title: `causal, T = ${T}`, mask: causal },
        {
          title: `block-sparse: block ${cfg.sparse.blockSize}, ${cfg.sparse.localBlocks} local + ${cfg.sparse.selectedBlocks} selected`,
          mask: m,
        },
      ];
    });
  },
  /**
   * NSA ('sparse') for one K/V head of a random input at a scale: which tokens each query
   * reaches through the compression branch (the complete blocks, as block means) and through
   * the selection branch (the tokens of its top-k blocks, own block included), beside causal.
   */
  nsaPattern(scale: string): { title: string; mask: number[][] }[] {
    const cfg = modelConfig(scale, 'sparse');
    const n = cfg.nsa!;
    const T = Math.min(cfg.blockSize, 8 * n.blockSize);
    const D = cfg.nEmbd / n.heads;
    const BS = n.blockSize;
    return tf.tidy(() => {
      const q = tf.randomNormal([1, n.heads, T, D], 0, 1, 'float32', 7) as tf.Tensor4D;
      const k = tf.randomNormal([1, n.kvHeads, T, D], 0, 1, 'float32', 8) as tf.Tensor4D;
      const sel = (nsaSelection(q, k, n).arraySync() as unknown as (number | boolean)[][][][])[0][0];
      const rows = (f: (i: number, j: number) => boolean) =>
        Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => (f(i, j) ? 1 : 0)));
      return [
        { title: `causal, T = ${T}`, mask: rows((i, j) => j <= i) },
        {
          title: `NSA compressed: complete blocks of ${BS}`,
          mask: rows((i, j) => Math.floor(j / BS) < Math.floor((i + 1) / BS)),
        },
        {
          title: `NSA selected: ${n.blockCounts} of the blocks (own block included)`,
          mask: rows((i, j) => j <= i && Boolean(sel[i][Math.floor(j / BS)])),
        },
      ];
    });
  },
};
