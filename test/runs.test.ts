import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { getScale } from '../src/scales.js';
import { ConfigError } from '../src/config.js';
import type { MetricRow, RunSpec } from '../src/runs/index.js';
import { RunStore, canonicalJson, runId, METRICS_FILE } from '../src/runs/index.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const roots: string[] = [];
function tmpRoot(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ceg-runs-test-'));
  roots.push(d);
  return d;
}
after(() => {
  for (const d of roots) fs.rmSync(d, { recursive: true, force: true });
});

function smokeSpec(over: Partial<RunSpec> = {}): RunSpec {
  const s = getScale('smoke');
  return {
    model: s.model,
    train: s.train,
    data: s.data,
    seed: 1,
    backend: 'cpu',
    innovation: 'baseline',
    scale: 'smoke',
    ...over,
  };
}

/** Rebuild an object with its keys in reverse order at every depth. */
function reverseKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reverseKeys);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .reverse()
        .map((k) => [k, reverseKeys((v as Record<string, unknown>)[k])]),
    );
  return v;
}

function row(step: number, over: Partial<MetricRow> = {}): MetricRow {
  return {
    step,
    tokens: step * 128,
    flops: step * 1e6,
    seconds: step / 10,
    trainLoss: 5 - step / 100,
    valLoss: null,
    lr: 1e-3,
    ...over,
  };
}

// ------------------------------------------------------------------ ids

test('canonicalJson sorts keys at every depth and drops undefined', () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: 2, c: [3, { f: 1, e: 2 }] }, z: undefined }),
    '{"a":{"c":[3,{"e":2,"f":1}],"d":2},"b":1}',
  );
  assert.throws(() => canonicalJson({ a: NaN }), /\$\.a: NaN cannot be hashed/);
});

test('runId: same spec in any key order gives the same id; any number-determining change a new one', () => {
  const spec = smokeSpec();
  const id = runId(spec);
  assert.match(id, /^[0-9a-f]{16}$/);
  // independent reference: sha256 of the hand-ordered canonical JSON; the NSA settings count
  // only with the 'nsa' kernel (so specs stored before NSA existed keep their ids)
  assert.notEqual(spec.model.attnKernel, 'nsa');
  const { nsa: _nsa, ...modelWithoutNsa } = spec.model;
  const ref = createHash('sha256')
    .update(
      canonicalJson({
        backend: spec.backend,
        data: spec.data,
        model: modelWithoutNsa,
        seed: spec.seed,
        train: spec.train,
      }),
    )
    .digest('hex')
    .slice(0, 16);
  assert.equal(id, ref);
  assert.equal(runId(reverseKeys(spec) as RunSpec), id);
  assert.equal(runId({ ...spec, data: { ...spec.data, dir: undefined } }), id, 'undefined optional field = absent');
  // labels are descriptive only
  assert.equal(runId({ ...spec, innovation: 'renamed', scale: 'other' }), id);
  const changed = [
    runId({ ...spec, seed: 2 }),
    runId({ ...spec, backend: 'wasm' }),
    runId({ ...spec, model: { ...spec.model, norm: 'layernorm' } }),
    runId({ ...spec, train: { ...spec.train, lr: spec.train.lr * 2 } }),
    runId({ ...spec, data: { ...spec.data, corpus: 'moby-dick' } }),
  ];
  assert.equal(new Set([id, ...changed]).size, 6, `ids must all differ: ${[id, ...changed].join(' ')}`);
  // NSA settings: ignored unless the kernel is 'nsa', then they count
  const nsa = { heads: 2, kvHeads: 1, blockSize: 8, blockCounts: 2, windowSize: 0 };
  assert.equal(runId({ ...spec, model: { ...spec.model, nsa: undefined } }), id);
  assert.equal(runId({ ...spec, model: { ...spec.model, nsa: { ...nsa, blockCounts: 3 } } }), id);
  const withNsa = { ...spec, model: { ...spec.model, attnKernel: 'nsa' as const, nsa } };
  assert.notEqual(runId(withNsa), id);
  assert.notEqual(runId({ ...withNsa, model: { ...withNsa.model, nsa: { ...nsa, blockCounts: 3 } } }), runId(withNsa));
});

