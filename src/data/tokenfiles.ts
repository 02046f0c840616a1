/**
 * Token files in nanoGPT's format and the token cache.
 *
 * A token file (train.bin / val.bin) is a raw little-endian uint16 array, exactly what numpy's
 * `np.array(ids, dtype=np.uint16).tofile(path)` writes (nanoGPT's prepare.py), so files
 * move freely between nanoGPT and this lab.
 *
 * prepareCorpus() tokenises a bundled corpus once and caches it under
 * `<cacheDir>/<corpus>-<tokenizer>/{train.bin, val.bin, meta.json}`; meta.json is written
 * last and a later call reuses the files only when meta matches (format, corpus source
 * version, split rule, tokenizer version) and the file sizes agree with its token counts.
 * loadTokens() turns a DataConfig into train/val token arrays: a bundled corpus through
 * that cache, or (corpus 'tokens') a user folder with nanoGPT-prepared train.bin/val.bin.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultCacheDir } from '../paths.js';
import { writeFileAtomic } from '../fsx.js';
import type { DataConfig } from '../config.js';
import { BUNDLED_CORPORA, type BundledCorpus, corpusSource, corpusSplitRule, loadCorpus } from './corpora.js';
import { DataError } from './errors.js';
import { getTokenizer, type Tokenizer, type TokenizerName } from './tokenizers.js';
import type { TokenSeq } from './batches.js';

const LITTLE_ENDIAN = os.endianness() === 'LE';

function swapBytes16(bytes: Uint8Array): void {
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    const a = bytes[i];
    bytes[i] = bytes[i + 1];
    bytes[i + 1] = a;
  }
}

/** Read a whole nanoGPT token file (raw little-endian uint16). */

export { defaultCacheDir };

export function readTokenFile(file: string): Uint16Array {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataError(`token file not found: ${file}`);
    if (code === 'EISDIR') throw new DataError(`token file ${file} is a directory, expected a raw uint16 file`);
    throw new DataError(`cannot read token file ${file}: ${(e as Error).message}`);
  }
  if (buf.byteLength % 2 !== 0)
    throw new DataError(
      `token file ${file} has ${buf.byteLength} bytes, not a whole number of uint16 tokens (expected an even size: raw little-endian uint16 as numpy's uint16 tofile)`,
    );
  const out = new Uint16Array(buf.byteLength / 2); // own, aligned buffer (Buffer's offset may be odd)
  const bytes = new Uint8Array(out.buffer);
  bytes.set(buf);
  if (!LITTLE_ENDIAN) swapBytes16(bytes);
  return out;
}

/** Number of tokens in a raw uint16 token file, from its size alone (same errors as readTokenFile). */
export function tokenFileLength(file: string): number {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new DataError(`token file not found: ${file}`);
    throw new DataError(`cannot read token file ${file}: ${(e as Error).message}`);
  }
  if (st.isDirectory()) throw new DataError(`token file ${file} is a directory, expected a raw uint16 file`);
  if (st.size % 2 !== 0)
    throw new DataError(
      `token file ${file} has ${st.size} bytes, not a whole number of uint16 tokens (expected an even size: raw little-endian uint16 as numpy's uint16 tofile)`,
    );
  return st.size / 2;
}

/**
 * A token file read window by window with positioned reads, never whole: for token files
 * over 2 GiB (fs.readFileSync's limit; a Uint16Array also stops at 2^32 - 1 elements), such
 * as nanoGPT's OpenWebText train.bin (~17 GB, ~9.0 B tokens). The file stays open for the
 * object's life (close() releases it).
 */
