/**
 * Prepare (tokenise and cache) bundled corpora and print their sizes and timings.
 *   npx tsx src/data/prepare-cli.ts [corpus ...] [--tokenizer char|gpt2 ...] [--cache-dir DIR] [--force]
 * With no corpus: sotu and moby-dick; with no tokenizer: char and gpt2.
 * --force rebuilds the cache (to time tokenisation).
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BUNDLED_CORPORA, type BundledCorpus } from './corpora.js';
import { DataError } from './errors.js';
import { prepareCorpus, defaultCacheDir } from './tokenfiles.js';
import { TOKENIZER_NAMES, type TokenizerName } from './tokenizers.js';

export function main(argv: string[]): void {
  const corpora: BundledCorpus[] = [];
  const tokenizers: TokenizerName[] = [];
  let cacheDir = defaultCacheDir();
  let force = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--tokenizer') {
      const t = argv[++i];
      if (!(TOKENIZER_NAMES as readonly string[]).includes(t)) throw new DataError(`unknown tokenizer "${t}"; valid: ${TOKENIZER_NAMES.join(', ')}`);
      tokenizers.push(t as TokenizerName);
    } else if (a === '--cache-dir') cacheDir = argv[++i];
    else if (a === '--force') force = true;
    else if ((BUNDLED_CORPORA as readonly string[]).includes(a)) corpora.push(a as BundledCorpus);
    else throw new DataError(`unknown argument "${a}"; corpora: ${BUNDLED_CORPORA.join(', ')}; options: --tokenizer, --cache-dir, --force`);
  }
  for (const corpus of corpora.length ? corpora : BUNDLED_CORPORA) {
    for (const tokenizer of tokenizers.length ? tokenizers : TOKENIZER_NAMES) {
      if (force) fs.rmSync(path.join(cacheDir, `${corpus}-${tokenizer}`, 'meta.json'), { force: true });
      const t0 = performance.now();
      const p = prepareCorpus({ corpus, tokenizer, cacheDir });
      const s = (performance.now() - t0) / 1000;
      const m = p.meta;
      console.log(
        `${corpus}/${tokenizer}: docs ${m.documents.train}/${m.documents.val}, chars ${m.characters.train}/${m.characters.val}, ` +
          `tokens ${m.tokens.train}/${m.tokens.val} (train/val), vocab ${m.vocabSize} -> ${m.paddedVocabSize}, ` +
          `${p.cached ? 'cached' : 'tokenised'} in ${s.toFixed(2)} s -> ${p.dir}`,
      );
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main(process.argv.slice(2));
