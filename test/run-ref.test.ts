import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatRunRef, parseRunRef, resolveRunArg } from '../src/cli/run-ref.js';
import { UsageError } from '../src/cli/args.js';
import { RunStore, labelsOf } from '../src/runs/index.js';

test('run references: parse and format are inverses; bad text is a usage error naming the form', () => {
  assert.deepEqual(parseRunRef('rope@micro'), { innovation: 'rope', scale: 'micro' });
  assert.deepEqual(parseRunRef('fa_rope_ln@micro-r2#3'), { innovation: 'fa_rope_ln', scale: 'micro-r2', seed: 3 });
  for (const t of ['rope@micro', 'fa_rope_ln@micro-r2#3', 'baseline@smoke#0'])
    assert.equal(formatRunRef(parseRunRef(t)), t);
  for (const bad of ['rope', '@micro', 'rope@', 'rope@micro#', 'rope@micro#x', 'a@b@c'])
    assert.throws(
      () => parseRunRef(bad),
      (e: unknown) => e instanceof UsageError && /expected a run id or innovation@scale\[#seed\]/.test(e.message),
      bad,
    );
});

test('resolveRunArg: a run id passes through; a reference must name one completed run', () => {
  const store = new RunStore(fs.mkdtempSync(path.join(os.tmpdir(), 'ceg-ref-')));
  assert.equal(resolveRunArg(store, '0123456789abcdef'), '0123456789abcdef');
  assert.throws(() => resolveRunArg(store, 'rope@micro#1'), /no completed run rope@micro#1 in /);
});

test('labelsOf: a run answers to its own label first, then its aliases (typed, never re-parsed)', () => {
  const s = { innovation: 'baseline', scale: 'micro', aliases: [{ innovation: 'baseline', scale: 'micro-r2' }] };
  assert.deepEqual(labelsOf(s), [
    { innovation: 'baseline', scale: 'micro' },
    { innovation: 'baseline', scale: 'micro-r2' },
  ]);
});
