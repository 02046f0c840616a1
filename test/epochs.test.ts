import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { runSpec } from '../src/train/sweep.js';
import { checkEpochs, epochsOf, corpusTrainTokens, runTrainTokens, MAX_EPOCHS } from '../src/train/epochs.js';
import { loadCorpus, normalizeText } from '../src/data/index.js';

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `ceg-epochs-${name}-`));

function tokenDir(trainTokens: number): string {
  const dir = tmp('tok');
  fs.writeFileSync(path.join(dir, 'train.bin'), Buffer.alloc(2 * trainTokens));
  fs.writeFileSync(path.join(dir, 'val.bin'), Buffer.alloc(2 * 100));
  return dir;
}

test('epochs = steps x batch x accumulation x context / training tokens; refused above MAX_EPOCHS unless allowed', () => {
  assert.equal(MAX_EPOCHS, 4);
  const perRun = 12 * 4 * 1 * 32; // smoke: 12 steps x 4 sequences x 1 x 32 tokens
  const at = (tokens: number) =>
    runSpec('baseline', 'smoke', 1, 'wasm', { dataDir: tokenDir(tokens), tokenizer: 'char' });
  assert.equal(runTrainTokens(at(1000)), perRun);
  const exactly4 = at(perRun / 4);
  assert.equal(epochsOf(exactly4).epochs, 4);
  assert.equal(epochsOf(exactly4).corpus.exact, true);
  checkEpochs(exactly4); // 4 epochs is allowed
  const over = at(perRun / 4 - 1); // 383 tokens: 4.01 epochs
  assert.throws(
    () => checkEpochs(over),
    /1,536 tokens per run .* has 383 training tokens: 4 epochs \(the limit is 4\)[\s\S]*prepare\.py[\s\S]*--data[\s\S]*--allow-small-corpus/,
  );
  assert.ok(checkEpochs(over, true).epochs > 4, 'allowed when asked');
});

test('the bundled corpora: an upper bound on tokens, never below the real count; the paper scales are refused', () => {
  // the character tokenizer makes one token per normalised character: the bound must hold it
  const chars = [...normalizeText(loadCorpus('sotu').train)].length;
  const bound = corpusTrainTokens({ corpus: 'sotu', tokenizer: 'char' });
  assert.equal(bound.exact, false);
  assert.ok(bound.tokens >= chars, `${bound.tokens} >= ${chars}`);
  // GPT-2's byte-level BPE: at most one token per UTF-8 byte
  assert.equal(
    corpusTrainTokens({ corpus: 'sotu', tokenizer: 'gpt2' }).tokens,
    Buffer.byteLength(loadCorpus('sotu').train, 'utf8'),
  );
  for (const scale of ['compact', 'full']) {
    const spec = runSpec('baseline', scale, 1, 'wasm');
    assert.throws(() => checkEpochs(spec), /at least [\d,]+ epochs \(the limit is 4\)/, scale);
  }
  // the CPU scales are far below the limit
  for (const scale of ['smoke', 'micro'])
    assert.ok(epochsOf(runSpec('baseline', scale, 1, 'wasm')).epochs < 0.1, scale);
});

test('ceg train/sweep --scale compact|full on the bundled corpus: one message, exit 2, nothing written', () => {
  for (const args of [
    ['train', '--scale', 'compact'],
    ['sweep', '--scale', 'full', '--seeds', '2'],
  ]) {
    const runs = path.join(tmp('runs'), 'store');
    // on webgpu: on wasm the memory limits refuse these scales first (compact's logits alone
    // exceed what one wasm tensor can hold), which is checked in faults-integrity-cli
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', ...args, '--backend', 'webgpu', '--runs', runs],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^ceg: scale "(compact|full)" trains on [\d.]+ B tokens per run/m);
    assert.match(r.stderr, /data\/openwebtext\/prepare\.py/);
    assert.equal(fs.existsSync(runs), false, 'nothing written');
  }
});
