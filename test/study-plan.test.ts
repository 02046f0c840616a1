/**
 * Study plans (issue #13): the CPU plan's promises as data, the run list's structure (trunks
 * before forks, kept fork points, no duplicates, stages), the LR choice and transfer from a
 * store holding synthetic sweep results with a known optimum, and a tiny plan run end to end
 * (resumable: a second run trains nothing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getPlan, type StudyPlan } from '../src/plans.js';
import { ConfigError } from '../src/config.js';
import { RunStore, runId } from '../src/runs/index.js';
import { planGeometry, planRuns, validatePlan, studyScaleLabel, type PlannedRun } from '../src/train/study.js';
import { chooseLrs, studyData, analyzeStudyData, formatStudyReport, trunkDivergedBefore } from '../src/report/study.js';
import { runStudy, formatDryRun } from '../src/cli/study.js';

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `ceg-${name}-`));

test('the cpu plan: >= 2.3 decades, >= 20 tokens/param at every final fork, >= 4 LRs half a decade apart, seeds, both baselines, the placebo', () => {
  const p = getPlan('cpu');
  validatePlan(p);
  const geo = planGeometry(p);
  const final = geo.map((g) => g.forks[g.forks.length - 1]);
  for (const [i, g] of geo.entries())
    assert.ok((final[i].end * g.tokensPerStep) / g.params >= 19.9, `${g.rung.name}: tokens/param`);
  const c = geo.map((g, i) => final[i].end * g.flopsPerStep);
  assert.ok(Math.log10(c[c.length - 1] / c[0]) >= 2.3, `decades ${Math.log10(c[c.length - 1] / c[0])}`);
  assert.ok(p.lrGrid.length >= 4);
  for (let i = 1; i < p.lrGrid.length; i++)
    assert.ok(Math.abs(Math.log10(p.lrGrid[i] / p.lrGrid[i - 1]) - 0.5) < 0.01, 'half a decade apart');
  assert.ok(p.lrSweepRungs >= 2);
  const seeds = (id: string) => p.variants.find((v) => v.id === id)?.seeds ?? 0;
  assert.ok(seeds('baseline') >= 3 && seeds('baseline_fair') >= 3);
  for (const v of p.variants) assert.ok(v.seeds >= 2, v.id);
  // a placebo of each baseline, with as many seeds as the baseline it replicates
  for (const [placebo, of] of [
    ['fused', 'baseline'],
    ['fused_fair', 'baseline_fair'],
  ]) {
    assert.ok(seeds(placebo) >= seeds(of), `the placebo ${placebo}`);
    assert.ok(p.comparisons.some((x) => x.kind === 'placebo' && x.variant === placebo && x.reference === of));
  }
  // the LR exponent is fitted over the study set as its larger rungs first trained: all but fused_fair
  assert.deepEqual(
    p.lrExponentVariants,
    p.variants.map((v) => v.id).filter((id) => id !== 'fused_fair'),
  );
  for (const v of ['layernorm', 'postln', 'modern']) assert.ok(seeds(v) >= 2, v);
  assert.ok(p.spotCheck?.variants.includes('baseline') && p.spotCheck.variants.includes('layernorm'));
  assert.ok(
    geo.findIndex((g) => g.rung.name === p.spotCheck!.rung) >= p.lrSweepRungs,
    'the spot check is at a transferred rung',
  );
  // the baselines' extra fork keeps the top variant points inside the baseline frontier
  assert.ok(geo[geo.length - 1].extraFork && geo[geo.length - 1].extraFork!.end > final[final.length - 1].end);
});

test('the gpu plan is the cpu plan plus larger rungs (the shared rungs are the same runs)', () => {
  const cpu = getPlan('cpu');
  const gpu = getPlan('gpu');
  assert.deepEqual(gpu.rungs.slice(0, cpu.rungs.length), cpu.rungs);
  assert.ok(gpu.rungs.length > cpu.rungs.length);
  for (const lr of cpu.lrGrid) assert.ok(gpu.lrGrid.includes(lr), `gpu grid has ${lr}`);
  const cpuSweep = new Set(planRuns(cpu, { backend: 'wasm', stages: ['lr-sweep'] }).map((r) => r.id));
  const gpuSweep = new Set(planRuns(gpu, { backend: 'wasm', stages: ['lr-sweep'] }).map((r) => r.id));
  const cpuBase = planRuns(cpu, { backend: 'wasm', stages: ['lr-sweep'] }).filter((r) => r.variant === 'baseline');
  for (const r of cpuBase) assert.ok(gpuSweep.has(r.id), 'a cpu sweep run is a gpu sweep run');
  assert.ok(cpuSweep.size < gpuSweep.size);
});

function checkStructure(runs: PlannedRun[]) {
  const ids = runs.map((r) => r.id);
  assert.equal(new Set(ids).size, ids.length, 'no duplicates');
  runs.forEach((r, i) => {
    assert.equal(r.id, runId(r.spec));
    assert.equal(r.spec.scale, studyScaleLabel(r.rung));
    if (r.role === 'fork') {
      const k = ids.indexOf(r.spec.fork!.parent);
      assert.ok(k >= 0 && k < i, 'the trunk is listed before its fork');
      const t = runs[k];
      assert.ok(t.spec.train.keepSteps!.includes(r.spec.fork!.step), 'the trunk keeps the fork point');
      assert.equal(t.spec.train.lr, r.spec.train.lr);
      assert.equal(r.spec.train.cooldownSteps, r.spec.train.steps - r.spec.fork!.step);
      assert.ok(r.spec.fork!.step <= t.spec.train.steps);
    } else {
      assert.equal(r.spec.fork, undefined);
      assert.equal(r.spec.train.cooldownSteps, 0);
      assert.equal(r.spec.train.schedule, 'wsd');
    }
  });
}

test('planRuns: trunks before forks, kept fork points, stages, frontier runs shared with the sweep listed once', () => {
  const p = getPlan('cpu');
  const sweep = planRuns(p, { backend: 'wasm', stages: ['lr-sweep'] });
  checkStructure(sweep);
  assert.equal(sweep.filter((r) => r.role === 'trunk').length, p.variants.length * p.lrGrid.length * p.lrSweepRungs);
  const lrOf = () => p.lrGrid[1];
  const all = planRuns(p, { backend: 'wasm', lrOf });
  checkStructure(all);
  const frontierTrunks = all.filter((r) => r.stage === 'frontier' && r.role === 'trunk');
  const seeds = p.variants.reduce((a, v) => a + v.seeds, 0);
  // at the sweep rungs seed 1 at the chosen (grid) LR is the sweep's run: listed once, under lr-sweep
  assert.equal(frontierTrunks.length, seeds * p.rungs.length - p.variants.length * p.lrSweepRungs);
  const spot = all.filter((r) => r.stage === 'spot-check' && r.role === 'trunk');
  assert.deepEqual(
    spot.map((r) => r.lr).sort(),
    [3.16e-4, 3.16e-4, 3.16e-3, 3.16e-3].map((x) => Number(x.toPrecision(3))).sort(),
  );
  // the baselines (only) get the extra fork on the top rung
  const top = p.rungs[p.rungs.length - 1].name;
  const forksOf = (v: string) =>
    all
      .filter((r) => r.variant === v && r.rung === top && r.role === 'fork' && r.seed === 1)
      .map((r) => r.tokensPerParam);
  assert.deepEqual(forksOf('baseline'), [...p.forks, p.baselineExtraFork]);
  assert.deepEqual(forksOf('layernorm'), p.forks);
  // without LRs only the sweep is listed
  assert.deepEqual(
    planRuns(p, { backend: 'wasm' }).map((r) => r.id),
    sweep.map((r) => r.id),
  );
});

test('a plan with an unknown variant, a comparison outside it or too few tokens is a clear ConfigError', () => {
  const p = getPlan('smoke');
  assert.throws(
    () => validatePlan({ ...p, variants: [...p.variants, { id: 'nope', seeds: 1 }] }),
    (e: unknown) => e instanceof ConfigError && /unknown innovation "nope"/.test(e.message),
  );
  assert.throws(
    () => validatePlan({ ...p, comparisons: [{ variant: 'swiglu', reference: 'baseline', kind: 'add' }] }),
    /swiglu is not a variant of the plan/,
  );
  assert.throws(() => validatePlan({ ...p, forks: [0.01, 0.02] }), /warmup .* reaches the first fork/);
  assert.throws(() => getPlan('nope'), /unknown study plan "nope"; valid: smoke, cpu, gpu/);
});

/** A synthetic completed run: rows at step 0 and the last step with the given final loss. */
function fakeDone(store: RunStore, r: PlannedRun, loss: number) {
  const run = store.open(r.spec);
  run.appendMetrics([
    { step: 0, tokens: 0, flops: 0, seconds: 0, trainLoss: null, valLoss: 4.8, lr: 0 },
    { step: r.spec.train.steps, tokens: 1, flops: 1, seconds: 1, trainLoss: loss, valLoss: loss, lr: 0 },
  ]);
  run.setStatus({ state: 'done' });
}

