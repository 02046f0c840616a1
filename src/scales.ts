/**
 * Named scales: plain data. `smoke` is for tests (seconds), `micro` for a CPU laptop
 * (the whole study set in minutes), `compact` and `full` follow the paper's configs (model
 * shapes, bias off, NSA layout, optimiser, schedule, batch); what still differs from the
 * paper's setup is listed in docs/paper-differences.md (and printed by `ceg config`).
 *
 * Bias: the paper trained with nanoGPT's `bias=False` (its train.py default), so compact and
 * full have `bias: false`. smoke and micro are our own scales and keep `bias: true`: every
 * stored micro run and ladder rung (data/runs/) was trained with it, and switching would
 * orphan all of them for no gain in fidelity (micro is four orders of magnitude below the
 * paper anyway); the parity fixture (test/parity.test.ts) checks both settings.
 * A scale gives the baseline model config, the train config and the data config; an
 * innovation is applied on top of the model config (src/innovations.ts).
 */
import type { DataConfig, ModelConfig, TrainConfig } from './config.js';
import { ConfigError } from './config.js';

export interface Scale {
  name: string;
  description: string;
  model: ModelConfig;
  train: TrainConfig;
  data: DataConfig;
}

/** Model fields every scale shares unless it overrides them: the study's baseline choices. */
const baselineChoices = {
  norm: 'none',
  positions: 'learned',
  ropeBase: 10000,
  attnKernel: 'plain',
  mlp: 'gelu',
  bias: true,
} as const;

function model(m: {
  vocabSize: number;
  blockSize: number;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  dropout: number;
  sparse: ModelConfig['sparse'];
  nsa: NonNullable<ModelConfig['nsa']>;
  moe?: ModelConfig['moe'];
  bias?: boolean;
}): ModelConfig {
  return {
    ...baselineChoices,
    bias: m.bias ?? baselineChoices.bias,
    vocabSize: m.vocabSize,
    blockSize: m.blockSize,
    nLayer: m.nLayer,
    nHead: m.nHead,
    nEmbd: m.nEmbd,
    nKvHead: m.nHead,
    dropout: m.dropout,
    mlpHidden: 4 * m.nEmbd,
    sparse: m.sparse,
    nsa: m.nsa,
    moe: m.moe ?? { experts: 4, topK: 2, auxLossWeight: 0.01 },
  };
}

/**
 * The paper's NSA layer: NativeSparseAttention(num_heads=16, num_kv_heads=1, block_size=64,
 * block_counts=16, window_size=0); train.py never passes the configs' sparse_n_head, so
 * GPTConfig's defaults (16 query heads, 1 K/V head) apply at both scales.
 */
export const PAPER_NSA = { heads: 16, kvHeads: 1, blockSize: 64, blockCounts: 16, windowSize: 0 } as const;

/** Vocabulary of the character tokenizer, padded (see src/data). */
export const CHAR_VOCAB = 128;
/** GPT-2 BPE vocabulary padded to a multiple of 64, as nanoGPT. */
export const GPT2_VOCAB = 50304;

const paperTrain = (lr: number, batchSize: number, gradAccum: number): TrainConfig => ({
  steps: 50000,
  batchSize,
  gradAccum,
  lr,
  minLr: lr / 10,
  warmupSteps: 1000,
  decaySteps: 50000,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  gradClip: 1.0,
  evalInterval: 500,
  evalBatches: 100, // the paper's configs: eval_iters = 100 (nanoGPT's default 200 is overridden)
  checkpointInterval: 2500,
});

