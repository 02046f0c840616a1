import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `ceg-cli-${name}-`));

/** Run the CLI in a fresh run store; return exit code, stderr and what the store holds afterwards. */
function ceg(args: string[], extraEnv: Record<string, string> = {}) {
  const runs = tmp('runs');
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    env: { ...process.env, CEG_RUNS: runs, ...extraEnv },
    encoding: 'utf8',
    timeout: 60_000,
  });
  // run folders and files; the hidden .claims/ folder of writers' locks is not a run
  return {
    code: r.status,
    stderr: r.stderr,
    stdout: r.stdout,
    written: fs.readdirSync(runs).filter((f) => f !== '.claims'),
  };
}

test('unknown innovation: one message naming it and the valid choices, exit 2, nothing written', () => {
  const r = ceg(['train', '--innovation', 'ropee', '--scale', 'smoke']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown innovation "ropee"; valid: baseline, layernorm, .*rope/);
  assert.deepEqual(r.written, []);
});

test('unknown scale and unknown command are usage errors (exit 2)', () => {
  const a = ceg(['sweep', '--scale', 'huge']);
  assert.equal(a.code, 2);
  assert.match(a.stderr, /unknown scale "huge"; valid: smoke, micro, compact, full/);
  const b = ceg(['trian']);
  assert.equal(b.code, 2);
  assert.match(b.stderr, /unknown command "trian".*did you mean "train"/);
});

test('a malformed config file names the bad field and what was expected, exit 2, nothing written', () => {
  const dir = tmp('cfg');
  const bad = path.join(dir, 'bad.json');
  fs.writeFileSync(bad, JSON.stringify({ model: { nHead: 3 }, train: { lr: -1 } }));
  const r = ceg(['train', '--scale', 'smoke', '--config', bad]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /nEmbd 32 must be divisible by nHead 3/);
  assert.deepEqual(r.written, []);
  const notJson = path.join(dir, 'x.json');
  fs.writeFileSync(notJson, '{ model: ');
  const r2 = ceg(['train', '--scale', 'smoke', '--config', notJson]);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /not valid JSON/);
  const r3 = ceg(['train', '--scale', 'smoke', '--config', path.join(dir, 'unknownkey.json')]);
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /no such file/);
});

test('missing corpus files and a token file that is not whole uint16s: clear errors, exit 2, nothing written', () => {
  const dir = tmp('data');
  const r = ceg(['train', '--scale', 'smoke', '--data', dir]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /missing train\.bin/);
  fs.writeFileSync(path.join(dir, 'train.bin'), Buffer.alloc(7));
  fs.writeFileSync(path.join(dir, 'val.bin'), Buffer.alloc(8));
  const r2 = ceg(['train', '--scale', 'smoke', '--data', dir]);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /train\.bin.*7 bytes/);
  assert.deepEqual(r2.written, []);
});

test('training on user token files (nanoGPT format) works end to end', () => {
  const dir = tmp('tok');
  const n = 4000;
  const ids = new Uint16Array(n).map((_, i) => (i * 7) % 50); // a learnable periodic sequence
  fs.writeFileSync(path.join(dir, 'train.bin'), Buffer.from(ids.buffer));
  fs.writeFileSync(path.join(dir, 'val.bin'), Buffer.from(ids.slice(0, 1000).buffer));
  const r = ceg(['train', '--scale', 'smoke', '--data', dir, '--tokenizer', 'char']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /baseline smoke seed 1: run [0-9a-f]{16}, final val loss \d/);
  assert.equal(r.written.length, 1);
});

test('ceg report prints the CEG table and the ladder verdicts from stored runs, without training', async () => {
  const { RunStore } = await import('../src/runs/index.js');
  const { runSpec } = await import('../src/train/sweep.js');
  const { initEngine } = await import('../src/engine/index.js');
  const { currentProvenance } = await import('../src/train/provenance.js');
  await initEngine({ backend: 'cpu' });
  // synthetic runs, recorded as trained by the current code (else the stale check would replay them)
  const provenance = currentProvenance('cpu');
  const root = tmp('report');
  const store = new RunStore(root);
  const Lb = (C: number) => 2 + 10 * Math.pow(C / 1e6, -0.3); // the baseline's loss vs compute
  const F = 1e6;
  const put = (
    innovation: string,
    scale: string,
    seed: number,
    loss: (step: number) => number,
    steps: number[],
    flopsPerStep = F,
  ) => {
    const run = store.open(runSpec(innovation, scale, seed, 'cpu'));
    run.appendMetrics(
      steps.map((step) => ({
        step,
        tokens: step,
        flops: step * flopsPerStep,
        seconds: step,
        trainLoss: null,
        lr: 1e-3,
        valLoss: step === 0 ? 50 : loss(step),
      })),
    );
    run.setStatus({ state: 'done', provenance });
  };
  const steps = Array.from({ length: 11 }, (_, k) => k * 10);
  for (const seed of [1, 2]) {
    put('baseline', 'smoke', seed, (s) => Lb(s * F), steps);
    put('rope', 'smoke', seed, (s) => Lb(2 * s * F), steps); // the same curve reached with half the compute
    for (const [rung, C] of [
      ['smoke-r0', 1e6],
      ['smoke-r1', 1e7],
      ['smoke-r2', 1e8],
    ] as const) {
      put('baseline', rung, seed, () => Lb(C) + 0.001 * seed, [0, 10], C / 10);
      put('layernorm', rung, seed, () => Lb(2 * C) + 0.001 * seed, [0, 10], C / 10); // a constant compute multiplier
    }
  }
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'report', '--scale', 'smoke', '--backend', 'cpu', '--runs', root],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  const ropeLine = r.stdout
    .split('\n')
    .find((l) => l.startsWith('Rotary embeddings (RoPE)') && l.includes('compute-independent'))!;
  assert.match(ropeLine, /2\.000 \[2\.000, 2\.000\]/); // CEG 2 on steps, tokens, flops (seconds too: 1 s per step)
  const verdict = r.stdout.split('\n').find((l) => l.startsWith('layernorm'))!;
  assert.match(verdict, /compute-independent\s*$/);
});
