import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ModelConfig } from '../src/config.js';
import { getScale } from '../src/scales.js';
import { stepFlops } from '../src/model/flops.js';

// smoke scale: V 128, T 32, L 2, H 2, C 32 (hs 16), GELU hidden 128; one step = 4 sequences of 32 tokens
const base: ModelConfig = getScale('smoke').model;
const seqs = 4;
const tokens = seqs * 32;

/** Query-key pairs of one head over one sequence, by walking the query positions one by one. */
function pairsByWalking(T: number, keysOf: (t: number) => number): number {
  let n = 0;
  for (let t = 0; t < T; t++) n += keysOf(t);
  return n;
}

test('baseline: hand count', () => {
  const f = stepFlops(base, tokens);
  // per token and layer: c_attn 32x96, c_proj 32x32, c_fc 32x128, mlp c_proj 128x32 -> 2·(3072+1024+4096+4096)
  const perTokenLayer = 2 * (3072 + 1024 + 4096 + 4096); // 24576
  // attention per head and sequence: query t sees t+1 keys; q·k and att·v cost 2·16 each per pair
  const pairs = pairsByWalking(32, (t) => t + 1); // 528
  const attn = 2 /*layers*/ * seqs * 2 /*heads*/ * pairs * (2 * 16 + 2 * 16);
  const head = tokens * 2 * 32 * 128;
  assert.equal(pairs, 528);
  assert.equal(f.forward, 2 * tokens * perTokenLayer + attn + head);
  assert.equal(f.forward, 6_291_456 + 540_672 + 1_048_576);
  assert.equal(f.total, 3 * f.forward);
  assert.equal(
    Object.values(f.breakdown).reduce((a, b) => a + b, 0),
    f.forward,
  );
  assert.equal(f.breakdown.lm_head, 1_048_576);
});

test('fused attention counts the same FLOPs as plain', () => {
  assert.deepEqual(stepFlops({ ...base, attnKernel: 'fused' }, tokens), stepFlops(base, tokens));
});

test('MQA: K and V project to one head (16 outputs each) instead of 32', () => {
  const f = stepFlops({ ...base, nKvHead: 1 }, tokens);
  const saved = 2 /*layers*/ * tokens * 2 * 32 * (32 + 32 - 16 - 16); // c_attn 32x96 -> 32x64
  assert.equal(stepFlops(base, tokens).forward - f.forward, saved);
  assert.equal(f.breakdown.qkv, 2 * tokens * 2 * 32 * 64);
});

test('MoE: router plus top-k active experts', () => {
  const cfg: ModelConfig = { ...base, mlp: 'moe', moe: { experts: 4, topK: 2, auxLossWeight: 0.01 } };
  const f = stepFlops(cfg, tokens);
  const router = 2 * tokens * 2 * 32 * 4;
  const experts = 2 * tokens * 2 /*active*/ * 2 * (32 * 128 + 128 * 32);
  assert.equal(f.breakdown['mlp.router'], router);
  assert.equal(f.breakdown.mlp, experts);
  const gelu = stepFlops(base, tokens);
  assert.equal(f.forward - gelu.forward, router + experts / 2); // one more expert's MLP + router
});

test('SwiGLU: three matrices of width 88 (2/3 of 128 rounded up to 8)', () => {
  const f = stepFlops({ ...base, mlp: 'swiglu' }, tokens);
  assert.equal(f.breakdown.mlp, 2 /*layers*/ * tokens * 3 * 2 * 32 * 88);
});

test('sparse attention: blocks actually used (block 8, 1 local + 1 selected)', () => {
  const cfg: ModelConfig = {
    ...base,
    attnKernel: 'sparse',
    sparse: { blockSize: 8, localBlocks: 1, selectedBlocks: 1 },
  };
  // query t in block b = floor(t/8): its own block causally (t - 8b + 1 keys) plus one full earlier block if b > 0
  const pairs = pairsByWalking(32, (t) => (t % 8) + 1 + (t >= 8 ? 8 : 0));
  assert.equal(pairs, 36 + 3 * 100);
  const f = stepFlops(cfg, tokens);
  assert.equal(f.breakdown['attention.scores'], 2 * seqs * 2 * pairs * 2 * 16);
  assert.equal(f.breakdown['attention.values'], f.breakdown['attention.scores']);
  // with enough blocks to cover the past, sparse equals dense
  const wide = stepFlops({ ...cfg, sparse: { blockSize: 8, localBlocks: 2, selectedBlocks: 2 } }, tokens);
  assert.equal(wide.forward, stepFlops(base, tokens).forward);
});

test('tokens must be a positive multiple of the context length', () => {
  assert.throws(() => stepFlops(base, 33), /tokens 33 must be a positive multiple of blockSize 32/);
});
