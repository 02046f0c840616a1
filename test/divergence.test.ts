/**
 * Divergence (issue 10.3): a non-finite or exploding loss stops the run with state diverged,
 * a message with step, loss and learning rate, exit code 3, the last finite checkpoint kept;
 * CEG tables leave diverged runs out (listed apart), never as reached or not reached.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { RunStore } from '../src/runs/index.js';
import { runSpec } from '../src/train/sweep.js';
import { trainRun, DIVERGENCE_FACTOR } from '../src/train/trainer.js';
import { cegTable, cegFrame, formatDivergedRuns, formatCegTable } from '../src/ceg/index.js';

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `ceg-div-${name}-`));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

/** Every float32 of every checkpoint's tensors.bin is finite. */
function checkpointsFinite(runDir: string): number {
  let n = 0;
  for (const c of fs.readdirSync(runDir).filter((f) => /^ckpt-\d+$/.test(f))) {
    const b = fs.readFileSync(path.join(runDir, c, 'tensors.bin'));
    const f = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    assert.ok(f.every(Number.isFinite), `${c} holds non-finite values`);
    n += 1;
  }
  return n;
}

test('ceg train with lr 1e6 (via --config) exits 3 with state diverged and says step, loss and learning rate', () => {
  const dir = tmp('cli');
  const cfg = path.join(dir, 'lr.json');
  fs.writeFileSync(cfg, JSON.stringify({ train: { lr: 1e6, minLr: 1e5 } }));
  const runs = path.join(dir, 'runs');
  const r = cli(['train', '--scale', 'smoke', '--config', cfg, '--runs', runs]);
  assert.equal(r.code, 3, r.out);
  assert.match(r.out, /diverged at step \d+: train loss (NaN|Infinity|\d\S*) .*at learning rate \d/);
  const [id] = fs.readdirSync(runs).filter((d) => /^[0-9a-f]{16}$/.test(d));
  const status = JSON.parse(fs.readFileSync(path.join(runs, id, 'status.json'), 'utf8'));
  assert.equal(status.state, 'diverged');
  assert.ok(status.divergence.step >= 1 && status.divergence.lr > 0);
  checkpointsFinite(path.join(runs, id));
  // asking again gives the stored result (no retraining), still exit 3
  const again = cli(['train', '--scale', 'smoke', '--config', cfg, '--runs', runs]);
  assert.equal(again.code, 3, again.out);
  assert.match(again.out, /stored result/);
});

test('an exploding but finite loss (> 2x the initial loss) is divergence too; the last finite checkpoint is kept', async () => {
  const store = new RunStore(tmp('explode'));
  // lr 1 with a slow warmup: fine for a few steps (checkpoints every 2), then the loss explodes
  const spec = runSpec('baseline', 'smoke', 1, 'wasm', {
    overrides: { train: { lr: 1, minLr: 0.1, warmupSteps: 10, checkpointInterval: 2 } },
  });
  const r = await trainRun(spec, store);
  assert.ok(r.diverged, 'diverged');
  const d = r.diverged!;
  assert.ok(
    !Number.isFinite(d.loss) || d.loss > DIVERGENCE_FACTOR * d.initialLoss,
    `loss ${d.loss} vs initial ${d.initialLoss}`,
  );
  assert.equal(d.limit, DIVERGENCE_FACTOR * d.initialLoss);
  assert.equal(d.initialLoss, r.metrics[0].valLoss, 'the reference is the validation loss at step 0');
  assert.equal(r.run.status().state, 'diverged');
  const kept = checkpointsFinite(r.run.dir);
  assert.equal(d.checkpointStep, r.run.latestCheckpoint()?.step ?? null);
  assert.ok(
    kept > 0 && d.checkpointStep! < d.step,
    `a finite checkpoint before step ${d.step} is kept (${d.checkpointStep})`,
  );
  // a stored diverged run is returned as it is
  const again = await trainRun(spec, store);
  assert.equal(again.cached, true);
  assert.deepEqual(again.diverged, d);
});