test('LR choice: the best grid LR at the sweep rungs, LR* = c_v·N^e (e shared) transferred above, from a known loss(LR, N)', () => {
  const p: StudyPlan = {
    ...getPlan('cpu'),
    variants: [
      { id: 'baseline', seeds: 3 },
      { id: 'layernorm', seeds: 2 },
    ],
    lrExponentVariants: undefined,
  };
  p.comparisons = [];
  p.lrGrid = [1e-4, 3.16e-4, 1e-3, 3.16e-3, 1e-2];
  const geo = planGeometry(p);
  const N = new Map(geo.map((g) => [g.rung.name, g.params]));
  // true optimum: LR*(N) = c_v·N^e, one exponent, a level per variant; loss is a parabola in log LR around it
  const truth = { baseline: { c: 0.5, e: -0.55 }, layernorm: { c: 0.3, e: -0.55 } } as const;
  const star = (v: 'baseline' | 'layernorm', n: number) => truth[v].c * n ** truth[v].e;
  const store = new RunStore(tmp('lrs'));
  for (const r of planRuns(p, { backend: 'wasm', stages: ['lr-sweep'] })) {
    const v = r.variant as 'baseline' | 'layernorm';
    fakeDone(store, r, 2 + 0.1 * Math.log(r.lr / star(v, N.get(r.rung)!)) ** 2);
  }
  const lrs = chooseLrs(p, store, 'wasm');
  for (const v of ['baseline', 'layernorm'] as const) {
    for (const g of geo.slice(0, p.lrSweepRungs)) {
      const c = lrs.choices.find((x) => x.variant === v && x.rung === g.rung.name)!;
      assert.equal(c.source, 'sweep');
      // a parabola through three points of a parabola is exact
      assert.ok(
        Math.abs(Math.log(c.lrStar / star(v, g.params))) < 1e-6,
        `${v} ${g.rung.name}: LR* ${c.lrStar} vs ${star(v, g.params)}`,
      );
      const nearest = [...p.lrGrid].sort(
        (a, b) => Math.abs(Math.log(a / c.lrStar)) - Math.abs(Math.log(b / c.lrStar)),
      )[0];
      assert.equal(c.lr, nearest);
    }
    for (const g of geo.slice(p.lrSweepRungs)) {
      const c = lrs.choices.find((x) => x.variant === v && x.rung === g.rung.name)!;
      assert.equal(c.source, 'transfer');
      assert.ok(
        Math.abs(Math.log(c.lrStar / star(v, g.params))) < 1e-6,
        `${v} ${g.rung.name}: transferred ${c.lrStar} vs ${star(v, g.params)}`,
      );
      assert.equal(c.lr, Number(c.lrStar.toPrecision(3)));
      assert.equal(lrs.lrOf(v, g.rung.name), c.lr);
    }
  }
  // one sweep run missing: that variant has no LR yet, so no frontier runs
  const missing = planRuns(p, { backend: 'wasm', stages: ['lr-sweep'] }).find(
    (r) => r.variant === 'layernorm' && r.tokensPerParam === p.forks[p.forks.length - 1],
  )!;
  fs.rmSync(store.dirOf(missing.id), { recursive: true });
  const partial = chooseLrs(p, store, 'wasm');
  assert.equal(partial.lrOf('layernorm', p.rungs[0].name), undefined);
  assert.ok(partial.lrOf('baseline', p.rungs[0].name) !== undefined);
  // the shared exponent waits for every variant's sweep: no larger-rung LR for anyone yet
  assert.equal(partial.lrOf('baseline', p.rungs[p.lrSweepRungs].name), undefined);
  assert.match(partial.notes.join(' '), /larger rungs wait for the LR sweeps of layernorm/);
  assert.equal(
    planRuns(p, { backend: 'wasm', lrOf: partial.lrOf, stages: ['frontier'] }).filter((r) => r.variant === 'layernorm')
      .length,
    0,
  );

  // a variant added later, outside lrExponentVariants (its own optimum moves with N by another
  // exponent): the others' LRs stay exactly as they were, before and after its sweep completes;
  // it takes the shared exponent with its own level
  fakeDone(store, missing, 2 + 0.1 * Math.log(missing.lr / star('layernorm', N.get(missing.rung)!)) ** 2);
  const grown: StudyPlan = {
    ...p,
    variants: [...p.variants, { id: 'rope', seeds: 2 }],
    lrExponentVariants: ['baseline', 'layernorm'],
  };
  const ropeStar = (n: number) => 0.05 * n ** -0.3;
  const before = chooseLrs(grown, store, 'wasm');
  for (const r of planRuns(grown, { backend: 'wasm', stages: ['lr-sweep'] }).filter((x) => x.variant === 'rope'))
    fakeDone(store, r, 2 + 0.1 * Math.log(r.lr / ropeStar(N.get(r.rung)!)) ** 2);
  const after = chooseLrs(grown, store, 'wasm');
  for (const g of geo.slice(p.lrSweepRungs)) {
    for (const v of ['baseline', 'layernorm'])
      for (const c of [before, after])
        assert.equal(c.lrOf(v, g.rung.name), lrs.lrOf(v, g.rung.name), `${v} ${g.rung.name}`);
    assert.equal(before.lrOf('rope', g.rung.name), undefined, 'no LR before its sweep');
    // rope's level from its sweep rungs with e = -0.55, not its own -0.3
    const sweepN = geo.slice(0, p.lrSweepRungs).map((x) => x.params);
    const level = Math.exp(sweepN.reduce((a, n) => a + Math.log(ropeStar(n)) + 0.55 * Math.log(n), 0) / sweepN.length);
    const c = after.choices.find((x) => x.variant === 'rope' && x.rung === g.rung.name)!;
    assert.ok(Math.abs(Math.log(c.lrStar / (level * g.params ** -0.55))) < 1e-6, `rope ${g.rung.name}: ${c.lrStar}`);
  }
  assert.deepEqual(after.pooled!.fitted, ['baseline', 'layernorm']);
  assert.throws(
    () => chooseLrs({ ...grown, lrExponentVariants: ['baseline', 'nope'] }, store, 'wasm'),
    /lrExponentVariants nope are not among its variants/,
  );
});

