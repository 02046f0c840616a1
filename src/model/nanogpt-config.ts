/**
 * A nanoGPT run's model and compute from its config printout (`ceg import` of a train.py log):
 * nanoGPT's keys (n_layer, n_head, n_embd, block_size, bias, vocab_size, batch_size,
 * gradient_accumulation_steps, and the paper's fork's use_* toggles) -> our ModelConfig, tokens
 * per step and training FLOPs per step counted by ./flops.ts, so the user need not give them.
 *
 * A key the printout does not set keeps train.py's default, exactly as nanoGPT would, unless
 * the printed config file starts with `from <module> import *` (the paper's fork: its per-run
 * files import a base config, whose values the log never prints). Then the base must be one of
 * the paper's two (PAPER_BASE_CONFIGS, copied from its repository), else the model is unknown.
 * The result is checked against the parameter count the log prints (`number of parameters:
 * 10.65M`, nanoGPT's get_num_params(non_embedding=True)): a config that does not reproduce it
 * is refused, never guessed.
 */
import { parseModelConfig, type ModelConfig } from '../config.js';
import { stepFlops } from './flops.js';
import { paramCount } from './params.js';

/** What a nanoGPT log says about its config. */
export interface NanoGptPrintout {
  /** `key = value` of the printed config file and `Overriding: key = value` lines, later lines win */
  config: Record<string, string>;
  /** modules the printed config file imports with `from M import *` */
  configImports?: string[];
  /** `found vocab_size = N` / `defaulting to vocab_size of GPT-2 to 50304` */
  vocabSize?: number;
  /** `tokens per iteration will be: N` (DDP world size included) */
  tokensPerStep?: number;
  /** `number of parameters: X.XXM`, in parameters */
  reportedParams?: number;
}

/** nanoGPT train.py's defaults (the paper's fork adds the use_* toggles with these defaults). */
export const NANOGPT_DEFAULTS: Record<string, string> = {
  n_layer: '12',
  n_head: '12',
  n_embd: '768',
  block_size: '1024',
  bias: 'False',
  dropout: '0.0',
  batch_size: '12',
  gradient_accumulation_steps: '40',
  use_layer_norm: 'True',
  use_rope: 'False',
  use_flash_attn: 'True',
  use_sparse_attn: 'False',
  use_mqa: 'False',
  sparse_n_head: '16',
  sparse_kv_n_head: '16',
};

/**
 * The paper's base configs (jcksanderson/llm-algorithmic-progress, config/compact/train_gpt2_compact.py
 * and config/full/train_gpt2.py), which its per-run configs import with `from ... import *`.
 */
export const PAPER_BASE_CONFIGS: Record<string, Record<string, string>> = {
  'config.compact.train_gpt2_compact': {
    n_layer: '6',
    n_head: '6',
    n_embd: '384',
    block_size: '512',
    dropout: '0.2',
    batch_size: '128',
    gradient_accumulation_steps: '4',
    use_layer_norm: 'False',
    use_rope: 'False',
    use_flash_attn: 'False',
    use_sparse_attn: 'False',
    use_mqa: 'False',
  },
  'config.full.train_gpt2': {
    n_layer: '10',
    n_head: '12',
    n_embd: '768',
    block_size: '1024',
    dropout: '0.4',
    batch_size: '64',
    gradient_accumulation_steps: '8',
    use_layer_norm: 'False',
    use_rope: 'False',
    use_flash_attn: 'False',
    use_sparse_attn: 'False',
    use_mqa: 'False',
  },
};

export interface NanoGptCompute {
  model: ModelConfig;
  tokensPerStep: number;
  flopsPerStep: number;
  /** our count of nanoGPT's get_num_params(non_embedding=True) for `model` */
  params: number;
}

/** Why a printout gives no model (a sentence), or the model and its compute. */
export type NanoGptModelResult = { ok: true; value: NanoGptCompute } | { ok: false; reason: string };

