/**
 * Stale runs: is a stored run what the current code would compute?
 *
 * A run records the code fingerprint that trained it (status.provenance, ./provenance.ts). When
 * the current fingerprint is the same, the run is current. When it differs (any edit of a
 * number-affecting source, even a comment; another kernel set; another tfjs or corpus package),
 * the run's first steps are replayed with the current code from its spec and seed
 * (trainer.replayRun) and the losses compared with the stored ones:
 *   - runs with a probe (status.probe, recorded by the trainer): the per-step training losses of
 *     steps 1..PROBE_STEPS and every metric row up to that step (the step-0 validation loss);
 *   - older runs without one: every metric row up to the first evaluation after step 0, if that
 *     is at most LEGACY_MAX_STEPS steps in (micro: step 10's mean training loss and validation
 *     loss), else the step-0 validation loss only.
 * Equal within REPLAY_REL_TOL -> "confirmed" (current by this code), else "stale". The verdict
 * is cached per (run, fingerprint) in the run's verdicts.json, so a second `ceg report` replays
 * nothing. Stale runs are left out of tables and figures and retrained by `ceg train/sweep`
 * (or kept, labelled, with --allow-stale).
 */
import { initEngine, type BackendName } from '../engine/index.js';
import {
  cachedVerdict,
  saveVerdict,
  type MetricRow,
  type Run,
  type RunFilter,
  type RunStore,
  type StaleVerdict,
} from '../runs/index.js';
import { isImportedSpec } from '../runs/import.js';
import { currentProvenance } from './provenance.js';
import { replayRun } from './trainer.js';

/**
 * Largest relative difference between a stored and a replayed loss that still counts as the
 * same computation. Measured (docs/runs.md): kernel changes (native addon off, CEG_KERNELS=stock
 * or round1, and the committed micro runs trained before the native addon and fused GELU) move
 * the compared losses by at most 2.1e-7 relative; a 5% change of the init scale by 4e-4..7e-4,
 * RMSNorm's epsilon 1e-5 -> 1e-4 by 8.8e-4. 3e-5 sits between, ~100x from rounding.
 */
export const REPLAY_REL_TOL = 3e-5;

/** Runs without a probe are replayed to their first evaluation only if it is at most this many steps in. */
export const LEGACY_MAX_STEPS = 10;

/** Where a stored run stands against the current code. */
export type CodeStatus =
  /** trained by this very code (same fingerprint, never resumed under another) */
  | { state: 'current'; fingerprint: string }
  /** other code trained it; the replay reproduced (confirmed) or did not reproduce (stale) its losses */
  | { state: 'confirmed' | 'stale'; fingerprint: string; verdict: StaleVerdict; cached: boolean }
  /** not checked: not done, or its backend cannot start here */
  | { state: 'unchecked'; reason: string };

interface Pair {
  what: string;
  stored: number;
  replayed: number | null | undefined;
}

function relDiff(a: number, b: number | null | undefined): number {
  if (typeof b !== 'number') return Infinity;
  if (Number.isNaN(a) && Number.isNaN(b)) return 0;
  if (a === b) return 0;
  return Math.abs(a - b) / Math.max(Math.abs(a), 1e-12);
}

/** Steps to replay and the stored losses to compare (without the replayed values yet). */
function plan(rows: MetricRow[], probe: number[] | undefined): number {
  if (probe && probe.length > 0) return probe.length;
  const first = rows.find((r) => r.step > 0);
  return first && first.step <= LEGACY_MAX_STEPS ? first.step : 0;
}

