/**
 * The run store: config hash -> run folder with spec, status, metrics and checkpoints,
 * crash-safe (atomic JSON writes, append-only metrics with torn-line repair, checkpoints
 * renamed into place). See docs/runs.md.
 */
export type { RunSpec, RunFork } from './id.js';
export { runId, canonicalJson, hashedPart, isRunId, validateRunSpec, HASHED_FIELDS } from './id.js';
export type {
  MetricRow,
  RunState,
  RunStatus,
  StatusUpdate,
  CheckpointRef,
  CheckpointFiles,
  RunOptions,
} from './run.js';
export { Run, RUN_STATES, SPEC_FILE, STATUS_FILE, METRICS_FILE, CHECKPOINT_MANIFEST } from './run.js';
export type { MetricsSeal, CheckpointManifest } from './run.js';
export { CheckpointCorruptError } from './run.js';
export type { Problem } from './verify.js';
export {
  doneProblems,
  completenessProblems,
  checkpointProblem,
  metricsCover,
  expectedEvalSteps,
  formatProblems,
} from './verify.js';
export type { RunCheck, RepairOptions } from './integrity.js';
export {
  checkRun,
  checkStore,
  repairRun,
  inspectRun,
  isVerifiedDone,
  quarantineCheckpoint,
  QUARANTINE_DIR,
} from './integrity.js';
export type { RunSummary, RunFilter, RunRef } from './store.js';
export { RunStore, LABELS_FILE, CLAIMS_DIR, SUMMARY_COLUMNS, labelsOf } from './store.js';
export type { RunRecord, Divergence } from './record.js';
export { writeFileAtomic, writeJsonAtomic, readJson } from '../fsx.js';
export type { Provenance, ReplayProbe, StaleVerdict } from './provenance.js';
export { VERDICTS_FILE, readVerdicts, cachedVerdict, saveVerdict } from './provenance.js';
export type { ClaimHolder, ClaimOptions, ClaimInspection, ClaimAttempt, AcquireOptions } from './claim.js';
export {
  Claim,
  ClaimLostError,
  ClaimWaitAborted,
  tryClaim,
  acquireClaim,
  inspectClaim,
  describeHolder,
  CLAIM_SUFFIX,
} from './claim.js';
export type {
  ImportFormat,
  ImportedCurve,
  ImportedPoint,
  ImportedRow,
  ImportedRunSpec,
  ImportSource,
  Conversion,
  CurveAxis,
} from './import.js';
export {
  IMPORT_FORMATS,
  ImportError,
  detectFormat,
  parseRuns,
  toMetricRows,
  isImportedSpec,
  readImportFiles,
  type ImportFile,
} from './import.js';
export { importedRunId } from './store.js';