test('a learning rate that spikes the loss but stays under the limit is not divergence', async () => {
  const spec = runSpec('baseline', 'smoke', 1, 'wasm', { overrides: { train: { lr: 0.3, minLr: 0.03 } } });
  const r = await trainRun(spec, new RunStore(tmp('spike')));
  assert.equal(r.diverged, undefined);
  assert.equal(r.run.status().state, 'done');
});

test('CEG tables leave diverged runs out (n_diverged), and list them apart', () => {
  const curve = (k: number) =>
    [0, 10, 20, 30, 40].map((step) => ({
      step,
      tokens: step,
      flops: step,
      seconds: step,
      trainLoss: null,
      lr: 1e-3,
      valLoss: 5 - k * 0.05 * step,
    }));
  const nan = [0, 10].map((step) => ({
    step,
    tokens: step,
    flops: step,
    seconds: step,
    trainLoss: null,
    lr: 1e-3,
    valLoss: step ? NaN : 5,
  }));
  const base = [1, 2].map((seed) => ({ innovation: 'baseline', seed, scale: 'smoke', metrics: curve(1) }));
  const rope1 = { innovation: 'rope', seed: 1, scale: 'smoke', metrics: curve(2) };
  const rope2 = {
    innovation: 'rope',
    seed: 2,
    scale: 'smoke',
    metrics: nan,
    diverged: { step: 10, loss: NaN, lr: 1e6 },
  };
  const withDiverged = cegFrame(cegTable([...base, rope1, rope2], { scale: 'smoke' })).objects() as Record<
    string,
    unknown
  >[];
  const without = cegFrame(cegTable([...base, rope1], { scale: 'smoke' })).objects() as Record<string, unknown>[];
  const rope = withDiverged.find((r) => r.innovation === 'rope')!;
  const ref = without.find((r) => r.innovation === 'rope')!;
  assert.equal(rope.n_seeds, 1);
  assert.equal(rope.n_diverged, 1);
  for (const k of ['ceg_steps', 'ceg_flops', 'paper_ceg', 'n_dnr_steps', 'dnr_steps', 'paper_n_dnr'])
    assert.deepEqual(rope[k], ref[k], k);
  assert.equal(ref.n_diverged, 0);
  assert.match(formatCegTable(cegTable([...base, rope1, rope2], { scale: 'smoke' })), /1 \(\+1 diverged\)/);
  const listed = formatDivergedRuns([...base, rope1, rope2]);
  assert.match(listed, /rope\s+smoke\s+2\s+10\s+NaN\s+1000000/);
  assert.equal(formatDivergedRuns([...base, rope1]), '');
});

test('ceg sweep of runs that all diverge: exit 3, the diverged runs listed, no CEG table', () => {
  const dir = tmp('sweep');
  const cfg = path.join(dir, 'lr.json');
  fs.writeFileSync(cfg, JSON.stringify({ train: { lr: 1e6, minLr: 1e5 } }));
  const r = cli([
    'sweep',
    '--scale',
    'smoke',
    '--innovations',
    'baseline,rope',
    '--jobs',
    '1',
    '--config',
    cfg,
    '--runs',
    path.join(dir, 'runs'),
  ]);
  assert.equal(r.code, 3, r.out);
  assert.match(r.out, /baseline\s+seed 1\s+DIVERGED at step \d+/);
  assert.match(r.out, /Diverged run \(not in the CEG table\)/);
  assert.match(r.out, /2 of 2 runs diverged/);
  assert.doesNotMatch(r.out, /Compute-equivalent gain at scale/);
  // ceg report lists the store's diverged runs apart too
  const rep = cli(['report', '--scale', 'smoke', '--backend', 'wasm', '--runs', path.join(dir, 'runs')]);
  assert.match(rep.out, /Diverged run \(not in the CEG table\)/);
  assert.match(rep.out, /rope\s+smoke\s+1\s+\d+\s+/);
});