test('a tiny plan runs end to end (sweep, transfer, frontier, spot check), reports, and a second run trains nothing', async () => {
  const p: StudyPlan = {
    ...getPlan('smoke'),
    variants: [
      { id: 'baseline', seeds: 1 },
      { id: 'fused', seeds: 1 },
    ],
  };
  p.rungs = p.rungs.slice(0, 3);
  p.comparisons = [{ variant: 'fused', reference: 'baseline', kind: 'placebo' }];
  p.evalBatches = 1;
  const store = new RunStore(tmp('study-e2e'));
  const logs: string[] = [];
  const { runs } = await runStudy(p, { store, backend: 'wasm', jobs: 1, stream: null, log: (l) => logs.push(l) });
  assert.ok(runs.length > 0);
  for (const r of runs) assert.ok(store.get(r.id)?.isDone(), `${r.variant} ${r.rung} lr ${r.lr} ${r.role}: done`);
  assert.ok(
    runs.some((r) => r.stage === 'frontier' && r.rung === 'smoke-c'),
    'the transferred rung was trained',
  );
  assert.ok(runs.some((r) => r.stage === 'spot-check'));
  // locally a stage trains rung by rung: each LR-sweep rung's runs all finish before the next rung's first starts
  const sweepRuns = runs.filter((r) => r.stage === 'lr-sweep');
  const times = (rung: string) =>
    sweepRuns
      .filter((r) => r.rung === rung)
      .map((r) => store.get(r.id)!.status() as { startedAt: string; finishedAt?: string });
  const rungNames = p.rungs.map((g) => g.name).filter((n) => sweepRuns.some((r) => r.rung === n));
  for (let k = 1; k < rungNames.length; k++) {
    const lastEnd = times(rungNames[k - 1])
      .map((t) => t.finishedAt ?? '')
      .sort()
      .at(-1)!;
    const firstStart = times(rungNames[k])
      .map((t) => t.startedAt)
      .sort()[0];
    assert.ok(lastEnd <= firstStart, `${rungNames[k - 1]} ended ${lastEnd}, ${rungNames[k]} began ${firstStart}`);
  }
  // fused is the same math as the baseline: with the same LR its forks give identical losses
  const d = studyData(p, store, 'wasm');
  for (const rung of p.rungs.map((r) => r.name)) {
    if (d.lrs.lrOf('baseline', rung) !== d.lrs.lrOf('fused', rung)) continue;
    const b = d.runs.find((r) => r.variant === 'baseline' && r.rung === rung)!;
    const f = d.runs.find((r) => r.variant === 'fused' && r.rung === rung)!;
    for (const fp of f.points) {
      const bp = b.points.find((x) => x.fork === fp.fork)!;
      assert.ok(Math.abs(bp.loss - fp.loss) < 2e-3, `${rung} ${fp.fork}: fused ${fp.loss} vs baseline ${bp.loss}`);
    }
  }
  const text = formatStudyReport(d, analyzeStudyData(d, { bootstrap: 20 }));
  assert.match(text, /Study "smoke": (\d+)\/\1 listed runs ended \(trained or diverged\)/);
  assert.match(text, /CEG on exact FLOPs at equal loss, against "baseline"/);
  // resumable and cached: nothing left to train, the dry run says so
  const before = store.ids().map((id) => fs.statSync(path.join(store.dirOf(id), 'status.json')).mtimeMs);
  await runStudy(p, { store, backend: 'wasm', jobs: 1, stream: null, log: () => {} });
  const after = store.ids().map((id) => fs.statSync(path.join(store.dirOf(id), 'status.json')).mtimeMs);
  assert.deepEqual(after, before, 'a second run trains nothing');
  const dry = await formatDryRun(p, { store, backend: 'wasm', jobs: 1, measure: false });
  assert.match(dry, new RegExp(`Runs \\(${runs.length} of ${runs.length} already ended \\(trained or diverged\\)`));
});

