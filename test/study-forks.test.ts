/**
 * Warmup–stable–decay and cooldown forks (issue #13): the LR curve, kept fork-point
 * checkpoints, forks that equal a from-scratch run of the same schedule, fork caching and
 * resume, and the errors for a fork without its trunk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, parseTrainConfig, type TrainConfig } from '../src/config.js';
import { CheckpointCorruptError, RunStore, checkRun, isVerifiedDone, runId, type RunSpec } from '../src/runs/index.js';
import { learningRate, wsdRate } from '../src/train/schedule.js';
import { trainRun } from '../src/train/trainer.js';
import { runSpec } from '../src/train/sweep.js';

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `ceg-${name}-`));
const strip = (rows: { seconds: number }[]) => rows.map(({ seconds: _s, ...r }) => r);

test('wsd: linear warmup, constant, linear cooldown to minLr at the last step (hand-computed)', () => {
  const t = { lr: 1e-3, minLr: 0, warmupSteps: 4, steps: 20, cooldownSteps: 5 };
  const want = [1, 2, 3, 4].map((k) => (1e-3 * k) / 5);
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(wsdRate(i, t) - want[i]) < 1e-15, `warmup step ${i}`);
  for (let i = 4; i < 15; i++) assert.equal(wsdRate(i, t), 1e-3, `stable step ${i}`);
  // cooldown starts at step 15 = steps - cooldown: 1e-3, 0.8e-3, ..., 0.2e-3, and 0 at step 20
  [1, 0.8, 0.6, 0.4, 0.2, 0].forEach((f, k) =>
    assert.ok(Math.abs(wsdRate(15 + k, t) - 1e-3 * f) < 1e-15, `cooldown step ${15 + k}`),
  );
  // minLr floor
  assert.ok(Math.abs(wsdRate(20, { ...t, minLr: 1e-4 }) - 1e-4) < 1e-15);
  // no cooldown: a trunk stays constant
  assert.equal(wsdRate(19, { ...t, cooldownSteps: 0 }), 1e-3);
  // learningRate dispatches on schedule
  const tc = parseTrainConfig({
    ...smokeTrain(),
    schedule: 'wsd',
    steps: 20,
    warmupSteps: 4,
    cooldownSteps: 5,
    lr: 1e-3,
    minLr: 0,
  });
  for (let i = 0; i <= 20; i++) assert.equal(learningRate(i, tc), wsdRate(i, t));
});

test("a fork's LR curve is its trunk's up to the fork step, then a linear cooldown", () => {
  const trunk = { lr: 3e-3, minLr: 0, warmupSteps: 10, steps: 400, cooldownSteps: 0 };
  const fork = { ...trunk, steps: 240, cooldownSteps: 40 }; // forked at 200
  for (let i = 0; i < 200; i++) assert.equal(wsdRate(i, fork), wsdRate(i, trunk), `step ${i}`);
  for (let i = 200; i <= 240; i++)
    assert.ok(Math.abs(wsdRate(i, fork) - 3e-3 * (1 - (i - 200) / 40)) < 1e-15, `step ${i}`);
});

test('train config: cooldown without wsd, a cooldown longer than the run, keep steps beyond the end are refused', () => {
  assert.throws(() => parseTrainConfig({ ...smokeTrain(), cooldownSteps: 2 }), /cooldownSteps needs schedule 'wsd'/);
  assert.throws(() => parseTrainConfig({ ...smokeTrain(), schedule: 'wsd', cooldownSteps: 11 }), /longer than/);
  assert.throws(() => parseTrainConfig({ ...smokeTrain(), keepSteps: [13] }), /beyond the last step/);
  // absent fields: the config (and so every stored run id) is unchanged
  assert.equal(
    runId(runSpec('baseline', 'smoke', 1, 'wasm')),
    runId({ ...runSpec('baseline', 'smoke', 1, 'wasm'), fork: undefined }),
  );
});

function smokeTrain(): TrainConfig {
  return runSpec('baseline', 'smoke', 1, 'wasm').train;
}

/** A trunk of the smoke model: wsd, constant after warmup, checkpoints kept at 4 and 8 (the fork points). */
function trunkSpec(): RunSpec {
  const s = runSpec('baseline', 'smoke', 5, 'wasm');
  s.train = parseTrainConfig({
    ...s.train,
    schedule: 'wsd',
    steps: 8,
    cooldownSteps: 0,
    minLr: 0,
    evalInterval: 2,
    checkpointInterval: 1,
    keepSteps: [4, 8],
  });
  s.scale = 'smoke-trunk';
  return s;
}

