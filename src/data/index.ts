/** The data layer: corpora, tokenizers, token files and seeded batches. See docs/data.md. */
export * from './errors.js';
export * from './corpora.js';
export * from './tokenizers.js';
export * from './tokenfiles.js';
export * from './batches.js';
