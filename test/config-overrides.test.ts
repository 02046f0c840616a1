/**
 * --config overrides: every malformed override is an error (one line, exit 2, nothing written),
 * never silently ignored; valid ones reach the run spec (nested sections merged key by key);
 * the numerics options (model.moeImpl, model.sparseSelect) are config fields in the run id.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { runSpec } from '../src/train/sweep.js';
import { runId } from '../src/runs/index.js';
import { ConfigError, parseConfigOverrides } from '../src/config.js';

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `ceg-cfg-${name}-`));

test('runSpec refuses overrides that would be ignored or are the wrong type', () => {
  const bad: [unknown, RegExp][] = [
    [{ model: 5 }, /config\.model: Expected object, received number/],
    [{ model: null }, /config\.model: Expected object, received null/],
    [{ train: 'fast' }, /config\.train: Expected object, received string/],
    [{ model: [1] }, /config\.model: Expected object, received array/],
    [{ model: { vocabSize: 256 } }, /model\.vocabSize: set by the tokenizer/],
    [{ model: { nLayr: 3 } }, /Unrecognized key.*nLayr/],
    [{ model: { moe: { expert: 8 } } }, /model\.moe: Unrecognized key.*expert/],
    [{ train: { lr: '1e-3' } }, /train\.lr: Expected number, received string/],
    [{ data: { corpus: 'sotu' } }, /Unrecognized key.*data/],
    [{ model: { moeImpl: 'fast' } }, /model\.moeImpl: Invalid enum value.*'gather' \| 'dense' \| 'auto'/],
    [7, /config: expected an object/],
  ];
  for (const [overrides, want] of bad) {
    assert.throws(
      () => runSpec('baseline', 'smoke', 1, 'cpu', { overrides: overrides as never }),
      (e: unknown) =>
        e instanceof ConfigError && want.test((e as Error).message) && !(e as Error).message.includes('\n'),
      `${JSON.stringify(overrides)} should be refused with ${want}`,
    );
  }
});

test('valid overrides reach the spec; nested sections merge key by key; explicit auto keeps the old run id', () => {
  const base = runSpec('moe', 'smoke', 1, 'cpu');
  const s = runSpec('moe', 'smoke', 1, 'cpu', {
    overrides: { model: { moe: { auxLossWeight: 0.5 } }, train: { lr: 1e-3 } },
  });
  assert.equal(s.model.moe.auxLossWeight, 0.5);
  assert.equal(s.model.moe.experts, base.model.moe.experts, 'the other moe fields keep the scale/innovation values');
  assert.equal(s.train.lr, 1e-3);
  assert.notEqual(runId(s), runId(base));
  // numerics options are part of the identity ...
  const dense = runSpec('moe', 'smoke', 1, 'cpu', { overrides: { model: { moeImpl: 'dense' } } });
  assert.equal(dense.model.moeImpl, 'dense');
  assert.notEqual(runId(dense), runId(base));
  const dev = runSpec('sparse', 'smoke', 1, 'cpu', { overrides: { model: { sparseSelect: 'device' } } });
  assert.notEqual(runId(dev), runId(runSpec('sparse', 'smoke', 1, 'cpu')));
  // ... and 'auto' (the default) is the run without the option: ids of runs stored before it existed still match
  const auto = runSpec('moe', 'smoke', 1, 'cpu', { overrides: { model: { moeImpl: 'auto', sparseSelect: 'auto' } } });
  assert.equal(runId(auto), runId(base));
  assert.equal('moeImpl' in auto.model, false);
  assert.deepEqual(parseConfigOverrides({}), {});
});

/** Run the CLI in a fresh run store; exit code, stderr, and what the store holds afterwards. */
function ceg(args: string[]) {
  const runs = tmp('runs');
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--runs', runs], {
    env: { ...process.env, CEG_PROGRESS: 'plain' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, stderr: r.stderr, written: fs.readdirSync(runs) };
}

test('ceg train and ceg sweep (--jobs 1 and 2): a bad override is one line, exit 2, nothing written', () => {
  const dir = tmp('files');
  const files: [string, string, RegExp][] = [
    ['model5.json', JSON.stringify({ model: 5 }), /config\.model: Expected object, received number/],
    ['modelnull.json', JSON.stringify({ model: null }), /config\.model: Expected object, received null/],
    ['vocab.json', JSON.stringify({ model: { vocabSize: 64 } }), /vocabSize: set by the tokenizer/],
    ['typo.json', JSON.stringify({ train: { stepz: 3 } }), /Unrecognized key.*stepz/],
    ['notjson.json', '{ model: ', /not valid JSON/],
    ['missing.json', '', /no such file/],
  ];
  for (const [name, text, want] of files) {
    const file = path.join(dir, name);
    if (name !== 'missing.json') fs.writeFileSync(file, text);
    for (const args of [
      ['train', '--scale', 'smoke', '--config', file],
      ['sweep', '--scale', 'smoke', '--innovations', 'baseline,rope', '--jobs', '1', '--config', file],
      ['sweep', '--scale', 'smoke', '--innovations', 'baseline,rope', '--jobs', '2', '--config', file],
    ]) {
      const r = ceg(args);
      const what = `${args.slice(0, 1).join(' ')} ${args.includes('--jobs') ? args[args.indexOf('--jobs') + 1] : ''} ${name}`;
      assert.equal(r.code, 2, `${what}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, want, what);
      assert.equal(
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => !l.startsWith('[ceg]')).length,
        1,
        `${what}: one line\n${r.stderr}`,
      );
      assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
      assert.deepEqual(r.written, [], `${what}: nothing written`);
    }
  }
});
