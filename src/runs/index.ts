/**
 * The run store: config hash -> run folder with spec, status, metrics and checkpoints,
 * crash-safe (atomic JSON writes, append-only metrics with torn-line repair, checkpoints
 * renamed into place). See docs/runs.md.
 */
export type { RunSpec, RunFork } from './id.js';
export { runId, canonicalJson, hashedPart, isRunId, validateRunSpec, HASHED_FIELDS } from './id.js';
export type { MetricRow, RunState, RunStatus, StatusUpdate, CheckpointRef, CheckpointFiles, RunOptions } from './run.js';
export { Run, RUN_STATES, SPEC_FILE, STATUS_FILE, METRICS_FILE, CHECKPOINT_MANIFEST } from './run.js';
export type { RunSummary, RunFilter, RunLabel } from './store.js';
export { RunStore, LABELS_FILE } from './store.js';
export { writeFileAtomic, writeJsonAtomic, readJson } from './fsx.js';