// ------------------------------------------------------------------ store basics

test('open creates spec.json and status.json running; reopening returns the same run', () => {
  const store = new RunStore(tmpRoot());
  const spec = smokeSpec();
  const run = store.open(spec);
  assert.equal(run.id, runId(spec));
  assert.equal(run.dir, path.join(store.root, run.id));
  assert.deepEqual(fs.readdirSync(store.root), [run.id], 'no temporary folder left in the root');
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(run.dir, 'spec.json'), 'utf8')), spec);
  assert.equal(run.status().state, 'running');
  assert.equal(run.status().pid, process.pid);
  run.appendMetrics([row(0)]);
  const again = store.open(reverseKeys(spec) as RunSpec);
  assert.equal(again.id, run.id);
  assert.deepEqual(again.metrics(), [row(0)]);
  assert.equal(store.get(run.id)?.id, run.id);
  assert.equal(store.get('0123456789abcdef'), undefined);
  assert.equal(store.get('not-an-id'), undefined);
});

test('open validates the spec and names the bad field', () => {
  const store = new RunStore(tmpRoot());
  assert.throws(
    () => store.open(smokeSpec({ seed: -3 })),
    (e: Error) => e instanceof ConfigError && /seed: must be a non-negative integer, got -3/.test(e.message),
  );
  assert.throws(
    () => store.open(smokeSpec({ model: { ...smokeSpec().model, nHead: 3 } })),
    /model\.nEmbd: nEmbd 32 must be divisible by nHead 3/,
  );
  assert.equal(store.ids().length, 0);
});

test('status: done sets finishedAt, failed keeps the error, running again clears both', () => {
  const run = new RunStore(tmpRoot()).open(smokeSpec());
  const started = run.status().startedAt;
  assert.equal(run.isDone(), false);
  run.setStatus({ state: 'failed', error: 'loss is NaN at step 7' });
  assert.equal(run.status().error, 'loss is NaN at step 7');
  assert.ok(run.status().finishedAt);
  run.setStatus({ state: 'running' });
  assert.equal(run.status().error, undefined);
  assert.equal(run.status().finishedAt, undefined);
  run.setStatus({ state: 'done', finishedAt: '2025-01-02T03:04:05.000Z', bestStep: 12 });
  assert.equal(run.isDone(), true);
  assert.equal(run.status().finishedAt, '2025-01-02T03:04:05.000Z');
  assert.equal(run.status().bestStep, 12);
  assert.equal(run.status().startedAt, started);
  assert.throws(
    () => run.setStatus({ state: 'finished' as never }),
    /unknown run state "finished"; valid: running, done, failed/,
  );
});

// ------------------------------------------------------------------ metrics

test('metrics: rows round-trip, a diverged NaN loss survives, bad rows are refused by name', () => {
  const run = new RunStore(tmpRoot()).open(smokeSpec());
  run.appendMetrics([row(0, { valLoss: 4.5 }), row(4, { trainLoss: NaN, extra: 'x' })]);
  const got = run.metrics();
  assert.equal(got.length, 2);
  assert.deepEqual(got[0], row(0, { valLoss: 4.5 }));
  assert.ok(Number.isNaN(got[1].trainLoss));
  assert.equal(got[1].extra, 'x');
  assert.throws(() => run.appendMetrics([row(1.5)]), /metric row 0: step must be a non-negative integer, got 1.5/);
  assert.throws(
    () => run.appendMetrics([row(5), row(6, { flops: Infinity })]),
    /metric row 1: flops must be a finite number/,
  );
  assert.equal(run.metrics().length, 2, 'a refused batch writes nothing');
});