/** The fork of `trunk` at `at`, cooling down over `cool` steps; `standalone` drops the fork (trained from scratch). */
function forkSpec(trunk: RunSpec, at: number, cool: number, standalone = false): RunSpec {
  const { keepSteps: _k, ...rest } = trunk.train;
  const train = parseTrainConfig({ ...rest, steps: at + cool, cooldownSteps: cool });
  return { ...trunk, train, scale: 'smoke-fork', ...(standalone ? {} : { fork: { parent: runId(trunk), step: at } }) };
}

test('cooldown forks: kept trunk checkpoints, a fork equals the same schedule trained from scratch, caching and resume', async () => {
  const store = new RunStore(tmp('forks'));
  const trunk = trunkSpec();
  const t = await trainRun(trunk, store);
  // checkpoints every step with keepCheckpoints 2 would leave only 7 and 8: 4 is kept because it is a fork point
  const cks = t.run.checkpoints();
  assert.deepEqual(
    cks.map((c) => c.step),
    [4, 6, 7, 8],
  );
  assert.deepEqual(
    cks.filter((c) => c.kept).map((c) => c.step),
    [4, 8],
  );

  const fork = forkSpec(trunk, 4, 2);
  const alone = forkSpec(trunk, 4, 2, true);
  assert.notEqual(runId(fork), runId(alone), 'the fork field is part of the run id');
  assert.notEqual(runId(fork), runId(trunk));
  const f = await trainRun(fork, store);
  assert.equal(f.cached, false);
  // the fork's rows up to the fork step are the trunk's (same numbers, same seconds)
  assert.deepEqual(
    f.metrics.filter((r) => r.step <= 4),
    t.metrics.filter((r) => r.step <= 4),
  );
  assert.deepEqual(
    f.metrics.map((r) => r.step),
    [0, 2, 4, 6],
  );
  assert.equal(f.metrics.at(-1)!.lr, wsdRate(6, fork.train));
  // the fork is exactly "the trunk's first 4 steps, then cool down": the same as training that schedule from scratch
  const a = await trainRun(alone, new RunStore(tmp('alone')));
  assert.deepEqual(strip(f.metrics), strip(a.metrics));
  // and it is not the trunk continued at constant LR
  assert.notEqual(f.metrics.at(-1)!.valLoss, t.metrics.find((r) => r.step === 6)!.valLoss);

  // cached: a second call trains nothing
  const again = await trainRun(fork, store);
  assert.equal(again.cached, true);
  assert.deepEqual(again.metrics, f.metrics);

  // a fork at the trunk's last step, crashed before it is done, resumes to the same numbers
  const late = forkSpec(trunk, 8, 4);
  late.train = parseTrainConfig({ ...late.train, checkpointInterval: 2 });
  const ref = await trainRun({ ...late, fork: undefined }, new RunStore(tmp('late-ref')));
  await assert.rejects(trainRun(late, store, { crashAfterSteps: 3 }), /simulated crash/); // checkpoint at 10, crash at 11
  assert.equal(store.get(runId(late))!.status().state, 'failed');
  assert.equal(store.get(runId(late))!.latestCheckpoint()!.step, 10);
  const resumed = await trainRun(late, store);
  assert.equal(resumed.cached, false);
  assert.deepEqual(strip(resumed.metrics), strip(ref.metrics));
  // crashed before its first own checkpoint: restarts from the trunk's checkpoint again
  const early = forkSpec(trunk, 8, 4);
  early.train = parseTrainConfig({ ...early.train, checkpointInterval: 0 });
  await assert.rejects(trainRun(early, store, { crashAfterSteps: 2 }), /simulated crash/);
  const early2 = await trainRun(early, store);
  const earlyRef = await trainRun({ ...early, fork: undefined }, new RunStore(tmp('early-ref')));
  assert.deepEqual(strip(early2.metrics), strip(earlyRef.metrics));
});

