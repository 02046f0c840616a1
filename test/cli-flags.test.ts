/**
 * Issue 18.1: every flag of every training command reaches the runs it trains, whatever
 * --jobs is. Each test runs the real CLI and reads back the stored spec.json of every run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { RunSpec } from '../src/runs/index.js';

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `ceg-flags-${name}-`));

function ceg(args: string[], cwd = process.cwd()) {
  // tsx by absolute URL: the working directory (a temporary folder) has no node_modules
  const r = spawnSync(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), path.resolve('src/cli/main.ts'), ...args],
    {
      cwd,
      env: { ...process.env, CEG_RUNS: tmp('wrong-store') }, // --runs must win over $CEG_RUNS
      encoding: 'utf8',
      timeout: 240_000,
    },
  );
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

/** The spec.json of every run folder in a store. */
function specs(root: string): RunSpec[] {
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .filter((d) => /^[0-9a-f]{16}$/.test(d))
    .map((d) => JSON.parse(fs.readFileSync(path.join(root, d, 'spec.json'), 'utf8')) as RunSpec);
}

function statuses(root: string): string[] {
  return fs
    .readdirSync(root)
    .filter((d) => /^[0-9a-f]{16}$/.test(d))
    .map((d) => JSON.parse(fs.readFileSync(path.join(root, d, 'status.json'), 'utf8')).state as string);
}

/** A token corpus (nanoGPT format) and a config file, both given by RELATIVE paths from `cwd`. */
function inputs(): { cwd: string; data: string; config: string; dataAbs: string } {
  const cwd = tmp('cwd');
  const dataAbs = path.join(cwd, 'tok');
  fs.mkdirSync(dataAbs);
  const ids = new Uint16Array(4000).map((_, i) => (i * 7) % 50);
  fs.writeFileSync(path.join(dataAbs, 'train.bin'), Buffer.from(ids.buffer));
  fs.writeFileSync(path.join(dataAbs, 'val.bin'), Buffer.from(ids.slice(0, 1000).buffer));
  fs.writeFileSync(
    path.join(cwd, 's6.json'),
    JSON.stringify({ model: { nEmbd: 48 }, train: { steps: 6, decaySteps: 6 } }),
  );
  return { cwd, data: 'tok', config: 's6.json', dataAbs };
}

/** Every run of a data/tokenizer/config command: the flags' values, not the defaults. */
function assertCustom(s: RunSpec, dataAbs: string | undefined): void {
  assert.equal(s.backend, 'cpu', 'backend');
  assert.equal(s.train.steps, 6, 'train override from --config');
  assert.equal(s.train.decaySteps, 6, 'train override from --config');
  assert.equal(s.model.nEmbd, 48, 'model override from --config');
  assert.equal(s.data.tokenizer, 'char', '--tokenizer');
  assert.equal(s.data.dir, dataAbs, '--data');
}

test('train: innovation, scale, seed, backend, data, tokenizer, config and runs reach the stored spec', () => {
  const { cwd, data, config, dataAbs } = inputs();
  const runs = path.join(cwd, 'store');
  const r = ceg(
    [
      'train',
      '--innovation',
      'rope',
      '--scale',
      'smoke',
      '--seed',
      '3',
      '--backend',
      'cpu',
      '--data',
      data,
      '--tokenizer',
      'char',
      '--config',
      config,
      '--runs',
      'store',
    ],
    cwd,
  );
  assert.equal(r.code, 0, r.stderr);
  const [s, ...more] = specs(runs);
  assert.equal(more.length, 0);
  assert.equal(s.innovation, 'rope');
  assert.equal(s.scale, 'smoke');
  assert.equal(s.seed, 3);
  assert.equal(s.model.positions, 'rope');
  assertCustom(s, dataAbs);
});

// without --data the sweep used to drop --config and --tokenizer (the bug of issue 18.1)
for (const [jobs, withData] of [
  [1, false],
  [2, false],
  [2, true],
] as const) {
  test(`sweep --jobs ${jobs}${withData ? ' --data' : ''}: scale, seeds, innovations, backend, tokenizer, config and runs reach every run`, () => {
    const { cwd, data, config, dataAbs } = inputs();
    const runs = path.join(cwd, 'store');
    const r = ceg(
      [
        'sweep',
        '--scale',
        'smoke',
        '--innovations',
        'rope',
        '--seeds',
        '2,5',
        '--jobs',
        String(jobs),
        '--backend',
        'cpu',
        ...(withData ? ['--data', data] : []),
        '--tokenizer',
        'char',
        '--config',
        config,
        '--runs',
        'store',
      ],
      cwd,
    );
    assert.equal(r.code, 0, r.stderr);
    const all = specs(runs);
    // exactly the requested runs: none with the defaults beside them
    assert.deepEqual(all.map((s) => `${s.innovation}/${s.seed}`).sort(), ['rope/2', 'rope/5']);
    for (const s of all) {
      assert.equal(s.scale, 'smoke');
      assertCustom(s, withData ? dataAbs : undefined);
      if (!withData) assert.equal(s.data.corpus, 'sotu');
    }
    assert.ok(statuses(runs).every((x) => x === 'done'));
  });
}

test('sweep: a missing or malformed --config is an error (exit 2) with any --jobs, nothing written', () => {
  const { cwd } = inputs();
  fs.writeFileSync(path.join(cwd, 'bad.json'), '{ "train": ');
  for (const jobs of ['1', '2']) {
    for (const cfg of ['nope.json', 'bad.json']) {
      const r = ceg(
        [
          'sweep',
          '--scale',
          'smoke',
          '--innovations',
          'baseline,rope',
          '--jobs',
          jobs,
          '--config',
          cfg,
          '--runs',
          'store',
        ],
        cwd,
      );
      assert.equal(r.code, 2, `--jobs ${jobs} --config ${cfg}: ${r.stderr}`);
      assert.match(r.stderr, cfg === 'nope.json' ? /no such file/ : /not valid JSON/);
      assert.deepEqual(specs(path.join(cwd, 'store')), []);
    }
  }
});

