/**
 * The native addon's CPU guard (src/engine/native.ts): a build is checked against the running CPU
 * BEFORE its binary is loaded, using the target manifest native/build.mjs writes beside it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { nativeTargetProblem, loadAddonAt, cpuFlags, type NativeManifest } from '../src/engine/native.js';
import { projectPath } from '../src/paths.js';
// @ts-expect-error native/targets.mjs is plain JS shared with the build script (no types)
import { x86Level, X86_LEVELS } from '../native/targets.mjs';

const v4: NativeManifest = {
  arch: 'x64',
  march: 'x86-64-v4',
  requires: ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl'],
};

test('a build is refused on a CPU lacking any feature of its target, naming them', () => {
  assert.equal(
    nativeTargetProblem(v4, 'x64', new Set(['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'sse2'])),
    null,
  );
  // the old guard only checked avx512f: a CPU with avx512f but without avx512bw passed it
  const p = nativeTargetProblem(v4, 'x64', new Set(['avx2', 'fma', 'avx512f', 'avx512vl']));
  assert.match(p ?? '', /x86-64-v4/);
  assert.match(p ?? '', /avx512bw/);
  assert.doesNotMatch(p ?? '', /avx512f\b/);
  assert.match(nativeTargetProblem(v4, 'arm64', new Set()) ?? '', /built for x64, this is arm64/);
  assert.match(nativeTargetProblem(undefined, 'x64', new Set(['avx2'])) ?? '', /no target manifest/);
  assert.equal(nativeTargetProblem(v4, 'x64', null), null, 'no /proc/cpuinfo: the build ran here');
});

test('x86Level picks the highest complete psABI level, cumulatively', () => {
  const lv = (flags: string[]) => x86Level(new Set(flags)) as { march: string; requires: string[] };
  const [v2, v3, v4l] = (X86_LEVELS as { requires: string[] }[]).map((l) => l.requires);
  assert.equal(lv([]).march, 'x86-64');
  assert.equal(lv(v2).march, 'x86-64-v2');
  assert.equal(lv([...v2, ...v3]).march, 'x86-64-v3');
  assert.deepEqual(lv([...v2, ...v3, ...v4l]).requires, [...v2, ...v3, ...v4l]);
  // AVX-512 without the v3 features (impossible in practice) must not claim v4
  assert.equal(lv([...v2, ...v4l]).march, 'x86-64-v2');
  assert.equal(lv([...v2, ...v3, 'avx512f']).march, 'x86-64-v3');
});

test('the guard runs before the binary is loaded', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ceg-native-'));
  // a file that would fail to load if it were loaded: the guard must refuse it first
  const bogus = path.join(dir, 'bogus.node');
  writeFileSync(bogus, 'not a shared object');
  const man = path.join(dir, 'bogus.json');
  writeFileSync(man, JSON.stringify({ ...v4, arch: process.arch, requires: ['no_such_cpu_feature'] }));
  const r = loadAddonAt(bogus, man, new Set(['avx2']));
  assert.equal(r.addon, null);
  assert.match(r.reason, /no_such_cpu_feature/);
  // same file with a satisfiable manifest: now it is loaded, and fails as a load error
  writeFileSync(man, JSON.stringify({ ...v4, arch: process.arch, requires: [] }));
  const r2 = loadAddonAt(bogus, man, new Set());
  assert.equal(r2.addon, null);
  assert.match(r2.reason, /failed to load/);
  // no manifest at all (a build from before manifests): refused
  assert.match(loadAddonAt(bogus, path.join(dir, 'none.json'), new Set()).reason, /no target manifest/);
});

test('the built addon (if any) declares a target this CPU satisfies and loads', (t) => {
  const file = projectPath('native', 'build', 'ceg_native.node');
  const man = projectPath('native', 'build', 'ceg_native.json');
  if (!existsSync(file)) return t.skip('native addon not built');
  const m = JSON.parse(readFileSync(man, 'utf8')) as NativeManifest;
  assert.equal(m.arch, process.arch);
  assert.equal(nativeTargetProblem(m, process.arch, cpuFlags()), null);
  const r = loadAddonAt(file, man);
  assert.ok(r.addon, r.reason);
  if (m.march === 'x86-64-v4') assert.equal(r.addon!.isa, 'avx512');
});
