/**
 * What a study's completed runs rest on: the code fingerprints, commits, kernel sets and
 * machines recorded in each run's status.json, and how each run stands against the current
 * code (trained by it, or confirmed / found stale by a replay whose verdict is cached in the
 * run's verdicts.json; `ceg study` and `ceg runs --check` replay). Read only: the report never
 * replays, it says what has not been checked.
 */
import { cachedVerdict, type RunStore } from '../runs/index.js';
import { initEngine, type BackendName } from '../engine/index.js';
import { currentProvenance } from '../train/provenance.js';

export interface ProvenanceGroup {
  /** code fingerprint the run finished under (src/train/provenance.ts) */
  fingerprint: string;
  runs: number;
  /** git commits (12 hex) that trained these runs; "unknown" outside a checkout */
  commits: string[];
  kernels: string[];
  /** "cpu, N cores, platform/arch" */
  machines: string[];
  node: string[];
}

export interface StudyProvenance {
  /** completed runs (done or diverged) the study lists, by the fingerprint they finished under */
  groups: ProvenanceGroup[];
  /** runs whose training spanned two or more fingerprints (resumed after the code changed) */
  resumedAcross: number;
  /** runs without recorded provenance */
  unrecorded: number;
  /** against the code running the report, when it is known */
  against: {
    fingerprint: string;
    current: number;
    confirmed: number;
    stale: number;
    /** diverged runs are not replayed (the check compares a finished run's losses) */
    diverged: number;
    unchecked: number;
  } | null;
}

/** The provenance of the completed runs among `ids`, grouped by fingerprint; `current`: the running code's fingerprint. */
export function studyProvenance(store: RunStore, ids: readonly string[], current?: string): StudyProvenance {
  const groups = new Map<string, ProvenanceGroup>();
  const add = (xs: string[], x: string) => {
    if (!xs.includes(x)) xs.push(x);
  };
  let resumedAcross = 0;
  let unrecorded = 0;
  const against = current
    ? { fingerprint: current, current: 0, confirmed: 0, stale: 0, diverged: 0, unchecked: 0 }
    : null;
  for (const id of new Set(ids)) {
    const run = store.get(id);
    if (!run) continue;
    const st = run.status();
    if (st.state !== 'done' && st.state !== 'diverged') continue;
    const p = st.provenance;
    if (!p) {
      unrecorded += 1;
      if (against) against.unchecked += 1;
      continue;
    }
    const g = groups.get(p.fingerprint) ?? {
      fingerprint: p.fingerprint,
      runs: 0,
      commits: [],
      kernels: [],
      machines: [],
      node: [],
    };
    g.runs += 1;
    add(g.commits, p.code.commit ? p.code.commit.slice(0, 12) + (p.code.dirty ? '+dirty' : '') : 'unknown');
    add(g.kernels, p.kernels);
    add(g.machines, `${p.machine.cpu}, ${p.machine.cores} cores, ${p.machine.platform}/${p.machine.arch}`);
    add(g.node, p.machine.node);
    groups.set(p.fingerprint, g);
    const history = st.trainedWith ?? [p.fingerprint];
    if (new Set(history).size > 1) resumedAcross += 1;
    if (against) {
      if (p.fingerprint === current && history.every((f) => f === current)) against.current += 1;
      else if (st.state === 'diverged') against.diverged += 1;
      else {
        const v = cachedVerdict(run, current!);
        if (v?.verdict === 'confirmed') against.confirmed += 1;
        else if (v?.verdict === 'stale') against.stale += 1;
        else against.unchecked += 1;
      }
    }
  }
  return {
    groups: [...groups.values()].sort((a, b) => b.runs - a.runs),
    resumedAcross,
    unrecorded,
    against,
  };
}

/** The provenance as report lines. */
export function formatStudyProvenance(p: StudyProvenance): string[] {
  const total = p.groups.reduce((s, g) => s + g.runs, 0) + p.unrecorded;
  const out = [
    `Provenance of the ${total} completed runs: ${p.groups.length} code fingerprint(s)${p.resumedAcross ? `; ${p.resumedAcross} run(s) trained across a code change (resumed, or forked from a trunk that older code trained)` : ''}${p.unrecorded ? `; ${p.unrecorded} without recorded provenance` : ''}`,
  ];
  for (const g of p.groups)
    out.push(
      `  ${g.fingerprint}: ${g.runs} runs; commits ${g.commits.join(', ')}; kernels ${g.kernels.join(' | ')}; ${g.machines.join(' | ')}; node ${g.node.join(', ')}`,
    );
  const a = p.against;
  if (a)
    out.push(
      `  against the current code (${a.fingerprint}): ${a.current} trained by it, ${a.confirmed} confirmed by a replay, ${a.stale} STALE, ${a.unchecked} not checked${a.diverged ? `, ${a.diverged} diverged under other code (not replayed)` : ''}` +
        (a.unchecked || a.stale ? ' (`ceg study` replays and retrains; `ceg runs --check` replays)' : ''),
    );
  return out;
}

/** The running code's fingerprint on `backend` (starting it), or undefined where the backend cannot start here. */
export async function runningFingerprint(backend: BackendName): Promise<string | undefined> {
  return initEngine({ backend }).then(
    () => currentProvenance(backend).fingerprint,
    () => undefined,
  );
}
