/**
 * Integrity of what the run store holds (issue #10, "Damage is reported as success"): a
 * damaged done run is never served as cached, a corrupt checkpoint is never restored, damaged
 * spec/status files are reported per run instead of breaking the store, and check/repair
 * finds every kind of damage without touching healthy runs. Every recovery must end with the
 * metrics of an uninterrupted run (training is deterministic with explicit seeds).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RunStore, checkStore, checkRun, repairRun, isVerifiedDone, type MetricRow } from '../src/runs/index.js';
import { trainRun } from '../src/train/trainer.js';
import { runSpec } from '../src/train/sweep.js';
import { loadReportData } from '../src/report/from-runs.js';

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `ceg-integrity-${name}-`));
const strip = (rows: MetricRow[]) => rows.map(({ seconds: _s, ...r }) => r);

const spec = runSpec('baseline', 'smoke', 7, 'wasm');
let golden: { root: string; id: string; metrics: MetricRow[] };

before(async () => {
  const root = tmp('golden');
  const r = await trainRun(spec, new RunStore(root), { onNotice: () => {} });
  golden = { root, id: r.run.id, metrics: r.metrics };
});

/** A fresh store holding a copy of the finished golden run. */
function copyOfGolden(name: string): { store: RunStore; dir: string } {
  const root = tmp(name);
  fs.cpSync(path.join(golden.root, golden.id), path.join(root, golden.id), { recursive: true });
  return { store: new RunStore(root), dir: path.join(root, golden.id) };
}

function setState(dir: string, state: string): void {
  const f = path.join(dir, 'status.json');
  const s = JSON.parse(fs.readFileSync(f, 'utf8'));
  s.state = state;
  delete s.metricsSeal;
  fs.writeFileSync(f, JSON.stringify(s));
}

/** Drop the seal from the status next to metrics file `f`, as in runs finished before seals existed. */
function unseal(f: string): void {
  const sf = path.join(path.dirname(f), 'status.json');
  const s = JSON.parse(fs.readFileSync(sf, 'utf8'));
  delete s.metricsSeal;
  fs.writeFileSync(sf, JSON.stringify(s));
}

function flipBit(file: string, byte: number, bit = 0): void {
  const b = fs.readFileSync(file);
  b[byte] ^= 1 << bit;
  fs.writeFileSync(file, b);
}

async function retrain(store: RunStore): Promise<{ cached: boolean; metrics: MetricRow[]; notices: string[] }> {
  const notices: string[] = [];
  const r = await trainRun(spec, store, { onNotice: (m) => notices.push(m) });
  return { cached: r.cached, metrics: r.metrics, notices };
}

test('the golden run is done, sealed and verified; its checkpoints carry sha256 checksums', () => {
  const { store, dir } = copyOfGolden('seal');
  const st = JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8'));
  assert.equal(st.state, 'done');
  assert.equal(st.metricsSeal.lastStep, spec.train.steps);
  assert.equal(st.metricsSeal.rows, golden.metrics.length);
  const ckpts = fs.readdirSync(dir).filter((e) => /^ckpt-\d+$/.test(e));
  assert.deepEqual(ckpts.sort(), ['ckpt-12', 'ckpt-8']);
  for (const c of ckpts) {
    const m = JSON.parse(fs.readFileSync(path.join(dir, c, 'checkpoint.json'), 'utf8'));
    assert.match(m.sha256['tensors.bin'], /^[0-9a-f]{64}$/);
    assert.match(m.sha256['state.json'], /^[0-9a-f]{64}$/);
  }
  assert.equal(isVerifiedDone(store, golden.id), true);
  assert.deepEqual(
    checkStore(store).flatMap((c) => c.problems),
    [],
  );
});