test('LR choice: a diverged sweep fork, and the forks of a trunk that diverged before them, count as diverged (the variant keeps its LR)', () => {
  const p: StudyPlan = { ...getPlan('cpu'), variants: [{ id: 'baseline', seeds: 3 }], lrExponentVariants: undefined };
  p.comparisons = [];
  p.lrGrid = [1e-4, 3.16e-4, 1e-3, 3.16e-3, 1e-2];
  const store = new RunStore(tmp('lrs-diverged'));
  const sweep = planRuns(p, { backend: 'wasm', stages: ['lr-sweep'] });
  const rung0 = p.rungs[0].name;
  // loss falls with LR up to 1e-3, then the two largest LRs diverge: the top one in its trunk
  // (before every fork step), the next one in its last fork only
  const top = sweep.find((r) => r.role === 'trunk' && r.rung === rung0 && r.lr === 1e-2)!;
  for (const r of sweep) {
    if (r.id === top.id || r.spec.fork?.parent === top.id) continue;
    const lastFork = r.tokensPerParam === p.forks[p.forks.length - 1];
    if (r.rung === rung0 && r.lr === 3.16e-3 && lastFork) {
      store
        .open(r.spec)
        .setStatus({ state: 'diverged', divergence: { step: 3, loss: 99, lr: r.lr, initialLoss: 4.8 } });
      continue;
    }
    fakeDone(store, r, 2 + 0.1 * Math.log(r.lr / 1e-3) ** 2);
  }
  const firstFork = sweep.find((r) => r.spec.fork?.parent === top.id)!;
  // before the trunk exists, its forks are simply still to train
  assert.equal(trunkDivergedBefore(store, firstFork.spec.fork!), false);
  store
    .open(top.spec)
    .setStatus({ state: 'diverged', divergence: { step: 2, loss: 99, lr: top.lr, initialLoss: 4.8 } });
  assert.equal(trunkDivergedBefore(store, firstFork.spec.fork!), true);
  const lrs = chooseLrs(p, store, 'wasm');
  const c = lrs.choices.find((x) => x.variant === 'baseline' && x.rung === rung0);
  assert.ok(c, 'the variant still gets an LR at the rung where two LRs diverged');
  assert.ok(Math.abs(Math.log(c.lrStar / 1e-3)) < 1e-6, `LR* ${c.lrStar}`);
  const diverged = lrs.sweep.filter((s) => s.rung === rung0 && !Number.isFinite(s.loss)).map((s) => s.lr);
  assert.deepEqual(diverged.sort(), [3.16e-3, 1e-2]);
});