/** Check one run against the current code (replaying it if needed); the verdict is cached in the run. */
export async function checkRun(run: Run): Promise<CodeStatus> {
  let status;
  try {
    status = run.status();
  } catch (e) {
    return { state: 'unchecked', reason: (e as Error).message };
  }
  if (status.state !== 'done') return { state: 'unchecked', reason: `state ${status.state}` };
  // an imported run was trained elsewhere: no code of ours to replay it with
  if (isImportedSpec(run.spec)) return { state: 'unchecked', reason: 'imported' };
  const spec = run.spec;
  const backend = spec.backend as BackendName;
  try {
    await initEngine({ backend });
  } catch (e) {
    return {
      state: 'unchecked',
      reason: `backend ${backend} cannot start here (${(e as Error).message.split('\n')[0]})`,
    };
  }
  const cur = currentProvenance(backend);
  const fp = cur.fingerprint;
  const history = status.trainedWith ?? (status.provenance ? [status.provenance.fingerprint] : []);
  if (status.provenance?.fingerprint === fp && history.every((f) => f === fp))
    return { state: 'current', fingerprint: fp };
  const hit = cachedVerdict(run, fp);
  if (hit) return { state: hit.verdict, fingerprint: fp, verdict: hit, cached: true };

  const rows = run.metrics();
  const probe = status.probe?.trainLosses;
  const steps = plan(rows, probe);
  const replay = await replayRun(spec, steps);
  const pairs: Pair[] = [];
  for (const r of rows.filter((x) => x.step <= steps)) {
    const again = replay.metrics.find((x) => x.step === r.step);
    for (const k of ['trainLoss', 'valLoss'] as const) {
      const v = r[k];
      if (typeof v === 'number') pairs.push({ what: `step ${r.step} ${k}`, stored: v, replayed: again?.[k] });
    }
  }
  (probe ?? []).forEach((v, i) =>
    pairs.push({ what: `step ${i + 1} train loss`, stored: v, replayed: replay.probe[i] }),
  );
  let worst: Pair | undefined;
  let maxRel = 0;
  for (const p of pairs) {
    const d = relDiff(p.stored, p.replayed);
    if (d > maxRel || !worst) [maxRel, worst] = [d, p];
  }
  const stale = pairs.length === 0 || maxRel > REPLAY_REL_TOL;
  const fmt = (x: number | null | undefined) => (typeof x === 'number' ? x.toPrecision(7) : String(x));
  const detail =
    pairs.length === 0
      ? 'no stored loss to compare (metrics empty)'
      : `${pairs.length} losses of steps 0..${steps} replayed by code ${fp}: largest relative difference ${maxRel.toExponential(1)}` +
        ` (${worst!.what}: stored ${fmt(worst!.stored)}, now ${fmt(worst!.replayed)}; tolerance ${REPLAY_REL_TOL})`;
  const verdict: StaleVerdict = {
    fingerprint: fp,
    verdict: stale ? 'stale' : 'confirmed',
    checkedAt: new Date().toISOString(),
    steps: [...new Set(pairs.map((p) => Number(p.what.split(' ')[1])))].sort((a, b) => a - b),
    maxRelDiff: Number.isFinite(maxRel) ? maxRel : Number.MAX_VALUE,
    detail,
  };
  try {
    saveVerdict(run, verdict);
  } catch {
    // a read-only store: the verdict is not cached, the check still holds for this call
  }
  return { state: verdict.verdict, fingerprint: fp, verdict, cached: false };
}

/**
 * Check every completed run matching `filter` (see checkRun). Runs that need a replay are
 * announced through onProgress (the replays take a few seconds each; later calls use the cache).
 */
export async function checkRuns(
  store: RunStore,
  filter: RunFilter = {},
  onProgress?: (msg: string) => void,
): Promise<Map<string, CodeStatus>> {
  const out = new Map<string, CodeStatus>();
  const runs = store.find({ ...filter, state: 'done' });
  let announced = false;
  for (const [i, run] of runs.entries()) {
    const t0 = performance.now();
    const cs = await checkRun(run);
    out.set(run.id, cs);
    if ((cs.state === 'confirmed' || cs.state === 'stale') && !cs.cached) {
      if (!announced) {
        onProgress?.(
          `the code changed since some stored runs were trained: replaying their first steps (fingerprint ${cs.fingerprint})`,
        );
        announced = true;
      }
      const s = run.spec;
      onProgress?.(
        `[${i + 1}/${runs.length}] ${s.innovation} ${s.scale} seed ${s.seed} (run ${run.id}): ${cs.state} ` +
          `(${cs.verdict.maxRelDiff.toExponential(1)} rel. diff, ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
      );
    }
  }
  return out;
}

/** Ids of the stale runs among `checked`, each with the reason (for storedRecords' exclusion). */
export function staleIds(checked: ReadonlyMap<string, CodeStatus>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [id, cs] of checked) if (cs.state === 'stale') out.set(id, cs.verdict.detail);
  return out;
}

/** One word (plus the fingerprint) for listings: current, confirmed <fp>, stale <fp>, unchecked. */
export function codeStatusLabel(cs: CodeStatus | undefined): string {
  if (!cs) return 'unchecked';
  if (cs.state === 'unchecked') return `unchecked (${cs.reason})`;
  if (cs.state === 'current') return 'current';
  return `${cs.state} by ${cs.fingerprint}`;
}
