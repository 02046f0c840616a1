/**
 * How many times a run would go over its training corpus, and the refusal to start one that
 * would repeat it more than a few epochs. The paper's compact and full budgets (13 and 26
 * billion tokens per run) are meant for OpenWebText (~9 billion training tokens: 1.5 and 2.9
 * epochs); on the bundled SOTU corpus (~2 million GPT-2 tokens) they would be thousands of
 * epochs, and the "results" would measure memorisation.
 */
import path from 'node:path';
import { ConfigError, type DataConfig } from '../config.js';
import { loadCorpus, tokenFileLength, type BundledCorpus } from '../data/index.js';
import type { RunSpec } from '../runs/index.js';

/** The most epochs a run may make over its training tokens without being told it may. */
export const MAX_EPOCHS = 4;

/** Training tokens one run consumes: steps × batch × accumulation × context. */
export function runTrainTokens(spec: Pick<RunSpec, 'model' | 'train'>): number {
  const t = spec.train;
  return t.steps * t.batchSize * t.gradAccum * spec.model.blockSize;
}

export interface CorpusSize {
  /** training tokens (exact), or an upper bound on them */
  tokens: number;
  exact: boolean;
  /** how the number was obtained, for messages */
  how: string;
}

const boundCache = new Map<string, CorpusSize>();

/**
 * Training tokens of a data config, without tokenising anything (so without writing a
 * cache): a token folder's train.bin size / 2 (exact); for a bundled corpus an upper bound
 * from its UTF-8 bytes (GPT-2's byte-level BPE makes at most one token per byte; the
 * character tokenizer one per normalised character, bounded here by twice the bytes).
 */
export function corpusTrainTokens(data: DataConfig): CorpusSize {
  if (data.corpus === 'tokens') {
    const file = path.join(data.dir ?? '', 'train.bin');
    return { tokens: tokenFileLength(file), exact: true, how: file };
  }
  const key = `${data.corpus}/${data.tokenizer}`;
  let size = boundCache.get(key);
  if (!size) {
    const bytes = Buffer.byteLength(loadCorpus(data.corpus as BundledCorpus).train, 'utf8');
    size = {
      tokens: data.tokenizer === 'gpt2' ? bytes : 2 * bytes,
      exact: false,
      how: `the bundled ${data.corpus} corpus (${data.tokenizer} tokens, at most ${data.tokenizer === 'gpt2' ? 'one per byte' : 'two per byte'} of its ${bytes.toLocaleString('en-US')} training bytes)`,
    };
    boundCache.set(key, size);
  }
  return size;
}

export interface EpochCheck {
  runTokens: number;
  corpus: CorpusSize;
  /** runTokens / corpus tokens: exact, or a lower bound when the corpus size is a bound */
  epochs: number;
}

export function epochsOf(spec: Pick<RunSpec, 'model' | 'train' | 'data'>): EpochCheck {
  const runTokens = runTrainTokens(spec);
  const corpus = corpusTrainTokens(spec.data);
  return { runTokens, corpus, epochs: corpus.tokens > 0 ? runTokens / corpus.tokens : Infinity };
}

const fmtTokens = (n: number) =>
  n >= 1e9 ? `${(n / 1e9).toFixed(1)} B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : n.toLocaleString('en-US');

/**
 * Refuse (ConfigError, before anything is written) a run that would repeat its training
 * corpus more than MAX_EPOCHS times, unless `allow`. The message says how to get the
 * paper's data.
 */
export function checkEpochs(spec: RunSpec, allow = false): EpochCheck {
  const c = epochsOf(spec);
  if (allow || c.epochs <= MAX_EPOCHS) return c;
  const t = spec.train;
  throw new ConfigError(
    `scale "${spec.scale}" trains on ${fmtTokens(c.runTokens)} tokens per run ` +
      `(${t.steps} steps x ${t.batchSize} x ${t.gradAccum} x ${spec.model.blockSize}), but ${c.corpus.how} ` +
      `${c.corpus.exact ? 'has' : 'has at most'} ${fmtTokens(c.corpus.tokens)} training tokens: ` +
      `${c.corpus.exact ? '' : 'at least '}${Math.round(c.epochs).toLocaleString('en-US')} epochs (the limit is ${MAX_EPOCHS}).\n` +
      `The paper trained on OpenWebText (~9 B tokens). Prepare it with nanoGPT ` +
      `(git clone https://github.com/karpathy/nanoGPT; pip install datasets tiktoken numpy tqdm; ` +
      `python data/openwebtext/prepare.py: ~54 GB of Hugging Face cache, writes train.bin ~17 GB ` +
      `with ~9.0 B tokens and val.bin) and pass --data <nanoGPT>/data/openwebtext.\n` +
      `To train on this corpus anyway, pass --allow-small-corpus (in code: allowSmallCorpus: true).`,
  );
}