export const SCALES: Record<string, Scale> = {
  smoke: {
    name: 'smoke',
    description: 'seconds; for tests and CI only: numbers mean nothing',
    model: model({
      vocabSize: CHAR_VOCAB,
      blockSize: 32,
      nLayer: 2,
      nHead: 2,
      nEmbd: 32,
      dropout: 0,
      sparse: { blockSize: 8, localBlocks: 1, selectedBlocks: 1 },
      // 4 heads of 8 (16 heads would be 2 wide), blocks of 8: 4 blocks, 2 selected, so selection is active
      nsa: { heads: 4, kvHeads: 1, blockSize: 8, blockCounts: 2, windowSize: 0 },
    }),
    train: {
      steps: 12,
      batchSize: 4,
      gradAccum: 1,
      lr: 3e-3,
      minLr: 3e-4,
      warmupSteps: 2,
      decaySteps: 12,
      weightDecay: 0.1,
      beta1: 0.9,
      beta2: 0.95,
      gradClip: 1.0,
      evalInterval: 4,
      evalBatches: 2,
      checkpointInterval: 4,
    },
    data: { corpus: 'sotu', tokenizer: 'char' },
  },
  micro: {
    name: 'micro',
    description: 'CPU minutes: character-level SOTU, the whole study set on 2 cores in about 10 minutes per seed',
    model: model({
      vocabSize: CHAR_VOCAB,
      blockSize: 128,
      nLayer: 4,
      nHead: 4,
      nEmbd: 128,
      dropout: 0,
      sparse: { blockSize: 16, localBlocks: 2, selectedBlocks: 2 },
      // the paper's layout (16 query heads of nEmbd/16 = 8, one K/V head, no window) with blocks
      // scaled to the context: 8 blocks of 16 and 4 selected, so selection is really sparse
      // (the paper's 16 blocks of 64 would select everything at T = 128, as it does at T = 512/1024)
      nsa: { heads: 16, kvHeads: 1, blockSize: 16, blockCounts: 4, windowSize: 0 },
    }),
    // Budget: 250 steps x 8 sequences x 128 tokens = 256k tokens (~5.8 GFLOP per step, ~1.5 TFLOP
    // per run), about 100-150 s per run on one core of the 2-core reference machine, so the
    // 7-variant study set takes about 10-12 minutes per seed with two runs in parallel (--jobs 2).
    train: {
      // LR 6e-4 = the paper's compact LR. At 1e-3 and 3e-3 the study's baseline (no LayerNorm in
      // the blocks) stays on the unigram plateau (val loss ~3.01) for the whole run; at 6e-4 it
      // leaves it after ~110 steps (measured; see README "Scales").
      steps: 250,
      batchSize: 8,
      gradAccum: 1,
      lr: 6e-4,
      minLr: 6e-5,
      warmupSteps: 25,
      decaySteps: 250,
      weightDecay: 0.1,
      beta1: 0.9,
      beta2: 0.95,
      gradClip: 1.0,
      evalInterval: 10,
      evalBatches: 8,
      checkpointInterval: 50,
    },
    data: { corpus: 'sotu', tokenizer: 'char' },
  },
  compact: {
    name: 'compact',
    description:
      "the paper's compact config (GPU; differences: docs/paper-differences.md): 6 layers, 6 heads, width 384, context 512",
    model: model({
      vocabSize: GPT2_VOCAB,
      blockSize: 512,
      nLayer: 6,
      nHead: 6,
      nEmbd: 384,
      dropout: 0.2,
      sparse: { blockSize: 64, localBlocks: 1, selectedBlocks: 16 },
      nsa: { ...PAPER_NSA },
      bias: false,
    }),
    train: paperTrain(6e-4, 128, 4),
    data: { corpus: 'sotu', tokenizer: 'gpt2' },
  },
  full: {
    name: 'full',
    description:
      "the paper's full config (GPU; differences: docs/paper-differences.md): 10 layers, 12 heads, width 768, context 1024",
    model: model({
      vocabSize: GPT2_VOCAB,
      blockSize: 1024,
      nLayer: 10,
      nHead: 12,
      nEmbd: 768,
      dropout: 0.4,
      sparse: { blockSize: 64, localBlocks: 1, selectedBlocks: 16 },
      nsa: { ...PAPER_NSA },
      bias: false,
    }),
    train: paperTrain(3e-4, 64, 8),
    data: { corpus: 'sotu', tokenizer: 'gpt2' },
  },
};

export function scaleNames(): string[] {
  return Object.keys(SCALES);
}

export function getScale(name: string): Scale {
  const s = SCALES[name];
  if (!s) throw new ConfigError(`unknown scale "${name}"; valid: ${scaleNames().join(', ')}`);
  return structuredClone(s);
}

/**
 * A scaling ladder derived from `micro` (added for the CEG scaling fits, src/ceg/fit.ts):
 * four model sizes, each trained for more steps as it grows, so that training compute spans
 * about 1.4 decades (≈0.07x to ≈1.9x the micro run's FLOPs by 6·N·D + attention). Everything
 * else (context, batch, LR, data, eval interval) is micro's; warmup is 10% of the steps and
 * the cosine decays over all of them. Head counts are even so GQA (2 groups) differs from MHA.
 */
