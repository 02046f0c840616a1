/**
 * Tokenizers: text <-> token ids. Two kinds, both with a vocabulary that does not depend on
 * the corpus, so runs on different corpora are comparable:
 *
 *  - char  A FIXED 97-symbol character vocabulary, padded to 128 (src/scales.ts CHAR_VOCAB):
 *            id 0        '\n'
 *            id 1..95    printable ASCII 32..126 (' ' .. '~'), id = code - 31
 *            id 96       UNKNOWN (decoded as U+FFFD '\uFFFD') for everything else
 *          Before encoding, text goes through normalizeText(): typographic quotes -> ' and ",
 *          em/horizontal dash -> "--", en dash / hyphens / minus -> "-", ellipsis -> "...",
 *          non-breaking and other spaces and tabs -> ' ', CR/CRLF -> '\n', ligatures
 *          (Œ æ ﬁ ...) spelled out, then NFKD with combining marks removed (é -> e).
 *          What is still outside the vocabulary becomes UNKNOWN (one per code point).
 *  - gpt2  GPT-2 byte-level BPE (js-tiktoken's bundled `gpt2` ranks, no network):
 *          50257 tokens (50256 = <|endoftext|>), padded to 50304 as nanoGPT. Text is encoded
 *          as ordinary text: "<|endoftext|>" inside text is NOT turned into the special token.
 */
import { Tiktoken } from 'js-tiktoken/lite';
import gpt2Ranks from 'js-tiktoken/ranks/gpt2';
import { padVocab } from '../config.js';
import { DataError } from './errors.js';
import { packageVersion } from './package-version.js';

export const TOKENIZER_NAMES = ['char', 'gpt2'] as const;
export type TokenizerName = (typeof TOKENIZER_NAMES)[number];

export interface Tokenizer {
  name: TokenizerName;
  /** real vocabulary: every id the tokenizer can produce is < vocabSize */
  vocabSize: number;
  /** vocabSize rounded up to a multiple of 64 (the model's embedding rows) */
  paddedVocabSize: number;
  /** identifies the exact vocabulary and its implementation (stored in token-cache meta) */
  version: string;
  encode(s: string): Uint16Array;
  decode(ids: ArrayLike<number>): string;
}

// ---------------------------------------------------------------- char

export const CHAR_NEWLINE_ID = 0;
export const CHAR_UNKNOWN_ID = 96;
export const CHAR_VOCAB_SIZE = 97;
/** what UNKNOWN decodes to */
export const UNKNOWN_CHAR = '\uFFFD';

/** Single code points mapped to ASCII before NFKD (which would not, or not well, map them). */
const CHAR_MAP: Record<string, string> = {
  '\u2018': "'",
  '\u2019': "'",
  '\u201A': "'",
  '\u201B': "'",
  '\u2032': "'",
  '\u00B4': "'",
  '\u0060': '`',
  '\u201C': '"',
  '\u201D': '"',
  '\u201E': '"',
  '\u201F': '"',
  '\u2033': '"',
  '\u00AB': '"',
  '\u00BB': '"',
  '\u2014': '--',
  '\u2015': '--',
  '\u2010': '-',
  '\u2011': '-',
  '\u2012': '-',
  '\u2013': '-',
  '\u2212': '-',
  '\u00AD': '',
  '\u2026': '...',
  '\u00A0': ' ',
  '\u2007': ' ',
  '\u2009': ' ',
  '\u200A': ' ',
  '\u202F': ' ',
  '\u3000': ' ',
  '\t': ' ',
  '\u200B': '',
  '\uFEFF': '',
  '\u0152': 'OE',
  '\u0153': 'oe',
  '\u00C6': 'AE',
  '\u00E6': 'ae',
  '\u00DF': 'ss',
  '\u00D8': 'O',
  '\u00F8': 'o',
  '\u2022': '*',
};
const CHAR_MAP_RE = new RegExp(`[${Object.keys(CHAR_MAP).join('')}]`, 'g');

/**
 * The char tokenizer's normalisation (see the file header). Pure and deterministic:
 * normalizeText(normalizeText(s)) === normalizeText(s).
 */
export function normalizeText(s: string): string {
  return s
    .replace(/\r\n?/g, '\n')
    .replace(CHAR_MAP_RE, (c) => CHAR_MAP[c])
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '');
}

function charEncode(s: string): Uint16Array {
  const t = normalizeText(s);
  const out = new Uint16Array(t.length);
  let n = 0;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c >= 32 && c <= 126) out[n++] = c - 31;
    else if (c === 10) out[n++] = CHAR_NEWLINE_ID;
    else {
      out[n++] = CHAR_UNKNOWN_ID;
      // a surrogate pair is one code point: one UNKNOWN
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < t.length) {
        const d = t.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) i++;
      }
    }
  }
  return out.slice(0, n);
}

function charDecode(ids: ArrayLike<number>): string {
  const parts: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id === CHAR_NEWLINE_ID) parts.push('\n');
    else if (id >= 1 && id <= 95) parts.push(String.fromCharCode(id + 31));
    else if (id === CHAR_UNKNOWN_ID) parts.push(UNKNOWN_CHAR);
    else
      throw new DataError(
        `char tokenizer: id ${id} at position ${i} is outside the vocabulary 0..${CHAR_VOCAB_SIZE - 1}`,
      );
  }
  return parts.join('');
}

export const charTokenizer: Tokenizer = {
  name: 'char',
  vocabSize: CHAR_VOCAB_SIZE,
  paddedVocabSize: padVocab(CHAR_VOCAB_SIZE),
  version: 'char-v1 (newline, ASCII 32..126, unknown; normalizeText v1)',
  encode: charEncode,
  decode: charDecode,
};

// ---------------------------------------------------------------- gpt2

export const GPT2_VOCAB_SIZE = 50257;

let gpt2: Tokenizer | undefined;

function makeGpt2(): Tokenizer {
  const enc = new Tiktoken(gpt2Ranks);
  const version = packageVersion('js-tiktoken');
  return {
    name: 'gpt2',
    vocabSize: GPT2_VOCAB_SIZE,
    paddedVocabSize: padVocab(GPT2_VOCAB_SIZE),
    version: `gpt2 BPE via js-tiktoken@${version}`,
    encode(s: string): Uint16Array {
      // [] / []: no special tokens allowed, none rejected -> "<|endoftext|>" is plain text
      return Uint16Array.from(enc.encode(s, [], []));
    },
    decode(ids: ArrayLike<number>): string {
      for (let i = 0; i < ids.length; i++)
        if (!(ids[i] >= 0 && ids[i] < GPT2_VOCAB_SIZE && Number.isInteger(ids[i])))
          throw new DataError(
            `gpt2 tokenizer: id ${ids[i]} at position ${i} is outside the vocabulary 0..${GPT2_VOCAB_SIZE - 1}`,
          );
      return enc.decode(Array.from(ids));
    },
  };
}

/** The tokenizer called `name` (the GPT-2 one is built once, on first use: ~0.1-0.3 s). */
export function getTokenizer(name: string): Tokenizer {
  if (name === 'char') return charTokenizer;
  if (name === 'gpt2') return (gpt2 ??= makeGpt2());
  throw new DataError(`unknown tokenizer "${name}"; valid: ${TOKENIZER_NAMES.join(', ')}`);
}
