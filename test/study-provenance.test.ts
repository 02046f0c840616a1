import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RunStore, saveVerdict, type Provenance } from '../src/runs/index.js';
import { runSpec } from '../src/train/sweep.js';
import { formatStudyProvenance, studyProvenance } from '../src/report/study-provenance.js';

const prov = (fingerprint: string, commit: string, kernels: string): Provenance => ({
  fingerprint,
  code: { commit, dirty: false, sourceHash: 'x', files: 1 },
  backend: 'cpu',
  backendFlags: {},
  kernels,
  native: { active: false, status: 'off' },
  deps: {},
  machine: { cpu: 'Test CPU', cores: 2, platform: 'linux', arch: 'x64', node: 'v22.0.0' },
  recordedAt: '2026-11-30T00:00:00Z',
});

test('study provenance: runs grouped by fingerprint, and each against the current code from cached verdicts only', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ceg-prov-'));
  const store = new RunStore(root);
  const ids: string[] = [];
  const make = (
    seed: number,
    state: 'done' | 'diverged' | 'running',
    p: Provenance | undefined,
    history?: string[],
  ) => {
    const run = store.open(runSpec('baseline', 'smoke', seed, 'cpu'));
    run.setStatus({ state, ...(p ? { provenance: p } : {}), ...(history ? { trainedWith: history } : {}) });
    ids.push(run.id);
    return run;
  };
  const cur = prov('aaaa', '1111111111111111', 'cpu/stock');
  const old = prov('bbbb', '2222222222222222', 'cpu/old');
  make(1, 'done', cur, ['aaaa']); // current
  make(2, 'done', cur, ['bbbb', 'aaaa']); // finished under current code, started under older: not "current"
  const confirmed = make(3, 'done', old, ['bbbb']);
  saveVerdict(confirmed, {
    fingerprint: 'aaaa',
    verdict: 'confirmed',
    checkedAt: 'now',
    steps: [1],
    maxRelDiff: 0,
    detail: '',
  });
  const stale = make(4, 'done', old, ['bbbb']);
  saveVerdict(stale, {
    fingerprint: 'aaaa',
    verdict: 'stale',
    checkedAt: 'now',
    steps: [1],
    maxRelDiff: 1,
    detail: '',
  });
  // a verdict under another fingerprint does not count for the current one
  const other = make(5, 'done', old, ['bbbb']);
  saveVerdict(other, {
    fingerprint: 'cccc',
    verdict: 'confirmed',
    checkedAt: 'now',
    steps: [1],
    maxRelDiff: 0,
    detail: '',
  });
  make(6, 'diverged', old, ['bbbb']);
  make(7, 'running', cur, ['aaaa']); // not complete: not counted
  make(8, 'done', undefined); // no provenance recorded

  const p = studyProvenance(store, [...ids, ids[0]], 'aaaa');
  assert.deepEqual(
    p.groups.map((g) => [g.fingerprint, g.runs]),
    [
      ['bbbb', 4],
      ['aaaa', 2],
    ],
  );
  assert.deepEqual(p.groups.find((g) => g.fingerprint === 'bbbb')!.commits, ['222222222222']);
  assert.equal(p.resumedAcross, 1);
  assert.equal(p.unrecorded, 1);
  assert.deepEqual(p.against, {
    fingerprint: 'aaaa',
    current: 1,
    confirmed: 1,
    stale: 1,
    diverged: 1,
    unchecked: 3, // run 2 (no verdict), run 5 (verdict for another code), run 8 (no provenance)
  });
  const text = formatStudyProvenance(p).join('\n');
  assert.match(text, /Provenance of the 7 completed runs: 2 code fingerprint/);
  assert.match(text, /1 STALE, 3 not checked, 1 diverged/);
  assert.match(text, /ceg runs --check/);
  // without the current fingerprint there is nothing to compare with
  assert.equal(studyProvenance(store, ids).against, null);
  fs.rmSync(root, { recursive: true, force: true });
});