test('a torn final line is ignored by metrics() and cut off by the next open or append', () => {
  const store = new RunStore(tmpRoot());
  const run = store.open(smokeSpec());
  run.appendMetrics([row(0), row(1), row(2)]);
  const file = path.join(run.dir, METRICS_FILE);
  const whole = fs.readFileSync(file);
  fs.appendFileSync(file, '{"step":3,"tokens":38');
  assert.deepEqual(
    run.metrics().map((r) => r.step),
    [0, 1, 2],
  );
  assert.deepEqual(store.list()[0].steps, 2);
  store.open(smokeSpec());
  assert.deepEqual(fs.readFileSync(file), whole, 'open truncates to the last full line');
  // an append after a torn tail (no open in between) repairs first
  fs.appendFileSync(file, '{"step":3,"tok');
  run.appendMetrics([row(3)]);
  assert.deepEqual(
    run.metrics().map((r) => r.step),
    [0, 1, 2, 3],
  );
  assert.equal(fs.readFileSync(file, 'utf8').split('\n').length, 5);
  // corruption in the middle (not a kill's signature) is an error naming file and line
  fs.writeFileSync(file, whole.toString() + 'garbage\n' + JSON.stringify(row(3)) + '\n');
  assert.throws(() => run.metrics(), /metrics\.jsonl:4: corrupt metric line/);
});

test('duplicated rows keep the last per step; truncateMetricsAfter gives the uninterrupted rows', () => {
  const run = new RunStore(tmpRoot()).open(smokeSpec());
  run.appendMetrics([0, 1, 2, 3, 4, 5].map((s) => row(s, { valLoss: 9 })));
  run.appendMetrics([3, 4, 5].map((s) => row(s, { valLoss: 1 })));
  const got = run.metrics();
  assert.deepEqual(
    got.map((r) => r.step),
    [0, 1, 2, 3, 4, 5],
  );
  assert.deepEqual(
    got.map((r) => r.valLoss),
    [9, 9, 9, 1, 1, 1],
  );
  assert.equal(run.truncateMetricsAfter(2), 6);
  assert.deepEqual(
    run.metrics(),
    [0, 1, 2].map((s) => row(s, { valLoss: 9 })),
  );
  assert.equal(
    fs.readFileSync(run.metricsFile, 'utf8'),
    [0, 1, 2].map((s) => JSON.stringify(row(s, { valLoss: 9 })) + '\n').join(''),
  );
  assert.equal(run.truncateMetricsAfter(2), 0);
  assert.equal(run.truncateMetricsAfter(-1), 3);
  assert.deepEqual(run.metrics(), []);
});

// ------------------------------------------------------------------ checkpoints

test('checkpoints: renamed into place, older ones pruned, leftovers ignored and cleaned', () => {
  const store = new RunStore(tmpRoot(), { keepCheckpoints: 2 });
  const run = store.open(smokeSpec());
  assert.equal(run.latestCheckpoint(), undefined);
  for (const step of [0, 4, 8])
    run.saveCheckpoint(step, { 'weights.bin': new Uint8Array([step, 1, 2]), 'opt.json': `{"t":${step}}` });
  assert.deepEqual(
    run.checkpoints().map((c) => c.step),
    [4, 8],
  );
  assert.deepEqual(run.latestCheckpoint(), { step: 8, dir: path.join(run.dir, 'ckpt-8') });
  const ck = run.loadCheckpoint();
  assert.equal(ck?.step, 8);
  assert.deepEqual([...ck!.files['weights.bin']], [8, 1, 2]);
  assert.equal(ck!.files['opt.json'].toString(), '{"t":8}');
  // re-saving a step replaces it
  run.saveCheckpoint(8, { 'weights.bin': new Uint8Array([80]) });
  assert.deepEqual([...run.loadCheckpoint()!.files['weights.bin']], [80]);
  assert.equal(run.loadCheckpoint()!.files['opt.json'], undefined);
  // crash leftovers: a half-written newer checkpoint, a half-deleted pruned one, a temp file,
  // and a replaced checkpoint moved aside whose replacement never landed
  fs.mkdirSync(path.join(run.dir, 'ckpt-12.tmp'));
  fs.writeFileSync(path.join(run.dir, 'ckpt-12.tmp', 'weights.bin'), 'half');
  fs.mkdirSync(path.join(run.dir, 'ckpt-0.del'));
  fs.writeFileSync(path.join(run.dir, '.status.json.tmp-1-abcd'), '{"sta');
  fs.renameSync(path.join(run.dir, 'ckpt-4'), path.join(run.dir, 'ckpt-4.old'));
  assert.equal(run.latestCheckpoint()?.step, 8, 'a .tmp checkpoint is never the latest');
  assert.deepEqual(
    run.checkpoints().map((c) => c.step),
    [8],
  );
  store.open(smokeSpec());
  assert.deepEqual(fs.readdirSync(run.dir).sort(), ['ckpt-4', 'ckpt-8', 'spec.json', 'status.json']);
  assert.deepEqual(
    [...run.loadCheckpoint({ step: 4, dir: path.join(run.dir, 'ckpt-4') })!.files['weights.bin']],
    [4, 1, 2],
  );
  assert.throws(() => run.saveCheckpoint(12, { '../evil': 'x' }), /bad checkpoint file name "..\/evil"/);
  assert.throws(() => run.saveCheckpoint(-1, {}), /non-negative integer, got -1/);
});