test('ladder: scale, seeds, innovations, backend, jobs and runs reach every rung', async () => {
  const { RunStore } = await import('../src/runs/index.js');
  const { runSpec } = await import('../src/train/sweep.js');
  const runs = tmp('ladder');
  // four of the six runs already complete (synthetic), so that two train (smoke-r1: in two children);
  // a flag that did not reach the runs would train six others beside them
  const store = new RunStore(runs);
  for (const [rung, seed] of [
    ['smoke-r0', 4],
    ['smoke-r0', 7],
    ['smoke-r2', 4],
    ['smoke-r2', 7],
  ] as const) {
    const run = store.open(runSpec('layernorm', rung, seed, 'cpu'));
    run.appendMetrics(
      [0, 12].map((step) => ({
        step,
        tokens: step,
        flops: step,
        seconds: step,
        trainLoss: null,
        lr: 1e-3,
        valLoss: 5 - 0.1 * step,
      })),
    );
    run.setStatus({ state: 'done' });
  }
  const r = ceg([
    'ladder',
    '--scale',
    'smoke',
    '--innovations',
    'layernorm',
    '--seeds',
    '4,7',
    '--jobs',
    '2',
    '--backend',
    'cpu',
    '--runs',
    runs,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const all = specs(runs);
  assert.deepEqual(all.map((s) => `${s.innovation}/${s.scale}/${s.seed}`).sort(), [
    'layernorm/smoke-r0/4',
    'layernorm/smoke-r0/7',
    'layernorm/smoke-r1/4',
    'layernorm/smoke-r1/7',
    'layernorm/smoke-r2/4',
    'layernorm/smoke-r2/7',
  ]);
  for (const s of all) {
    assert.equal(s.backend, 'cpu');
    assert.equal(s.model.norm, 'layernorm');
  }
  assert.ok(statuses(runs).every((x) => x === 'done'));
});

test('reproduce: scale, seeds, backend, jobs and runs reach every run of the study set', async () => {
  const { STUDY_SET } = await import('../src/innovations.js');
  const { RunStore, runId } = await import('../src/runs/index.js');
  const { runSpec } = await import('../src/train/sweep.js');
  const runs = tmp('repro');
  // all but two runs of the study set are already complete (synthetic curves), so that the
  // test trains two runs, not fourteen; a flag that did not reach the runs would train
  // fourteen others (and the folder count below would show them)
  const store = new RunStore(runs);
  const train = new Set(['rope/3', 'mqa/4']);
  for (const inn of STUDY_SET) {
    for (const seed of [3, 4]) {
      if (train.has(`${inn}/${seed}`)) continue;
      const run = store.open(runSpec(inn, 'smoke', seed, 'cpu'));
      const f = inn === 'baseline' ? 1 : 1.5;
      run.appendMetrics(
        [0, 4, 8, 12].map((step) => ({
          step,
          tokens: step,
          flops: step * 10,
          seconds: step,
          trainLoss: null,
          lr: 1e-3,
          valLoss: 5 - 0.2 * f * step,
        })),
      );
      run.setStatus({ state: 'done' });
    }
  }
  const before = store.ids().length;
  const r = ceg(['reproduce', '--scale', 'smoke', '--seeds', '3,4', '--jobs', '2', '--backend', 'cpu', '--runs', runs]);
  assert.equal(r.code, 0, r.stderr);
  const all = specs(runs);
  assert.equal(all.length, before + 2, 'exactly the two missing runs were trained');
  for (const key of train) {
    const [inn, seed] = key.split('/');
    const run = store.get(runId(runSpec(inn, 'smoke', Number(seed), 'cpu')))!;
    assert.ok(run?.isDone(), `${key} trained with the flags' spec`);
    assert.equal(run.spec.backend, 'cpu');
  }
  for (const s of all) {
    assert.equal(s.scale, 'smoke');
    assert.equal(s.backend, 'cpu');
    assert.ok([3, 4].includes(s.seed));
  }
  assert.match(r.stdout, /Compute-equivalent gain at scale "smoke"/);
});

test('train --run ID --spec FILE (how ceg study hands a run to a child): that spec is trained; a spec of another id or --spec alone is refused, nothing written', async () => {
  const { runSpec } = await import('../src/train/sweep.js');
  const { runId } = await import('../src/runs/index.js');
  const spec = runSpec('layernorm', 'smoke', 4, 'wasm');
  spec.train = { ...spec.train, steps: 4, evalInterval: 2, decaySteps: 4 };
  spec.scale = 'study-smoke-x';
  const file = path.join(tmp('specfile'), 'spec.json');
  fs.writeFileSync(file, JSON.stringify(spec));
  const root = tmp('spec-runs');
  const other = runId({ ...spec, seed: 5 });
  const wrong = ceg(['train', '--run', other, '--spec', file, '--runs', root]);
  assert.equal(wrong.code, 2, wrong.stderr);
  assert.match(wrong.stderr, new RegExp(`is run ${runId(spec)}, not --run ${other}`));
  const alone = ceg(['train', '--spec', file, '--runs', root]);
  assert.equal(alone.code, 2, alone.stderr);
  assert.match(alone.stderr, /--spec needs --run/);
  assert.deepEqual(specs(root), []);
  const r = ceg(['train', '--run', runId(spec), '--spec', file, '--runs', root]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(specs(root), [spec]);
  assert.deepEqual(statuses(root), ['done']);
});
