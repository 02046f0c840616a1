/** The study analysis (issue #13): frontier CEG, shared-E fits, slopes, LR transfer, plateau rule, noise, verdicts. */
export * from './types.js';
export * from './stats.js';
export * from './plateau.js';
export * from './frontier.js';
export * from './parametric.js';
export * from './lr.js';
export * from './noise.js';
export * from './verdict.js';
export * from './combination.js';
export * from './analyze.js';