test('resume truncates metrics to the latest checkpoint (all rows without one) and sets running', () => {
  const run = new RunStore(tmpRoot()).open(smokeSpec());
  run.appendMetrics([row(0), row(1)]);
  assert.equal(run.resume(), undefined);
  assert.deepEqual(run.metrics(), []);
  run.appendMetrics([row(0), row(1), row(2)]);
  run.saveCheckpoint(2, { w: 'x' });
  run.appendMetrics([row(3), row(4)]);
  run.setStatus({ state: 'failed', error: 'killed' });
  assert.equal(run.resume()?.step, 2);
  assert.deepEqual(
    run.metrics().map((r) => r.step),
    [0, 1, 2],
  );
  assert.equal(run.status().state, 'running');
});

// ------------------------------------------------------------------ list / find / table

test('list, find and table summarise runs; a second label of the same numbers is an alias', () => {
  const store = new RunStore(tmpRoot());
  const a = store.open(smokeSpec({ seed: 1 }));
  const b = store.open(smokeSpec({ seed: 2 }));
  const c = store.open(smokeSpec({ innovation: 'layernorm', model: { ...smokeSpec().model, norm: 'layernorm' } }));
  a.appendMetrics([row(0, { valLoss: 4.2 }), row(4, { valLoss: 3.1 }), row(8, { valLoss: 3.3 }), row(10)]);
  a.setStatus({ state: 'done' });
  b.setStatus({ state: 'failed', error: 'boom' });
  const list = store.list();
  assert.deepEqual(
    list.map((s) => [s.innovation, s.seed, s.state]),
    [
      ['baseline', 1, 'done'],
      ['baseline', 2, 'failed'],
      ['layernorm', 1, 'running'],
    ],
  );
  const sa = list[0];
  assert.equal(sa.steps, 10);
  assert.equal(sa.evals, 3);
  assert.equal(sa.lastValLoss, 3.3);
  assert.equal(sa.bestValLoss, 3.1);
  assert.equal(sa.tokens, 1280);
  assert.equal(sa.flops, 1e7);
  assert.equal(sa.seconds, 1);
  assert.equal(sa.totalSteps, 12);
  assert.equal(sa.interrupted, false);
  assert.equal(list[1].error, 'boom');
  assert.deepEqual(
    store.find({ innovation: 'baseline' }).map((r) => r.id),
    [a.id, b.id],
  );
  assert.deepEqual(
    store.find({ innovation: 'baseline', seed: 2 }).map((r) => r.id),
    [b.id],
  );
  assert.deepEqual(
    store.find({ state: 'running' }).map((r) => r.id),
    [c.id],
  );
  assert.deepEqual(store.find({ scale: 'micro' }), []);
  // same numbers under another name: same run, findable under both labels
  const alias = store.open(smokeSpec({ innovation: 'control', scale: 'smoke2' }));
  assert.equal(alias.id, a.id);
  assert.equal(alias.spec.innovation, 'baseline', "the first label stays the run's name");
  assert.deepEqual(
    store.find({ innovation: 'control', scale: 'smoke2' }).map((r) => r.id),
    [a.id],
  );
  assert.deepEqual(store.find({ innovation: 'control', scale: 'smoke' }), [], 'label parts must match together');
  const t = store.table();
  assert.equal(t.numRows(), 3);
  assert.deepEqual(t.array('bestValLoss'), [3.1, null, null]);
  assert.deepEqual(t.array('seed'), [1, 2, 1]);
  assert.equal(store.table({ scale: 'micro' }).numRows(), 0);
  assert.ok(store.table({ scale: 'micro' }).columnNames().includes('bestValLoss'));
  // a run folder that cannot be read is listed as corrupt, not thrown
  fs.writeFileSync(path.join(c.dir, 'status.json'), '{"sta');
  const corrupt = store.list().find((s) => s.id === c.id)!;
  assert.equal(corrupt.state, 'corrupt');
  assert.match(corrupt.error ?? '', /cannot parse .*status\.json/);
  assert.equal(new RunStore(path.join(store.root, 'missing')).list().length, 0);
});