test('a fork without its trunk, at a step the trunk did not keep, or with another recipe is a clear error, nothing written', async () => {
  const store = new RunStore(tmp('fork-errors'));
  const trunk = trunkSpec();
  await assert.rejects(
    trainRun(forkSpec(trunk, 4, 2), store),
    (e: unknown) => e instanceof ConfigError && /parent run is not in/.test(e.message),
  );
  assert.deepEqual(store.ids(), []);
  await trainRun(trunk, store);
  await assert.rejects(
    trainRun(forkSpec(trunk, 5, 2), store),
    (e: unknown) => e instanceof ConfigError && /no checkpoint at that step.*kept checkpoints: 4, 8/.test(e.message),
  );
  const other = forkSpec(trunk, 4, 2);
  other.train = parseTrainConfig({ ...other.train, lr: other.train.lr * 2 });
  await assert.rejects(
    trainRun(other, store),
    (e: unknown) => e instanceof ConfigError && /differs from its parent in train/.test(e.message),
  );
  const seed = { ...forkSpec(trunk, 4, 2), seed: 9 };
  await assert.rejects(trainRun(seed, store), /differs from its parent in seed/);
  assert.deepEqual(store.ids(), [runId(trunk)]);
});

test('forks under claims and integrity: verified fork point, provenance and probe, the parent only read, kept checkpoints stay', async () => {
  const store = new RunStore(tmp('fork-integrity'));
  const trunk = trunkSpec();
  const t = await trainRun(trunk, store);
  const fork = forkSpec(trunk, 4, 2);
  // the fork point is checksummed like every checkpoint; a damaged one is refused before anything is written
  const ck4 = t.run.checkpointAt(4)!;
  const manifest = JSON.parse(fs.readFileSync(path.join(ck4.dir, 'checkpoint.json'), 'utf8')) as {
    kept?: boolean;
    sha256?: Record<string, string>;
  };
  assert.equal(manifest.kept, true);
  assert.match(manifest.sha256?.['tensors.bin'] ?? '', /^[0-9a-f]{64}$/);
  const bin = path.join(ck4.dir, 'tensors.bin');
  const good = fs.readFileSync(bin);
  const bad = Buffer.from(good);
  bad[bad.length >> 1] ^= 0xff;
  fs.writeFileSync(bin, bad);
  await assert.rejects(
    trainRun(fork, store),
    (e: unknown) => e instanceof CheckpointCorruptError && /sha256/.test(e.message) && /fork point/.test(e.message),
  );
  assert.deepEqual(store.ids(), [runId(trunk)]);
  fs.writeFileSync(bin, good);

  // the fork claims its own id: another process holding the trunk's claim does not stop it
  const parentClaim = await store.claim(runId(trunk));
  let f;
  try {
    f = await trainRun(fork, store);
  } finally {
    parentClaim.release();
  }
  assert.equal(f.cached, false);
  assert.equal(isVerifiedDone(store, runId(fork)), true);
  assert.deepEqual(checkRun(store, runId(fork)).problems, []);
  // provenance like any run; the code history and the replay probe start with the trunk's
  const ts = t.run.status();
  const fs_ = f.run.status();
  assert.equal(fs_.provenance?.fingerprint, ts.provenance?.fingerprint);
  assert.deepEqual(fs_.trainedWith, ts.trainedWith);
  assert.equal(fs_.probe?.trainLosses.length, 5);
  assert.deepEqual(fs_.probe?.trainLosses, ts.probe?.trainLosses); // step 5's loss is computed on the shared step-4 weights

  // a trunk resumed with rows lost: a kept checkpoint ahead of the metrics is left in place (not deleted), then saved again
  const trunk2 = { ...trunkSpec(), seed: 6 };
  await assert.rejects(trainRun(trunk2, store, { crashAfterSteps: 5 }), /simulated crash/);
  const r2 = store.get(runId(trunk2))!;
  assert.deepEqual(
    r2.checkpoints().map((c) => [c.step, c.kept === true]),
    [
      [3, false],
      [4, true],
      [5, false],
    ],
  );
  r2.truncateMetricsAfter(2); // rows of step 4 lost: ckpt-4 and ckpt-5 are ahead of the metrics
  const notices: string[] = [];
  const done2 = await trainRun(trunk2, store, { onNotice: (m) => notices.push(m) });
  assert.ok(
    notices.some((m) => /ckpt-4 \(kept\) is ahead of the metrics.*not resumed from/.test(m)),
    notices.join('\n'),
  );
  assert.ok(
    notices.some((m) => /ckpt-5 is ahead of the metrics.*removed/.test(m)),
    notices.join('\n'),
  );
  assert.deepEqual(
    done2.run
      .checkpoints()
      .filter((c) => c.kept)
      .map((c) => c.step),
    [4, 8],
  );
  assert.deepEqual(checkRun(store, runId(trunk2)).problems, []);
  const ref2 = await trainRun(trunk2, new RunStore(tmp('trunk2-ref')));
  assert.deepEqual(strip(done2.metrics), strip(ref2.metrics));
});