export class FileTokens implements TokenSeq {
  readonly length: number;
  private fd: number | null;
  constructor(readonly file: string) {
    this.length = tokenFileLength(file);
    this.fd = fs.openSync(file, 'r');
  }
  subarray(begin: number, end: number): Uint16Array {
    if (this.fd === null) throw new DataError(`token file ${this.file} is closed`);
    const b = Math.max(0, Math.min(this.length, begin));
    const e = Math.max(b, Math.min(this.length, end));
    const out = new Uint16Array(e - b);
    const bytes = new Uint8Array(out.buffer);
    let done = 0;
    while (done < bytes.length) {
      const n = fs.readSync(this.fd, bytes, done, bytes.length - done, 2 * b + done);
      if (n <= 0)
        throw new DataError(
          `token file ${this.file} ended early (at byte ${2 * b + done}; was it truncated while in use?)`,
        );
      done += n;
    }
    if (!LITTLE_ENDIAN) swapBytes16(bytes);
    return out;
  }
  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

/** Token files up to this size are read whole into memory; larger ones are read window by window (FileTokens). */
export const IN_MEMORY_TOKEN_BYTES = 1 << 30;

/** A token file as a TokenSeq: whole in memory up to `inMemoryBytes` (default 1 GiB), else a FileTokens. */
export function openTokenFile(file: string, inMemoryBytes = IN_MEMORY_TOKEN_BYTES): TokenSeq {
  const n = tokenFileLength(file);
  return 2 * n <= inMemoryBytes ? readTokenFile(file) : new FileTokens(file);
}

/** Write tokens as raw little-endian uint16, atomically (temp file in the same folder + rename). */
export function writeTokenFile(file: string, tokens: Uint16Array | ArrayLike<number>): void {
  let arr: Uint16Array;
  if (tokens instanceof Uint16Array) arr = tokens;
  else {
    arr = new Uint16Array(tokens.length);
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (!Number.isInteger(t) || t < 0 || t > 65535)
        throw new DataError(`token ${t} at position ${i} does not fit a uint16 token file (valid: integers 0..65535)`);
      arr[i] = t;
    }
  }
  let bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
  if (!LITTLE_ENDIAN) {
    bytes = bytes.slice();
    swapBytes16(bytes);
  }
  writeAtomic(file, bytes);
}

function writeAtomic(file: string, data: Uint8Array | string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileAtomic(file, data);
}

// ---------------------------------------------------------------- cache

/** Bumped when the cache layout or meaning changes: older caches are rebuilt. */
export const TOKEN_CACHE_FORMAT = 1;

export interface TokenMeta {
  format: number;
  corpus: BundledCorpus;
  /** npm package and version the text came from */
  source: string;
  splitRule: string;
  documents: { train: number; val: number };
  characters: { train: number; val: number };
  tokenizer: TokenizerName;
  tokenizerVersion: string;
  vocabSize: number;
  paddedVocabSize: number;
  tokens: { train: number; val: number };
  dtype: 'uint16-le';
  /** ISO time the cache was written (information only) */
  created: string;
}

export interface PreparedCorpus {
  /** the cache folder holding train.bin, val.bin, meta.json */
  dir: string;
  trainTokens: Uint16Array;
  valTokens: Uint16Array;
  meta: TokenMeta;
  /** true when the files were reused, false when this call tokenised the corpus */
  cached: boolean;
}

export interface PrepareOptions {
  corpus: BundledCorpus;
  tokenizer: TokenizerName;
  /** default 'data/cache' (relative to the working directory) */
  cacheDir?: string;
  /** called with short progress messages (tokenising SOTU with GPT-2 takes a while) */
  onProgress?: (message: string) => void;
}

function readMeta(dir: string): TokenMeta | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as TokenMeta;
  } catch {
    return undefined;
  }
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return -1;
  }
}

/** Why a cache folder cannot be reused, or undefined when it can. */
function staleReason(
  dir: string,
  meta: TokenMeta | undefined,
  want: Pick<TokenMeta, 'format' | 'corpus' | 'source' | 'splitRule' | 'tokenizer' | 'tokenizerVersion'>,
): string | undefined {
  if (!meta) return 'no meta.json';
  for (const k of Object.keys(want) as (keyof typeof want)[])
    if (meta[k] !== want[k]) return `meta.${k} is ${JSON.stringify(meta[k])}, want ${JSON.stringify(want[k])}`;
  if (fileSize(path.join(dir, 'train.bin')) !== 2 * meta.tokens?.train) return 'train.bin size differs from meta';
  if (fileSize(path.join(dir, 'val.bin')) !== 2 * meta.tokens?.val) return 'val.bin size differs from meta';
  return undefined;
}