// ------------------------------------------------------------------ real crashes

const CHILD = `
import { RunStore } from ${JSON.stringify(pathToFileURL(path.join(repo, 'src/runs/index.ts')).href)};
import { getScale } from ${JSON.stringify(pathToFileURL(path.join(repo, 'src/scales.ts')).href)};
const [root, stopAtArg] = process.argv.slice(2);
const stopAt = Number(stopAtArg);
const s = getScale('smoke');
const spec = { model: s.model, train: s.train, data: s.data, seed: 7, backend: 'cpu', innovation: 'baseline', scale: 'smoke' };
const run = new RunStore(root, { keepCheckpoints: 2 }).open(spec);
if (run.isDone()) process.exit(0);
const ck = run.resume();
let step = 0;
if (ck) {
  const c = run.loadCheckpoint(ck);
  const st = JSON.parse(c.files['state.json'].toString());
  if (st.step !== ck.step || c.files['weights.bin'][12345] !== ck.step % 251) throw new Error('bad checkpoint ' + ck.dir);
  step = st.step + 1;
}
const row = (k) => ({ step: k, tokens: k * 128, flops: k * 1e6, seconds: k / 100, trainLoss: 5 - k / 100,
  valLoss: k % 2 ? null : 5 - k / 90, lr: 1e-3, pad: 'x'.repeat(300) });
process.stdout.write('ready ' + step + '\\n');
for (; step <= stopAt; step++) {
  run.appendMetrics([row(step)]);
  if (step % 5 === 0) run.saveCheckpoint(step, { 'weights.bin': Buffer.alloc(1 << 21, step % 251), 'state.json': JSON.stringify({ step }) });
}
run.setStatus({ state: 'done' });
`;

/** Start the child; kill it with SIGKILL `killAfterMs` after it reports ready (never, if undefined). */
function runChild(
  script: string,
  root: string,
  stopAt: number,
  killAfterMs?: number,
): Promise<{ code: number | null; signal: string | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, root, String(stopAt)], {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (killAfterMs !== undefined && out.includes('ready')) setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, out, err }));
  });
}

