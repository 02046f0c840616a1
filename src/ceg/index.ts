/** CEG analysis: the paper's method, ours on any axis, scaling fits, classification, tables. */
export * from './types.js';
export * from './paper.js';
export * from './ceg.js';
export * from './fit.js';
export * from './classify.js';
export * from './published.js';
export * from './tables.js';
export * from './ladder.js';
export { geometricMean } from './random.js';
export * from './study/index.js';