/** Tokenise a bundled corpus once; later calls read the cached files. */
export function prepareCorpus(opts: PrepareOptions): PreparedCorpus {
  const { corpus, cacheDir = defaultCacheDir(), onProgress } = opts;
  if (!(BUNDLED_CORPORA as readonly string[]).includes(corpus))
    throw new DataError(`prepareCorpus: unknown corpus "${corpus}"; valid: ${BUNDLED_CORPORA.join(', ')}`);
  const tok = getTokenizer(opts.tokenizer);
  const dir = path.join(cacheDir, `${corpus}-${tok.name}`);
  const want = {
    format: TOKEN_CACHE_FORMAT,
    corpus,
    source: corpusSource(corpus),
    splitRule: corpusSplitRule(corpus),
    tokenizer: tok.name,
    tokenizerVersion: tok.version,
  };
  const old = readMeta(dir);
  const why = staleReason(dir, old, want);
  if (!why && old) {
    onProgress?.(`using cached tokens in ${dir}`);
    return {
      dir,
      trainTokens: readTokenFile(path.join(dir, 'train.bin')),
      valTokens: readTokenFile(path.join(dir, 'val.bin')),
      meta: old,
      cached: true,
    };
  }
  onProgress?.(`tokenising ${corpus} with ${tok.name} into ${dir} (${why})`);
  const text = loadCorpus(corpus);
  const trainTokens = tok.encode(text.train);
  const valTokens = tok.encode(text.val);
  const meta: TokenMeta = {
    ...want,
    documents: text.documents,
    characters: { train: text.train.length, val: text.val.length },
    vocabSize: tok.vocabSize,
    paddedVocabSize: tok.paddedVocabSize,
    tokens: { train: trainTokens.length, val: valTokens.length },
    dtype: 'uint16-le',
    created: new Date().toISOString(),
  };
  fs.mkdirSync(dir, { recursive: true });
  fs.rmSync(path.join(dir, 'meta.json'), { force: true }); // meta is the commit marker: last in
  writeTokenFile(path.join(dir, 'train.bin'), trainTokens);
  writeTokenFile(path.join(dir, 'val.bin'), valTokens);
  writeAtomic(path.join(dir, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
  onProgress?.(`wrote ${meta.tokens.train} train + ${meta.tokens.val} val tokens`);
  return { dir, trainTokens, valTokens, meta, cached: false };
}

// ---------------------------------------------------------------- DataConfig -> tokens

export interface LoadedTokens {
  /** a Uint16Array, or a FileTokens for a user token file over 1 GiB */
  train: TokenSeq;
  val: TokenSeq;
  vocabSize: number;
  paddedVocabSize: number;
  tokenizer: Tokenizer;
  /** where the tokens came from: the cache folder or the user's folder */
  dir: string;
}

function maxId(seq: TokenSeq, chunk = 1 << 25): number {
  let m = 0;
  for (let start = 0; start < seq.length; start += chunk) {
    const a = seq.subarray(start, Math.min(seq.length, start + chunk));
    for (let i = 0; i < a.length; i++) if (a[i] > m) m = a[i];
  }
  return m;
}

/**
 * Tokens for a DataConfig. Bundled corpora go through prepareCorpus (cached). Corpus
 * 'tokens' reads `<dir>/train.bin` and `<dir>/val.bin` (nanoGPT format) and checks that every
 * id is < the tokenizer's real vocabulary (so also < its padded vocabulary).
 */
export function loadTokens(
  data: DataConfig,
  opts: {
    cacheDir?: string;
    onProgress?: (m: string) => void /** default IN_MEMORY_TOKEN_BYTES */;
    inMemoryBytes?: number;
  } = {},
): LoadedTokens {
  const tok = getTokenizer(data.tokenizer);
  if (data.corpus !== 'tokens') {
    const p = prepareCorpus({
      corpus: data.corpus,
      tokenizer: tok.name,
      cacheDir: opts.cacheDir,
      onProgress: opts.onProgress,
    });
    return {
      train: p.trainTokens,
      val: p.valTokens,
      vocabSize: tok.vocabSize,
      paddedVocabSize: tok.paddedVocabSize,
      tokenizer: tok,
      dir: p.dir,
    };
  }
  if (!data.dir)
    throw new DataError(
      "data.dir is required with corpus 'tokens': the folder holding train.bin and val.bin (nanoGPT format)",
    );
  const train = openTokenFile(path.join(data.dir, 'train.bin'), opts.inMemoryBytes);
  const val = openTokenFile(path.join(data.dir, 'val.bin'), opts.inMemoryBytes);
  for (const [name, arr] of [
    ['train.bin', train],
    ['val.bin', val],
  ] as const) {
    if (arr.length < 2) throw new DataError(`${path.join(data.dir, name)} holds ${arr.length} tokens; need at least 2`);
    if (arr instanceof FileTokens)
      opts.onProgress?.(
        `checking the ${arr.length.toLocaleString('en-US')} token ids of ${arr.file} (read in windows: over 1 GiB)`,
      );
    const m = maxId(arr);
    if (m >= tok.vocabSize)
      throw new DataError(
        `${path.join(data.dir, name)} holds token id ${m}, but tokenizer "${tok.name}" has ids 0..${tok.vocabSize - 1} ` +
          `(padded vocab ${tok.paddedVocabSize}); set data.tokenizer to the one that made the files (valid: char, gpt2)`,
      );
  }
  return { train, val, vocabSize: tok.vocabSize, paddedVocabSize: tok.paddedVocabSize, tokenizer: tok, dir: data.dir };
}