/** Everything a reader may rely on after a crash, checked without repairing anything. */
function checkConsistent(
  store: RunStore,
  id: string,
  expectRow: (k: number) => unknown,
): { rows: number; ckpt: number | undefined } {
  const run = store.get(id);
  assert.ok(run, 'run folder readable');
  assert.ok(['running', 'done'].includes(run.status().state));
  const rows = run.metrics();
  rows.forEach((r, i) => assert.deepEqual(r, expectRow(i), `row ${i}`));
  const ck = run.latestCheckpoint();
  if (ck) {
    const c = run.loadCheckpoint(ck)!;
    assert.equal(JSON.parse(c.files['state.json'].toString()).step, ck.step);
    assert.equal(c.files['weights.bin'].length, 1 << 21);
    assert.ok(
      c.files['weights.bin'].every((b) => b === ck.step % 251),
      `checkpoint ${ck.step} content`,
    );
    assert.ok(rows.length - 1 >= ck.step, 'the rows of a checkpointed step were written before it');
  }
  return { rows: rows.length, ckpt: ck?.step };
}

test('SIGKILL in the middle of writing: every state is readable, and resuming ends exactly like an uninterrupted run', async (t) => {
  const dir = tmpRoot();
  const script = path.join(dir, 'child.mjs');
  fs.writeFileSync(script, CHILD);
  const stopAt = 300;
  const expectRow = (k: number) => ({
    step: k,
    tokens: k * 128,
    flops: k * 1e6,
    seconds: k / 100,
    trainLoss: 5 - k / 100,
    valLoss: k % 2 ? null : 5 - k / 90,
    lr: 1e-3,
    pad: 'x'.repeat(300),
  });

  // reference: one uninterrupted run
  const refRoot = path.join(dir, 'ref');
  const ref = await runChild(script, refRoot, stopAt);
  assert.equal(ref.code, 0, ref.err);
  const refStore = new RunStore(refRoot);
  const [refId] = refStore.ids();
  assert.equal(checkConsistent(refStore, refId, expectRow).rows, stopAt + 1);

  // the same run killed again and again, then finished
  const root = path.join(dir, 'crashy');
  const store = new RunStore(root, { keepCheckpoints: 2 });
  let killed = 0;
  let torn = 0;
  let leftovers = 0;
  for (const ms of [2, 7, 15, 25, 40, 60, 90]) {
    const r = await runChild(script, root, stopAt, ms);
    if (r.signal === 'SIGKILL') killed++;
    else assert.equal(r.code, 0, r.err);
    const id = store.ids()[0];
    const { rows, ckpt } = checkConsistent(store, id, expectRow);
    // a child killed before its first row (a loaded machine, 2 ms) has no metrics file yet: no rows, as read above
    const metricsPath = path.join(root, id, METRICS_FILE);
    const text = fs.existsSync(metricsPath) ? fs.readFileSync(metricsPath, 'utf8') : '';
    if (text.length && !text.endsWith('\n')) torn++;
    if (fs.readdirSync(path.join(root, id)).some((e) => /\.(tmp|old|del)$|\.tmp-/.test(e))) leftovers++;
    if (r.signal === 'SIGKILL') assert.ok(store.list()[0].interrupted, 'a killed run is reported as interrupted');
    t.diagnostic(`kill after ${ms} ms: ${r.signal ?? 'exit ' + r.code}, rows ${rows}, latest checkpoint ${ckpt}`);
  }
  t.diagnostic(`${killed} kills, ${torn} torn metric tails, ${leftovers} with crash leftovers (before repair)`);
  assert.ok(killed >= 3, `expected most children to be killed mid-run, got ${killed}`);
  const fin = await runChild(script, root, stopAt);
  assert.equal(fin.code, 0, fin.err);
  const id = store.ids()[0];
  assert.equal(id, refId);
  const run = store.get(id)!;
  assert.equal(run.isDone(), true);
  assert.deepEqual(
    fs.readFileSync(run.metricsFile, 'utf8'),
    fs.readFileSync(path.join(refRoot, refId, METRICS_FILE), 'utf8'),
    "the resumed run's metrics.jsonl is byte-identical to the uninterrupted one",
  );
  assert.deepEqual(
    run.checkpoints().map((c) => c.step),
    [295, 300],
  );
  assert.deepEqual(fs.readdirSync(run.dir).sort(), ['ckpt-295', 'ckpt-300', METRICS_FILE, 'spec.json', 'status.json']);
});
