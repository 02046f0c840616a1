/**
 * The environment variables: one table (src/env.ts), one reader, one document. Fails when a
 * file in src/, bench/ or scripts/ reads `process.env.CEG_*` itself, when a variable is set for
 * a child process or read by a shell script without being in the table, or when
 * docs/environment.md and the table disagree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ENV_VARS, readEnv } from '../src/env.js';
import { PROJECT_ROOT } from '../src/paths.js';

function files(dir: string, ext: RegExp): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(PROJECT_ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...files(rel, ext));
    else if (ext.test(e.name)) out.push(rel);
  }
  return out;
}
const sources = [...files('src', /\.ts$/), ...files('bench', /\.ts$/), ...files('scripts', /\.(ts|mjs|js)$/)];
const known = new Set(Object.keys(ENV_VARS));

test('only src/env.ts reads CEG_* variables from process.env', () => {
  const readers: string[] = [];
  for (const f of sources) {
    if (f === path.join('src', 'env.ts')) continue;
    const text = fs.readFileSync(path.join(PROJECT_ROOT, f), 'utf8');
    text.split('\n').forEach((line, i) => {
      if (/process\.env(\.|\[['"`])CEG_/.test(line) || /process\.env\[\s*[a-z]/i.test(line))
        readers.push(`${f}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(readers, [], `read them with readEnv() from src/env.ts:\n${readers.join('\n')}`);
});

test('every variable set for a child process or read by a shell script is in the table', () => {
  const unknown: string[] = [];
  for (const f of sources) {
    const text = fs.readFileSync(path.join(PROJECT_ROOT, f), 'utf8');
    for (const m of text.matchAll(/\b(CEG_[A-Z0-9_]+)\s*:/g)) if (!known.has(m[1])) unknown.push(`${f}: ${m[1]}`);
  }
  for (const f of files('scripts', /\.sh$/)) {
    const text = fs.readFileSync(path.join(PROJECT_ROOT, f), 'utf8');
    for (const m of text.matchAll(/\$\{?(CEG_[A-Z0-9_]+)/g)) if (!known.has(m[1])) unknown.push(`${f}: ${m[1]}`);
  }
  assert.deepEqual(unknown, []);
});

test('docs/environment.md lists exactly the table, and README links it', () => {
  const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'environment.md'), 'utf8');
  const documented = new Set([...doc.matchAll(/^\| `(CEG_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]));
  assert.deepEqual([...documented].sort(), [...known].sort());
  assert.match(fs.readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8'), /docs\/environment\.md/);
});

test('readEnv returns the value as set', () => {
  const old = process.env.CEG_CHROMIUM;
  try {
    process.env.CEG_CHROMIUM = '/x/chromium';
    assert.equal(readEnv('CEG_CHROMIUM'), '/x/chromium');
    delete process.env.CEG_CHROMIUM;
    assert.equal(readEnv('CEG_CHROMIUM'), undefined);
  } finally {
    if (old !== undefined) process.env.CEG_CHROMIUM = old;
  }
});