export interface LadderRung {
  name: string;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  steps: number;
}

export const MICRO_LADDER: readonly LadderRung[] = [
  { name: 'micro-r0', nLayer: 2, nHead: 4, nEmbd: 64, steps: 125 },
  { name: 'micro-r1', nLayer: 3, nHead: 4, nEmbd: 96, steps: 190 },
  { name: 'micro-r2', nLayer: 4, nHead: 4, nEmbd: 128, steps: 250 },
  { name: 'micro-r3', nLayer: 4, nHead: 4, nEmbd: 160, steps: 300 },
];

/** A tiny ladder over `smoke` (tests and CI: numbers mean nothing). */
export const SMOKE_LADDER: readonly LadderRung[] = [
  { name: 'smoke-r0', nLayer: 1, nHead: 2, nEmbd: 16, steps: 8 },
  { name: 'smoke-r1', nLayer: 2, nHead: 2, nEmbd: 24, steps: 12 },
  { name: 'smoke-r2', nLayer: 2, nHead: 2, nEmbd: 32, steps: 16 },
];

/** Scaling ladders by the scale they resize. */
export const LADDERS: Readonly<Record<string, readonly LadderRung[]>> = { micro: MICRO_LADDER, smoke: SMOKE_LADDER };

/** The ladder of a scale; a clear error naming the scales that have one. */
export function ladderOf(scale: string): readonly LadderRung[] {
  const l = LADDERS[scale];
  if (!l)
    throw new ConfigError(
      `scale "${scale}" has no scaling ladder; ladders exist for: ${Object.keys(LADDERS).join(', ')}`,
    );
  return l;
}

/** Names of every ladder rung (valid as scale names for runs). */
export function ladderRungNames(): string[] {
  return Object.values(LADDERS).flatMap((l) => l.map((r) => r.name));
}

/** A scale resized to a ladder rung: by name (any ladder), or by index into the micro ladder. */
export function ladderScale(rung: number | string): Scale {
  const entries = Object.entries(LADDERS).flatMap(([base, l]) => l.map((r) => ({ base, r })));
  const hit =
    typeof rung === 'number'
      ? MICRO_LADDER[rung]
        ? { base: 'micro', r: MICRO_LADDER[rung] }
        : undefined
      : entries.find((e) => e.r.name === rung);
  if (!hit)
    throw new ConfigError(
      `unknown ladder rung ${JSON.stringify(rung)}; valid: 0..${MICRO_LADDER.length - 1} or ${entries.map((e) => e.r.name).join(', ')}`,
    );
  const { base, r } = hit;
  const s = getScale(base);
  const m = s.model;
  if (r.nLayer === m.nLayer && r.nHead === m.nHead && r.nEmbd === m.nEmbd && r.steps === s.train.steps) {
    // the rung IS the base scale: same configs, so the same runs (the run store shares them)
    s.name = r.name;
    s.description = `${base} ladder rung: the ${base} scale itself`;
    return s;
  }
  s.name = r.name;
  s.description = `${base} ladder rung: ${r.nLayer} layers, ${r.nHead} heads, width ${r.nEmbd}, ${r.steps} steps`;
  s.model = { ...s.model, nLayer: r.nLayer, nHead: r.nHead, nKvHead: r.nHead, nEmbd: r.nEmbd, mlpHidden: 4 * r.nEmbd };
  s.train = {
    ...s.train,
    steps: r.steps,
    warmupSteps: Math.round(r.steps / 10),
    decaySteps: r.steps,
    checkpointInterval: Math.max(1, Math.round(r.steps / 4)),
    evalInterval: Math.min(s.train.evalInterval, Math.max(1, Math.round(r.steps / 4))),
  };
  return s;
}

/** A named scale or a rung of the micro scaling ladder (micro-r0 ...). */
export function resolveScale(name: string): Scale {
  if (ladderRungNames().includes(name)) return ladderScale(name);
  if (!scaleNames().includes(name)) {
    throw new ConfigError(
      `unknown scale "${name}"; valid: ${scaleNames().join(', ')} (and ladder rungs ${ladderRungNames().join(', ')})`,
    );
  }
  return getScale(name);
}