function pyValue(v: string): string {
  return v.trim().replace(/^(['"])(.*)\1$/, '$2');
}

/** nanoGPT hyperparameters -> our model config, tokens and FLOPs per step (see the module comment). */
export function nanoGptModel(p: NanoGptPrintout): NanoGptModelResult {
  const imports = p.configImports ?? [];
  const unknownBase = imports.filter((m) => !(m in PAPER_BASE_CONFIGS));
  if (unknownBase.length)
    return { ok: false, reason: `its config imports ${unknownBase.join(', ')}, whose values the log does not print` };
  const keys: Record<string, string> = { ...NANOGPT_DEFAULTS };
  for (const m of imports) Object.assign(keys, PAPER_BASE_CONFIGS[m]);
  Object.assign(keys, p.config);
  const int = (k: string): number | undefined => {
    const v = Number(pyValue(keys[k] ?? ''));
    return Number.isInteger(v) && v > 0 ? v : undefined;
  };
  const bool = (k: string) => pyValue(keys[k] ?? '') === 'True';
  const nLayer = int('n_layer');
  const nHead = int('n_head');
  const nEmbd = int('n_embd');
  const blockSize = int('block_size');
  const bad = (['n_layer', 'n_head', 'n_embd', 'block_size'] as const).filter((k) => int(k) === undefined);
  if (bad.length)
    return { ok: false, reason: `${bad.map((k) => `${k} = ${keys[k]}`).join(', ')} is not a positive integer` };
  const vocabSize = p.vocabSize ?? int('vocab_size');
  if (!vocabSize)
    return {
      ok: false,
      reason: 'the log does not say the vocabulary size (no "found vocab_size" or "defaulting to vocab_size" line)',
    };
  const tokensPerStep =
    p.tokensPerStep ?? (int('batch_size') ?? 0) * (int('gradient_accumulation_steps') ?? 0) * blockSize!;
  if (!(tokensPerStep > 0) || tokensPerStep % blockSize! !== 0)
    return {
      ok: false,
      reason: `tokens per step ${tokensPerStep} is not a positive multiple of block_size ${blockSize}`,
    };
  const sparse = bool('use_sparse_attn');
  let model: ModelConfig;
  try {
    model = parseModelConfig({
      vocabSize,
      blockSize,
      nLayer,
      nHead,
      nEmbd,
      nKvHead: bool('use_mqa') ? (int('mqa_kv_n_head') ?? 1) : nHead!,
      dropout: Number(pyValue(keys.dropout)) || 0,
      bias: bool('bias'),
      norm: bool('use_layer_norm') ? 'layernorm' : 'none',
      positions: bool('use_rope') ? 'rope' : 'learned',
      ropeBase: 10000,
      attnKernel: sparse ? 'nsa' : bool('use_flash_attn') ? 'fused' : 'plain',
      sparse: { blockSize: 64, localBlocks: 1, selectedBlocks: 16 },
      // the fork's NSA: its sparse_n_head / sparse_kv_n_head, blocks of 64, 16 selected, no window
      nsa: {
        heads: int('sparse_n_head') ?? 16,
        kvHeads: int('sparse_kv_n_head') ?? 16,
        blockSize: 64,
        blockCounts: 16,
        windowSize: 0,
      },
      mlp: 'gelu',
      mlpHidden: 4 * nEmbd!,
      moe: { experts: 4, topK: 2, auxLossWeight: 0.01 },
    });
  } catch (e) {
    return { ok: false, reason: `its config is not a model we can count (${(e as Error).message})` };
  }
  const params = paramCount(model, { nonEmbedding: true });
  if (p.reportedParams !== undefined && Math.abs(params - p.reportedParams) > 0.01 * p.reportedParams)
    return {
      ok: false,
      reason:
        `the config read from it (${nLayer} layers, ${nHead} heads, width ${nEmbd}, context ${blockSize}, vocabulary ${vocabSize}) has ` +
        `${(params / 1e6).toFixed(2)}M parameters but the log reports ${(p.reportedParams / 1e6).toFixed(2)}M`,
    };
  return { ok: true, value: { model, tokensPerStep, flopsPerStep: stepFlops(model, tokensPerStep).total, params } };
}
