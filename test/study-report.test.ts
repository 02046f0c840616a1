/**
 * The study's summary (json/csv/md of `ceg report --study`) and figures, on a synthetic study
 * with known answers (test/study-synthetic.ts): a compute-independent innovation (CEG 2), a
 * placebo (CEG 1), Gundlach's pair directions, LR sweep points with a known optimum.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { BASE_LAW, RUNG_PARAMS, synthRuns } from './study-synthetic.js';
import { getPlan, type StudyPlan } from '../src/plans.js';
import { analyzeStudyData, type StudyData } from '../src/report/study.js';
import { studyRows, studySummary, STUDY_ROW_COLUMNS } from '../src/report/study-summary.js';
import {
  anchorsFrontier,
  gundlachPairRows,
  lossVsLr,
  seedAveraged,
  studyCegVsCompute,
  studyFrontiers,
} from '../src/report/study-figures.js';
import { MAX_EXTRAPOLATION } from '../src/ceg/fit.js';
import { formatRows } from '../src/report/formats.js';
import type { GundlachPoint } from '../src/ceg/anchors.js';

const UNI = 4.0; // unigram entropy of the synthetic corpus: losses here are ~1.5-2.5, far from the plateau

function synthStudy(): StudyData {
  const base: StudyPlan = getPlan('cpu');
  const plan: StudyPlan = {
    ...base,
    name: 'synth',
    rungs: RUNG_PARAMS.map((_, i) => ({ name: `r${i}`, nLayer: 1, nHead: 1, nEmbd: 8, batchSize: 1 })),
    lrGrid: [1e-3, 3.16e-3, 1e-2],
    variants: [
      { id: 'baseline', seeds: 3 },
      { id: 'fused', seeds: 2 },
      { id: 'layernorm', seeds: 2 },
      { id: 'postln', seeds: 2 },
    ],
    comparisons: [
      { variant: 'fused', reference: 'baseline', kind: 'placebo' },
      { variant: 'layernorm', reference: 'baseline', kind: 'add' },
      { variant: 'postln', reference: 'baseline', kind: 'add' },
      { variant: 'layernorm', reference: 'postln', kind: 'add' },
    ],
  };
  const o = (noiseSeed: number, seeds: number[]) => ({ seeds, noiseSeed, runSigma: 0.002, pointSigma: 0.001 });
  const runs = [
    ...synthRuns('baseline', BASE_LAW, o(1, [1, 2, 3])),
    ...synthRuns('fused', BASE_LAW, o(2, [1, 2])),
    ...synthRuns('layernorm', { ...BASE_LAW, k: 2 }, o(3, [1, 2])),
    ...synthRuns('postln', { ...BASE_LAW, k: 1.25 }, o(4, [1, 2])),
  ].map((r) => ({ ...r, points: r.points.filter((p) => p.fork !== 'stale') }));
  // loss against LR: a parabola in log10 LR with its vertex at 10^-2.25 ≈ 5.6e-3 at r0 and r1
  const sweep = ['r0', 'r1'].flatMap((rung, i) =>
    plan.lrGrid.map((lr) => ({
      variant: 'baseline',
      rung,
      params: RUNG_PARAMS[i],
      lr,
      loss: 2 - 0.3 * i + 0.2 * (Math.log10(lr) + 2.25) ** 2,
    })),
  );
  const choices = [
    {
      variant: 'baseline',
      rung: 'r0',
      params: RUNG_PARAMS[0],
      lr: 3.16e-3,
      source: 'sweep' as const,
      lrStar: 10 ** -2.25,
      flag: null,
    },
    {
      variant: 'baseline',
      rung: 'r1',
      params: RUNG_PARAMS[1],
      lr: 3.16e-3,
      source: 'sweep' as const,
      lrStar: 10 ** -2.25,
      flag: null,
    },
    {
      variant: 'baseline',
      rung: 'r2',
      params: RUNG_PARAMS[2],
      lr: 2.2e-3,
      source: 'transfer' as const,
      lrStar: 2.2e-3,
      flag: null,
    },
  ];
  return {
    plan,
    lrs: { choices, lrOf: () => undefined, sweep, notes: [], pooled: null },
    provenance: { groups: [], resumedAcross: 0, unrecorded: 0, against: null },
    planned: [],
    done: runs.length,
    doneByRung: [],
    runs,
    unigram: UNI,
    escapes: [],
    spots: [
      { variant: 'baseline', rung: 'r2', lr: 2.2e-3, factor: 1, loss: 1.5 },
      { variant: 'baseline', rung: 'r2', lr: 6.96e-3, factor: Math.sqrt(10), loss: 1.6 },
    ],
  };
}

// the shared-E fits dominate the cost: one analysis for every test (20 bootstrap resamples)
const D = synthStudy();
const A = analyzeStudyData(D, { bootstrap: 20 });
const S = studySummary(D, A, { bootstrap: 20 });

test('study summary with a placebo per baseline: each baseline judged with its own band, reference pairs with the widest', () => {
  const d = synthStudy();
  d.plan = {
    ...d.plan,
    variants: [
      ...d.plan.variants,
      { id: 'baseline_fair', seeds: 3 },
      { id: 'fused_fair', seeds: 2 },
      { id: 'rope', seeds: 2 },
      { id: 'fa_rope_ln', seeds: 2 },
    ],
    comparisons: [
      ...d.plan.comparisons,
      { variant: 'fused_fair', reference: 'baseline_fair', kind: 'placebo' },
      { variant: 'layernorm', reference: 'baseline_fair', kind: 'add' },
    ],
  };
  // the fair pair is noisier (run sigma 0.03): its band is its own, and wider than the paper's baseline's
  const fair = { ...BASE_LAW, k: 1.5 };
  const noisy = (noiseSeed: number, seeds: number[]) => ({ seeds, noiseSeed, runSigma: 0.03, pointSigma: 0.001 });
  const quiet = (noiseSeed: number, seeds: number[]) => ({ seeds, noiseSeed, runSigma: 0.002, pointSigma: 0.001 });
  d.runs = [
    ...d.runs,
    ...synthRuns('baseline_fair', fair, noisy(5, [1, 2, 3])),
    ...synthRuns('fused_fair', fair, noisy(6, [1, 2])),
    // a combination of parts on the paper's baseline: fused (1) x rope (1.5) x layernorm (2)
    ...synthRuns('rope', { ...BASE_LAW, k: 1.5 }, quiet(7, [1, 2])),
    ...synthRuns('fa_rope_ln', { ...BASE_LAW, k: 3 }, quiet(8, [1, 2])),
  ].map((r) => ({ ...r, points: r.points.filter((p) => p.fork !== 'stale') }));
  const s = studySummary(d, analyzeStudyData(d, { bootstrap: 10 }), { bootstrap: 10 });
  const nf = new Map(s.noiseFloors.map((n) => [n.reference, n]));
  assert.equal(nf.get('baseline')!.placebo, 'fused');
  assert.equal(nf.get('baseline')!.measuredAgainst, 'baseline');
  assert.equal(nf.get('baseline_fair')!.placebo, 'fused_fair');
  assert.equal(nf.get('baseline_fair')!.measuredAgainst, 'baseline_fair');
  const wide = nf.get('baseline_fair')!.slopeFloor!;
  assert.ok(wide > nf.get('baseline')!.slopeFloor!, `fair band ${wide} vs ${nf.get('baseline')!.slopeFloor}`);
  const cmp = (v: string, r: string) => s.comparisons.find((c) => c.variant === v && c.reference === r)!;
  assert.equal(cmp('layernorm', 'baseline').flatBand, nf.get('baseline')!.slopeFloor);
  assert.equal(cmp('layernorm', 'baseline_fair').flatBand, wide);
  assert.equal(cmp('layernorm', 'postln').flatBand, wide, 'a reference pair gets the widest measured band');
  assert.equal(cmp('fused_fair', 'baseline_fair').kind, 'placebo');
  assert.ok(!s.comparisons.some((c) => c.variant === 'fused' && c.reference === 'baseline_fair'));
  assert.ok(!s.comparisons.some((c) => c.variant === 'fused_fair' && c.reference === 'baseline'));
  // fused_fair is built from parts (the fair baseline + the fused kernel) but is no combination to check;
  // fa_rope_ln's parts change the paper's baseline, so it is checked against that one only (against the
  // fair baseline each part's CEG would carry the change of initialisation once more)
  assert.deepEqual(
    s.combinations.map((c) => [c.combination, c.reference]),
    [['fa_rope_ln', 'baseline']],
  );
  const ratio = s.combinations[0].points.at(-1)!.ratio;
  assert.ok(Math.abs(Math.log(ratio)) < Math.log(1.3), `independent parts multiply: ratio ${ratio}`);
  assert.doesNotMatch(s.notes.join(' '), /combination/);
  // the csv/md rows carry the band each verdict used
  const rows = studyRows(s);
  const row = (v: string, r: string) => rows.find((x) => x.variant === v && x.reference === r)!;
  assert.equal(row('layernorm', 'baseline_fair').noise_floor, wide);
  assert.equal(row('layernorm', 'postln').noise_floor, wide);
  assert.equal(row('layernorm', 'baseline').noise_floor, nf.get('baseline')!.slopeFloor);
});

test('study summary: CEG 2 recovered with intervals, both slopes, seeds, verdicts, noise floor, pairs', () => {
  const a = A;
  assert.ok(a);
  const s = S;
  assert.equal(s.plan, 'synth');
  const ln = s.comparisons.find((c) => c.variant === 'layernorm' && c.reference === 'baseline')!;
  assert.deepEqual(ln.seeds, { reference: 3, variant: 2 });
  const withCeg = ln.points.filter((p) => p.ceg !== null);
  assert.ok(withCeg.length >= 6, `${withCeg.length} points with a CEG`);
  for (const p of withCeg) {
    assert.ok(Math.abs(p.ceg! / 2 - 1) < 0.08, `CEG ${p.ceg} at ${p.rung} ${p.fork} is about 2`);
    assert.ok(p.interval && p.interval.lo < p.ceg! && p.ceg! < p.interval.hi);
    assert.deepEqual(p.interval.nSeeds, { baseline: 3, layernorm: 2 });
  }
  assert.ok(ln.frontierSlope && Math.abs(ln.frontierSlope.slope) < 0.05);
  assert.ok(ln.sharedESlope && Math.abs(ln.sharedESlope.slope) < 0.05);
  assert.equal(ln.frontierSlope.interval?.method, 'welch-t');
  assert.equal(ln.sharedESlope.interval?.method, 'bootstrap');
  assert.notEqual(ln.verdict, 'compute-dependent');
  const nf = s.noiseFloors.find((n) => n.reference === 'baseline')!;
  assert.equal(nf.placebo, 'fused');
  assert.ok(nf.slopeFloor !== null && nf.slopeFloor >= 0.05);
  // the reference pair layernorm vs postln: true CEG 2/1.25 = 1.6
  const pair = s.comparisons.find((c) => c.variant === 'layernorm' && c.reference === 'postln')!;
  assert.equal(pair.kind, 'add');
  for (const p of pair.points.filter((x) => x.ceg !== null))
    assert.ok(Math.abs(p.ceg! / 1.6 - 1) < 0.1, `pair CEG ${p.ceg}`);
  assert.deepEqual(
    s.comparisons.map((c) => `${c.variant}/${c.reference}/${c.kind}`).sort(),
    ['fused/baseline/placebo', 'layernorm/baseline/add', 'layernorm/postln/add', 'postln/baseline/add'],
    "the plan's comparisons, each once",
  );
  assert.equal(s.anchors.gundlach.length, 4);
  assert.ok(s.anchors.paper.some((r) => r.innovation === 'layernorm'));
  // csv rows: one per (comparison, point), the comparison's numbers repeated on each
  const rows = studyRows(s);
  assert.equal(rows.filter((r) => r.variant === 'layernorm' && r.reference === 'baseline').length, ln.points.length);
  const r0 = rows.find((r) => r.variant === 'layernorm' && r.reference === 'baseline' && r.ceg !== null)!;
  assert.equal(r0.slope_frontier, ln.frontierSlope.slope);
  assert.equal(r0.seeds_reference, 3);
  assert.equal(r0.noise_floor, nf.slopeFloor);
  const csv = formatRows(rows, STUDY_ROW_COLUMNS, 'csv').split('\n');
  assert.equal(csv[0], STUDY_ROW_COLUMNS.join(','));
  assert.equal(csv.length - 2, rows.length);
  // JSON round trip keeps the shape
  const back = JSON.parse(JSON.stringify(s, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)));
  assert.equal(back.comparisons.length, s.comparisons.length);
  // Gundlach's pre-LN pair: ours "add" is layernorm vs postln at its largest-compute point with a CEG
  const g = gundlachPairRows(s).find((r) => r.pair === 'post-LN → pre-LN')!;
  assert.equal(g.gundlach, 1.87);
  assert.ok(g.add && Math.abs(g.add.ceg / 1.6 - 1) < 0.1);
  assert.equal(g.add.at, Math.max(...pair.points.filter((x) => x.ceg !== null).map((x) => x.flops)));
  assert.equal(g.remove, null, 'no modern stack in this study');
});

test('study figures: CEG curve never beyond half a decade; error bars are the intervals; plateau points hollow', () => {
  const d = D;
  const b = A!.baselines.find((x) => x.baseline === 'baseline')!;
  const fig = studyCegVsCompute(b, ['layernorm', 'fused']);
  const v = b.variants.find((x) => x.variant === 'layernorm')!;
  const [lo, hi] = v.parametric!.range;
  const curves = fig.data.filter((t) => t.mode === 'lines' && String(t.name).startsWith('LayerNorm'));
  assert.ok(curves.length >= 2, `solid inside and dashed outside: ${curves.length} curves`);
  for (const t of curves)
    for (const x of t.x as number[])
      assert.ok(
        x >= (lo / MAX_EXTRAPOLATION) * 0.999 && x <= hi * MAX_EXTRAPOLATION * 1.001,
        `curve at ${x} within half a decade of [${lo}, ${hi}]`,
      );
  const dots = fig.data.find((t) => t.mode === 'markers' && t.name === 'LayerNorm (LN)')!;
  const pts = v.frontier.points.filter((p) => p.ceg !== null);
  const ey = dots.error_y as { array: number[]; arrayminus: number[] };
  assert.ok(pts.filter((p) => Number.isFinite(p.interval!.hi)).length >= 6, 'most points have a bounded interval');
  pts.forEach((p, i) => {
    // an unbounded side (a point that rests on one seed of a group) gets no bar; a lower end of 0 is unbounded (log axis)
    const up = Number.isFinite(p.interval!.hi) ? p.interval!.hi - p.ceg! : 0;
    const down = Number.isFinite(p.interval!.lo) && p.interval!.lo > 0 ? p.ceg! - p.interval!.lo : 0;
    assert.ok(Math.abs(ey.array[i] - up) < 1e-12, `upper bar ${i}: ${ey.array[i]} vs ${up}`);
    assert.ok(Math.abs(ey.arrayminus[i] - down) < 1e-12, `lower bar ${i}`);
  });
  // frontiers: a point at the plateau is hollow, the others filled
  const dp: StudyData = { ...d, runs: [] };
  dp.runs = d.runs.map((r) =>
    r.variant === 'baseline' && r.rung === 'r0'
      ? { ...r, points: r.points.map((p) => ({ ...p, loss: UNI - 0.1 })) }
      : r,
  );
  const ff = studyFrontiers(dp, ['baseline', 'layernorm']);
  const bm = ff.data.find((t) => t.mode === 'markers' && t.name === 'Baseline')!;
  const sym = (bm.marker as { symbol: string[] }).symbol;
  const avg = seedAveraged(dp.runs, 'baseline');
  avg.forEach((p, i) => assert.equal(sym[i], p.loss >= UNI - 0.3 ? 'circle-open' : 'circle'));
  assert.equal(sym.filter((s) => s === 'circle-open').length, 3, 'the three forks of r0');
  const line = ff.data.find((t) => t.mode === 'lines' && t.name === 'Baseline')!;
  assert.ok(
    (line.y as number[]).every((y) => y < UNI - 0.3),
    'plateau points are not on the frontier line',
  );
  assert.ok(
    (line.y as number[]).length >= avg.filter((p) => p.loss < UNI - 0.3).length - 2,
    'the other points are (nearly all) on it',
  );
});

test('loss-vs-LR figure: the chosen LR starred, LR* dotted, the transferred LR dashed with its spot check', () => {
  const d = synthStudy();
  const f = lossVsLr(d, 'baseline');
  const stars = f.data.filter(
    (t) => (t.marker as { symbol?: string } | undefined)?.symbol === 'star' && (t.x as unknown[])[0] !== null,
  );
  assert.equal(stars.length, 2);
  for (const s of stars) assert.equal((s.x as number[])[0], 3.16e-3);
  const shapes = f.layout.shapes as { x0: number; line: { dash: string } }[];
  assert.equal(shapes.filter((s) => s.line.dash === 'dot' && Math.abs(s.x0 - 10 ** -2.25) < 1e-12).length, 2);
  assert.ok(shapes.some((s) => s.line.dash === 'dash' && s.x0 === 2.2e-3));
  assert.ok(f.data.some((t) => String(t.name).includes('spot check') && (t.x as number[]).length === 2));
  assert.throws(() => lossVsLr(d, 'rope'), /no sweep points/);
});

test('anchors figure: each study relative to its own reference, nothing outside the reference range', () => {
  const d = synthStudy();
  const g: GundlachPoint[] = [1e15, 1e16, 1e17].flatMap((C, i) => [
    { series: 'x1_historical', hiddenDim: 32 * (i + 1), loss: 5 - i, flops: C, tokens: 1 },
    { series: 'x2_modern', hiddenDim: 32 * (i + 1), loss: (5 - i) * 0.9, flops: C, tokens: 1 },
    { series: 'x2_modern', hiddenDim: 999, loss: 1, flops: 1e18, tokens: 1 }, // beyond their reference: dropped
  ]);
  const f = anchorsFrontier(d, g, ['layernorm']);
  const modern = f.data.find((t) => String(t.name).startsWith('Gundlach: modern'))!;
  assert.deepEqual(modern.x, [1e15, 1e16, 1e17]);
  for (const y of modern.y as number[]) assert.ok(Math.abs(y - 0.9) < 1e-12);
  const ours = f.data.find((t) => t.name === 'ours: LayerNorm (LN)')!;
  for (const y of ours.y as number[])
    assert.ok(y < 1, 'a CEG-2 variant has lower loss than the baseline at equal compute');
  const hist = f.data.find((t) => String(t.name).startsWith('Gundlach: 2017 transformer'))!;
  for (const y of hist.y as number[]) assert.equal(y, 1);
});

test("paper vs study: the paper's numbers beside our top-compute CEG and verdict per baseline", async () => {
  const { paperVsStudy } = await import('../src/report/study-summary.js');
  const rows = paperVsStudy(S);
  const ln = rows.find((r) => r.innovation === 'layernorm')!;
  assert.equal(ln.paperCompact, 1.836);
  assert.equal(ln.paperFull, 1.421);
  const ours = ln.ours.find((o) => o.reference === 'baseline')!;
  const c = S.comparisons.find((x) => x.variant === 'layernorm' && x.reference === 'baseline')!;
  const top = c.points.filter((p) => p.ceg !== null).sort((a, b) => b.flops - a.flops)[0];
  assert.equal(ours.ceg, top.ceg);
  assert.equal(ours.flops, top.flops);
  assert.equal(ours.verdict, c.verdict);
  const rope = rows.find((r) => r.innovation === 'rope')!;
  assert.equal(rope.ours[0].ceg, null, 'not in this study');
  assert.ok(!rows.some((r) => r.innovation === 'baseline'));
});

test('README sections: the study table, placebo and calls against the paper come from the summary; splice keeps the rest', async () => {
  const { studyReadme, microReadme, spliceReadme, readmeBegin, readmeEnd } = await import(
    '../src/report/study-readme.js'
  );
  const md = studyReadme(D, S);
  const ln = S.comparisons.find((c) => c.variant === 'layernorm' && c.reference === 'baseline')!;
  const top = ln.points
    .filter((p) => p.ceg !== null)
    .sort((a, b) => a.flops - b.flops)
    .at(-1)!;
  const row = md.split('\n').find((l) => l.startsWith("| LayerNorm (LN) | paper's baseline |"));
  assert.ok(row, md);
  assert.ok(row.includes(`| 3/2 |`), row);
  const x2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : v > 0 ? '∞' : '−∞');
  assert.ok(row.includes(`${x2(top.ceg!)} [${x2(top.interval!.lo)}, ${x2(top.interval!.hi)}]`), row);
  assert.ok(row.includes(`| ${ln.verdict} |`), row);
  assert.match(md, /\*\*Placebo against the paper's baseline\*\*/);
  // the call follows the verdict: flip it and LayerNorm (compute-independent in the paper) moves to "Disagree"
  const call = (text: string, what: string) => text.split('\n').find((l) => l.startsWith(`- **${what}**`)) ?? '';
  const flipped = {
    ...S,
    comparisons: S.comparisons.map((c) =>
      c === ln ? { ...c, verdict: 'compute-dependent' as const, direction: 'falling' as const } : c,
    ),
  };
  assert.match(
    call(studyReadme(D, flipped), 'Disagree'),
    /LayerNorm \(LN\) \(paper: compute-independent; ours: compute-dependent, falling/,
  );
  assert.doesNotMatch(call(studyReadme(D, flipped), 'Agree'), /LayerNorm/);
  const undecided = {
    ...S,
    comparisons: S.comparisons.map((c) => (c === ln ? { ...c, verdict: 'inconclusive' as const } : c)),
  };
  assert.match(call(studyReadme(D, undecided), 'Cannot be decided at this scale'), /LayerNorm/);

  const doc = `# T\n${readmeBegin('results')}\nold\n${readmeEnd('results')}\ntail\n`;
  assert.equal(
    spliceReadme(doc, 'results', '\nnew\n'),
    `# T\n${readmeBegin('results')}\nnew\n${readmeEnd('results')}\ntail\n`,
  );
  assert.throws(() => spliceReadme(doc, 'micro', 'x'), /markers .* missing/);

  // the micro table: our CEG with its interval and the paper's numbers from the CEG table
  const { cegTable } = await import('../src/ceg/tables.js');
  const mk = (innovation: string, seed: number, speed: number) => ({
    innovation,
    seed,
    scale: 'micro',
    metrics: Array.from({ length: 21 }, (_, i) => {
      const valLoss = 2 + 8 / Math.sqrt(1 + i * speed) + 0.001 * ((seed * 7 + i) % 3);
      return {
        step: 20 * i,
        tokens: 20 * i * 2048,
        flops: 20 * i * 1e9,
        seconds: 2 * i,
        trainLoss: valLoss,
        valLoss,
        lr: 1e-3,
      };
    }),
  });
  const t = cegTable(
    [1, 2, 3].flatMap((s) => [mk('baseline', s, 1), mk('rope', s, 2)]),
    { scale: 'micro' },
  );
  const rope = t.rows.find((r) => r.innovation === 'rope')!;
  const micro = microReadme(t, 6);
  const line = micro.split('\n').find((l) => l.startsWith('| Rotary embeddings (RoPE) |'))!;
  assert.ok(line.includes(`${rope.ceg.flops!.ceg!.toFixed(2)} [`), line);
  assert.ok(line.includes('| 1.87 / 1.35 |'), line); // the paper's compact / full RoPE CEGs (src/ceg/published.ts)
});
