/**
 * Anchors and the speedrun CEG view (src/ceg/anchors.ts, src/ceg/speedrun.ts): parsing the
 * committed CSVs, the classification of records, the exact time = tokens x speed split, and
 * relative-to-reference interpolation, against hand-computed answers.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { projectPath } from '../src/paths.js';
import { analyzeSpeedrun, parseSpeedrunCsv, type SpeedrunRecord } from '../src/ceg/speedrun.js';
import {
  GUNDLACH_PAIRS,
  lowerEnvelope,
  paperAnchors,
  parseGundlachCsv,
  relativeToReference,
} from '../src/ceg/anchors.js';
import { getPlan } from '../src/plans.js';

const rec = (
  record: number,
  minutes: number,
  trainTokens: number | null,
  note = '',
  finalStep: number | null = null,
): SpeedrunRecord => ({
  record,
  date: '',
  minutes,
  finalStep,
  tokensPerStep: null,
  trainTokens,
  finalValLoss: null,
  description: `r${record}`,
  note,
});

test('speedrun: kinds, gains and the exact split on a hand-made history', () => {
  const a = analyzeSpeedrun([
    rec(1, 40, 1000),
    rec(2, 20, 500), // half the tokens, half the time: algorithm, speed gain 1
    rec(3, 10, 500), // same tokens, half the time: system
    rec(3, 11, 500, 'retiming only'), // excluded
    rec(4, 8, null, '', 300), // tokens unknown (steps only)
    rec(5, 6, 600), // previous unknown -> unknown-tokens
    rec(6, 5, 660), // more tokens, less time
  ]);
  const k = a.steps.map((s) => s.kind);
  assert.deepEqual(k, ['first', 'algorithm', 'system', 'retiming', 'unknown-tokens', 'unknown-tokens', 'more-tokens']);
  const s2 = a.steps[1];
  assert.equal(s2.timeGain, 2);
  assert.equal(s2.tokenGain, 2);
  assert.equal(s2.speedGain, 1);
  const s3 = a.steps[2];
  assert.equal(s3.tokenGain, 1);
  assert.equal(s3.speedGain, 2);
  assert.equal(a.steps[3].timeGain, null, 're-timings carry no gain');
  const s6 = a.steps[6];
  assert.ok(Math.abs(s6.tokenGain! - 600 / 660) < 1e-12);
  assert.ok(Math.abs(s6.timeGain! * (1 / s6.tokenGain!) - s6.speedGain!) < 1e-12);
  assert.equal(s6.cumulativeTimeGain, 8);
  assert.ok(Math.abs(s6.cumulativeTokenGain! - 1000 / 660) < 1e-12);
  assert.equal(a.split.rows, 7);
  assert.equal(a.split.records, 6);
  assert.equal(a.split.retimings, 1);
  assert.equal(a.split.unknownTokens, 1);
  assert.equal(a.split.stepsWithoutTokens, 1);
  // chained pairs: (1,2), (2,3), (5,6): time 2*2*1.2, tokens 2*1*(600/660)
  assert.equal(a.split.chained.pairs, 3);
  assert.ok(Math.abs(a.split.chained.timeGain - 4.8) < 1e-12);
  assert.ok(Math.abs(a.split.chained.tokenGain - 2 * (600 / 660)) < 1e-12);
  assert.ok(Math.abs(a.split.chained.tokenGain * a.split.chained.speedGain - a.split.chained.timeGain) < 1e-12);
  assert.ok(Math.abs(a.split.chained.algorithmShare - Math.log(2 * (600 / 660)) / Math.log(4.8)) < 1e-12);
  assert.equal(a.split.totalTimeGain, 8);
  assert.equal(a.split.lastWithTokens!.record, 6);
});

test('speedrun: the tolerance decides "same tokens"', () => {
  const h = [rec(1, 10, 1000), rec(2, 9, 996)];
  assert.equal(analyzeSpeedrun(h).steps[1].kind, 'system', '0.4% fewer tokens is within the default 0.5%');
  assert.equal(analyzeSpeedrun(h, { tolerance: 0.001 }).steps[1].kind, 'algorithm');
  assert.throws(() => analyzeSpeedrun(h, { tolerance: -1 }), /tolerance/);
  assert.throws(() => analyzeSpeedrun([rec(1, 0, 10)]), /minutes 0/);
});

test('speedrun: the committed records parse, and the split adds up', () => {
  const recs = parseSpeedrunCsv(fs.readFileSync(projectPath('data/anchors/modded-nanogpt-track1-records.csv'), 'utf8'));
  assert.equal(recs.length, 91, '89 records and 2 re-timings of record 21');
  assert.equal(recs[0].trainTokens, 10255073280);
  assert.equal(recs[0].minutes, 45);
  assert.equal(recs[2].trainTokens, null, 'record 3 has no log tokens');
  const a = analyzeSpeedrun(recs);
  assert.equal(a.split.records, 89);
  assert.equal(a.split.retimings, 2);
  const counted = Object.values(a.split.byKind).reduce((x, y) => x + y, 0);
  assert.equal(counted, 91);
  assert.ok(Math.abs(a.split.totalTimeGain - 45 / 1.23) < 1e-9);
  // record 2 halved the tokens of record 1 (10.26 B -> 5.00 B) and cut time 45 -> 31.4
  assert.equal(a.steps[1].kind, 'algorithm');
  assert.ok(Math.abs(a.steps[1].tokenGain! - 10255073280 / 4999610368) < 1e-12);
  // records 6 and 7 kept 5100 steps of 2^19 tokens: system only
  assert.equal(a.steps.find((s) => s.record === 6)!.kind, 'system');
  assert.equal(a.steps.find((s) => s.record === 7)!.kind, 'system');
  assert.throws(() => parseSpeedrunCsv('record,date\n1,x\n'), /no column "minutes"/);
});

test('gundlach: the committed points parse; pairs map to comparisons the CPU plan makes', () => {
  const pts = parseGundlachCsv(fs.readFileSync(projectPath('data/anchors/gundlach-scaling-final-points.csv'), 'utf8'));
  assert.ok(pts.length >= 60);
  const first = pts[0];
  assert.deepEqual(first, { series: 'x2_modern', hiddenDim: 32, loss: 5.5815, flops: 6.66e14, tokens: 67665920 });
  const nan = pts.filter((p) => Number.isNaN(p.loss));
  assert.equal(nan.length, 1, 'one run logged nan');
  assert.ok(!lowerEnvelope(pts.filter((p) => p.series === nan[0].series)).some((p) => Number.isNaN(p.loss)));
  const comps = getPlan('cpu').comparisons;
  for (const p of GUNDLACH_PAIRS)
    for (const dir of [p.ours.add, p.ours.remove])
      if (dir)
        assert.ok(
          comps.some((c) => c.variant === dir.variant && c.reference === dir.reference),
          `${dir.variant} vs ${dir.reference} is a comparison of the cpu plan`,
        );
  assert.deepEqual(
    GUNDLACH_PAIRS.map((p) => p.ceg),
    [1.87, 1.26, 1.17, 1.09],
  );
  const paper = paperAnchors();
  const ln = paper.find((r) => r.innovation === 'layernorm')!;
  assert.equal(ln.compact, 1.836);
  assert.equal(ln.full, 1.421);
  assert.equal(ln.category, 'compute-independent');
  assert.equal(paper.find((r) => r.innovation === 'mqa')!.compact, null);
});

test('relativeToReference: interpolation in log C on the reference envelope, nothing outside', () => {
  const ref = [
    { flops: 1e10, loss: 4 },
    { flops: 1e12, loss: 2 },
    { flops: 1e11, loss: 3 },
    { flops: 5e11, loss: 3.5 },
  ];
  assert.deepEqual(
    lowerEnvelope(ref).map((p) => p.flops),
    [1e10, 1e11, 1e12],
    'the over-trained 5e11 point is not on the frontier',
  );
  const r = relativeToReference(
    [
      { flops: Math.sqrt(1e10 * 1e11), loss: 3.5 },
      { flops: 1e11, loss: 1.5 },
      { flops: 1e9, loss: 1 },
      { flops: 2e12, loss: 1 },
    ],
    ref,
  );
  assert.ok(Math.abs(r[0]! - 1) < 1e-12, 'half-way in log C: reference loss 3.5');
  assert.equal(r[1], 0.5);
  assert.equal(r[2], null);
  assert.equal(r[3], null);
  assert.throws(() => relativeToReference([], [{ flops: 1, loss: 1 }]), /at least 2/);
});

test('speedrun text: every number in the sentences is the analysis value', async () => {
  const { speedrunCoverage, speedrunSplitText, speedrunFigure } = await import('../src/report/wild.js');
  const a = analyzeSpeedrun([
    rec(1, 40, 1000),
    rec(2, 20, 500),
    rec(3, 10, 500),
    rec(3, 11, 500, 'retiming only'),
    rec(4, 8, null, '', 300),
  ]);
  const cov = speedrunCoverage(a);
  assert.match(cov, /5 rows: 4 records and 1 re-timing /);
  assert.match(cov, /3 records have their training tokens in their log; 1 do not \(1 of them give steps/);
  assert.match(cov, /2 such consecutive pairs; 1 records have no token comparison/);
  const split = speedrunSplitText(a);
  assert.match(split, /time to the target fell 5\.00x/);
  assert.match(split, /time gain 4\.00x = token gain 2\.00x .* speed gain 2\.00x .* share of the log time gain is 50%/);
  assert.match(split, /1 needed fewer tokens, 1 the same tokens in less time, 0 more tokens/);
  const f = speedrunFigure(a);
  const tok = f.data.find((t) => String(t.name).startsWith('cumulative token'))!;
  assert.deepEqual(tok.x, [1, 2, 3], 'records without tokens and re-timings are not on the token line');
});
