/**
 * What a run would be, before it runs: the resolved model/train/data config of a spec with
 * its parameter count, tokens and FLOPs per optimizer step, the attention layout, and what
 * differs from the paper's setup. `ceg config` prints it as JSON.
 */
import type { DataConfig, ModelConfig, TrainConfig } from '../config.js';
import { paperDifferences } from '../differences.js';
import { getInnovation } from '../innovations.js';
import { stepFlops, type StepFlops } from '../model/flops.js';
import { headSize, paramCount } from '../model/params.js';
import type { RunSpec } from '../runs/index.js';

export interface AttentionLayout {
  kind: string;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** NSA only */
  blockSize?: number;
  blockCounts?: number;
  windowSize?: number;
  gates?: string[];
  branches?: string[];
}

export interface ConfigDescription {
  scale: string;
  innovation: string;
  label: string;
  model: ModelConfig;
  train: TrainConfig;
  data: DataConfig;
  attention: AttentionLayout;
  parameters: { total: number; nonEmbedding: number };
  tokensPerStep: number;
  flopsPerStep: StepFlops;
  differencesFromPaper: string[];
}

function attentionLayout(m: ModelConfig): AttentionLayout {
  if (m.attnKernel === 'nsa' && m.nsa) {
    const n = m.nsa;
    return {
      kind: 'NSA (native sparse attention, fla-org/native-sparse-attention semantics)',
      heads: n.heads,
      kvHeads: n.kvHeads,
      headDim: m.nEmbd / n.heads,
      blockSize: n.blockSize,
      blockCounts: n.blockCounts,
      windowSize: n.windowSize,
      gates: ['compressed', 'selected', n.windowSize > 0 ? 'sliding' : 'sliding (off: windowSize 0)'],
      branches: ['compressed', 'selected', ...(n.windowSize > 0 ? ['sliding'] : [])],
    };
  }
  const kind = {
    plain: 'masked softmax',
    fused: 'fused (online softmax, same math)',
    sparse: 'block-sparse (ours)',
    nsa: 'NSA',
  }[m.attnKernel];
  return { kind, heads: m.nHead, kvHeads: m.nKvHead, headDim: headSize(m) };
}

export function describeConfig(spec: RunSpec): ConfigDescription {
  const tokensPerStep = spec.train.batchSize * spec.train.gradAccum * spec.model.blockSize;
  return {
    scale: spec.scale,
    innovation: spec.innovation,
    label: getInnovation(spec.innovation).label,
    model: spec.model,
    train: spec.train,
    data: spec.data,
    attention: attentionLayout(spec.model),
    parameters: { total: paramCount(spec.model), nonEmbedding: paramCount(spec.model, { nonEmbedding: true }) },
    tokensPerStep,
    flopsPerStep: stepFlops(spec.model, tokensPerStep),
    differencesFromPaper: paperDifferences(spec.scale),
  };
}
