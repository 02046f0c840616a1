import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { stepFlops } from '../src/model/flops.js';
import { paramCount } from '../src/model/params.js';
import { getScale } from '../src/scales.js';

function ceg(args: string[]) {
  const runs = fs.mkdtempSync(path.join(os.tmpdir(), 'ceg-config-runs-'));
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    env: { ...process.env, CEG_RUNS: runs },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, written: fs.readdirSync(runs) };
}

test('ceg config --scale compact --innovation sparse: the NSA layout, bias off, FLOPs unlike the baseline', () => {
  const r = ceg(['config', '--scale', 'compact', '--innovation', 'sparse']);
  assert.equal(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout);
  assert.equal(d.model.attnKernel, 'nsa');
  assert.equal(d.model.bias, false);
  assert.deepEqual(d.model.nsa, { heads: 16, kvHeads: 1, blockSize: 64, blockCounts: 16, windowSize: 0 });
  assert.equal(d.attention.headDim, 384 / 16);
  assert.deepEqual(d.attention.gates.slice(0, 2), ['compressed', 'selected']);
  assert.equal(d.tokensPerStep, 128 * 4 * 512);
  assert.equal(d.parameters.total, paramCount(d.model));
  assert.deepEqual(d.flopsPerStep, JSON.parse(JSON.stringify(stepFlops(d.model, d.tokensPerStep))));
  const base = JSON.parse(ceg(['config', '--scale', 'compact', '--innovation', 'baseline']).stdout);
  assert.equal(base.model.bias, false);
  assert.equal(base.flopsPerStep.total, stepFlops(getScale('compact').model, 262144).total);
  assert.notEqual(d.flopsPerStep.total, base.flopsPerStep.total);
  assert.ok(
    d.differencesFromPaper.some((x: string) => /bf16/.test(x)),
    'precision difference listed',
  );
  assert.ok(
    d.differencesFromPaper.some((x: string) => /OpenWebText/.test(x)),
    'data difference listed',
  );
  assert.deepEqual(r.written, []);
});

test('ceg config: bad input is one message, exit 2', () => {
  const r = ceg(['config', '--scale', 'compact', '--innovation', 'nsaa']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown innovation "nsaa"; valid: .*blocksparse/);
  assert.equal(r.stdout, '');
});