test('a flipped bit in the newest checkpoint is detected on resume: quarantined, previous checkpoint used, same numbers', async () => {
  const { store, dir } = copyOfGolden('flip');
  setState(dir, 'running'); // killed after the final checkpoint, before done
  flipBit(path.join(dir, 'ckpt-12', 'tensors.bin'), 1234, 3);
  const r = await retrain(store);
  assert.equal(r.cached, false);
  assert.ok(
    r.notices.some(
      (n) => /ckpt-12 is corrupt \(tensors\.bin does not match its sha256/.test(n) && /falling back to ckpt-8/.test(n),
    ),
    r.notices.join('\n'),
  );
  assert.deepEqual(strip(r.metrics), strip(golden.metrics));
  assert.ok(
    fs.readdirSync(path.join(dir, 'quarantine')).some((e) => e.startsWith('ckpt-12.')),
    'the corrupt checkpoint is kept for inspection',
  );
  assert.equal(isVerifiedDone(store, golden.id), true);
});

test('every checkpoint corrupt (a flipped state byte, a missing tensor file): the run restarts from step 0, saying so, same numbers', async () => {
  const { store, dir } = copyOfGolden('allbad');
  setState(dir, 'failed');
  flipBit(path.join(dir, 'ckpt-12', 'state.json'), 10, 1);
  fs.rmSync(path.join(dir, 'ckpt-8', 'tensors.bin'));
  const r = await retrain(store);
  assert.ok(
    r.notices.some((n) => /ckpt-12 is corrupt .*state\.json/.test(n)),
    r.notices.join('\n'),
  );
  assert.ok(
    r.notices.some((n) => /ckpt-8 is corrupt \(tensors\.bin is missing\).*training from step 0/.test(n)),
    r.notices.join('\n'),
  );
  assert.deepEqual(strip(r.metrics), strip(golden.metrics));
});

test('a checkpoint whose size no longer matches (truncated) is never restored', async () => {
  const { store, dir } = copyOfGolden('trunc');
  setState(dir, 'running');
  const f = path.join(dir, 'ckpt-12', 'tensors.bin');
  fs.truncateSync(f, fs.statSync(f).size - 4);
  const r = await retrain(store);
  assert.ok(
    r.notices.some((n) => /ckpt-12 is corrupt \(tensors\.bin has \d+ bytes, the manifest says \d+\)/.test(n)),
    r.notices.join('\n'),
  );
  assert.deepEqual(strip(r.metrics), strip(golden.metrics));
});

/** Damage to a done run's metrics: [name, damage, expected problem]. */
const METRIC_DAMAGE: [string, (f: string) => void, RegExp][] = [
  ['deleted', (f) => fs.rmSync(f), /metrics\.jsonl: is missing, but the run is marked done/],
  ['emptied', (f) => fs.writeFileSync(f, ''), /metrics\.jsonl: is empty/],
  ['torn last line', (f) => fs.truncateSync(f, fs.statSync(f).size - 5), /metrics\.jsonl: ends in a torn line/],
  [
    'last row cut cleanly',
    (f) => fs.writeFileSync(f, fs.readFileSync(f, 'utf8').split('\n').slice(0, -2).join('\n') + '\n'),
    /changed since the run finished: 3 rows.*recorded 4 rows/,
  ],
  // runs finished before the seal existed (the committed study) are still checked structurally
  [
    'last row cut cleanly, no seal',
    (f) => {
      unseal(f);
      fs.writeFileSync(f, fs.readFileSync(f, 'utf8').split('\n').slice(0, -2).join('\n') + '\n');
    },
    /its last row is step 8, the run ends at step 12/,
  ],
  [
    'a middle row deleted, no seal',
    (f) => {
      unseal(f);
      const l = fs.readFileSync(f, 'utf8').split('\n');
      l.splice(1, 1);
      fs.writeFileSync(f, l.join('\n'));
    },
    /no evaluation row for step 4/,
  ],
  [
    'a middle row deleted',
    (f) => {
      const l = fs.readFileSync(f, 'utf8').split('\n');
      l.splice(1, 1);
      fs.writeFileSync(f, l.join('\n'));
    },
    /changed since the run finished/,
  ],
  [
    'a value edited',
    (f) =>
      fs.writeFileSync(
        f,
        fs
          .readFileSync(f, 'utf8')
          .replace(/"valLoss":(\d)\.(\d)/, (_m, a, b) => `"valLoss":${a}.${(Number(b) + 1) % 10}`),
      ),
    /changed since the run finished/,
  ],
  [
    'a corrupt middle line',
    (f) => {
      const l = fs.readFileSync(f, 'utf8').split('\n');
      l[2] = '{"step": 8, "valLo';
      fs.writeFileSync(f, l.join('\n'));
    },
    /has a corrupt line \(line 3/,
  ],
];

for (const [name, damage, problem] of METRIC_DAMAGE) {
  test(`a done run whose metrics were damaged (${name}) is listed as corrupt, never served as cached, and retrains to the same numbers`, async () => {
    const { store, dir } = copyOfGolden('metrics');
    damage(path.join(dir, 'metrics.jsonl'));
    const [s] = store.list();
    assert.equal(s.state, 'corrupt');
    assert.match(s.error!, problem);
    assert.equal(store.list({ state: 'done' }).length, 0, 'no table or figure sees it as done');
    assert.equal(isVerifiedDone(store, golden.id), false);
    const check = checkRun(store, golden.id);
    assert.match(check.problems.map((p) => `${p.file}: ${p.message}`).join('\n'), problem);
    const r = await retrain(store);
    assert.equal(r.cached, false);
    assert.ok(
      r.notices.some((n) => /is damaged: metrics\.jsonl/.test(n)),
      r.notices.join('\n'),
    );
    assert.deepEqual(strip(r.metrics), strip(golden.metrics));
    assert.equal((await retrain(store)).cached, true, 'verified again once retrained');
  });
}

test('garbage status.json and spec.json: the store lists that run as damaged (no exception), training repairs it to the same numbers', async () => {
  for (const [file, garbage] of [
    ['status.json', '{"state": "do'],
    ['spec.json', '\u0000\u0001garbage'],
    ['status.json', '{"state": "finished"}'],
  ] as const) {
    const { store, dir } = copyOfGolden('garbage');
    fs.writeFileSync(path.join(dir, file), garbage);
    const list = store.list();
    assert.equal(list.length, 1);
    assert.equal(list[0].state, 'corrupt');
    assert.match(list[0].error!, file === 'spec.json' ? /cannot parse .*spec\.json/ : /status\.json/);
    assert.deepEqual(store.find(), []);
    const r = await retrain(store);
    assert.ok(
      r.notices.some((n) => new RegExp(`is damaged: ${file.replace('.', '\\.')}`).test(n)),
      r.notices.join('\n'),
    );
    assert.deepEqual(strip(r.metrics), strip(golden.metrics));
    assert.equal(store.list()[0].state, 'done');
  }
});

test('check reports every damage kind by run; repair fixes each and leaves healthy runs byte-for-byte untouched', () => {
  const root = tmp('check');
  const store = new RunStore(root);
  const fakeIds = [
    '00000000000000a1',
    '00000000000000a2',
    '00000000000000a3',
    '00000000000000a4',
    '00000000000000a5',
    '00000000000000a6',
  ];
  const src = path.join(golden.root, golden.id);
  for (const id of [golden.id, ...fakeIds]) fs.cpSync(src, path.join(root, id), { recursive: true });
  const d = (id: string, ...p: string[]) => path.join(root, id, ...p);
  fs.writeFileSync(d(fakeIds[0], 'spec.json'), 'not json');
  fs.writeFileSync(d(fakeIds[1], 'status.json'), '');
  fs.truncateSync(d(fakeIds[2], 'metrics.jsonl'), 10);
  flipBit(d(fakeIds[3], 'ckpt-8', 'tensors.bin'), 7);
  fs.rmSync(d(fakeIds[4], 'ckpt-12', 'checkpoint.json'));
  fs.appendFileSync(
    d(fakeIds[5], 'metrics.jsonl'),
    '{"step": 13, "tokens": 1, "flops": 1, "seconds": 1, "trainLoss": null, "valLoss": 1, "lr": 0}\n',
  );
  const snapshot = (id: string) =>
    fs
      .readdirSync(d(id), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => {
        const f = path.join(e.parentPath, e.name);
        return [path.relative(d(id), f), fs.readFileSync(f).toString('base64'), fs.statSync(f).mtimeMs];
      })
      .sort();
  const healthyBefore = snapshot(golden.id);

  const checks = new Map(checkStore(store).map((c) => [c.id, c]));
  const probs = (id: string) =>
    checks
      .get(id)!
      .problems.map((p) => `${p.file}: ${p.message}`)
      .join('\n');
  assert.deepEqual(checks.get(golden.id)!.problems, []);
  assert.match(probs(fakeIds[0]), /spec\.json: is not valid JSON/);
  assert.match(probs(fakeIds[1]), /status\.json: is not valid JSON/);
  assert.match(probs(fakeIds[2]), /metrics\.jsonl: ends in a torn line/);
  assert.match(probs(fakeIds[3]), /ckpt-8: corrupt: tensors\.bin does not match its sha256/);
  assert.match(probs(fakeIds[4]), /ckpt-12: is a checkpoint folder without its manifest/);
  assert.match(probs(fakeIds[5]), /metrics\.jsonl: changed since the run finished/);

  // tables and figures leave the damaged runs out, and say so
  const report = loadReportData({ runs: root, scale: 'smoke', backend: 'wasm' });
  assert.ok(
    report.notes.some((n) => /^4 damaged run\(s\) left out \(/.test(n)),
    report.notes.join('\n'),
  );
  for (const r of report.data.runs) assert.equal(r.innovation, 'baseline');

  for (const c of checks.values()) repairRun(store, c);
  assert.deepEqual(snapshot(golden.id), healthyBefore, 'the healthy run is not touched');
  // the spec-less run is quarantined whole; the others are resumable or clean
  assert.ok(!fs.existsSync(d(fakeIds[0])));
  assert.ok(fs.readdirSync(path.join(root, 'quarantine')).some((e) => e.startsWith(fakeIds[0])));
  const after = new Map(checkStore(store).map((c) => [c.id, c]));
  assert.equal(after.has(fakeIds[0]), false);
  for (const [id, c] of after) assert.deepEqual(c.problems, [], `${id} still damaged: ${JSON.stringify(c.problems)}`);
  assert.equal(after.get(fakeIds[1])!.state, 'running');
  assert.equal(after.get(fakeIds[2])!.state, 'running');
  assert.equal(
    after.get(fakeIds[3])!.state,
    'done',
    'a done run with verified metrics stays done when only a checkpoint is bad',
  );
  assert.equal(after.get(fakeIds[5])!.state, 'running');
  assert.ok(
    !fs.existsSync(d(fakeIds[5], 'metrics.jsonl')),
    'metrics changed after the run finished are moved away, not trusted',
  );
});
