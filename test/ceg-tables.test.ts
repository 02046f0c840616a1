import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cegTable,
  cegFrame,
  formatCegTable,
  paperVsOurs,
  paperVsOursFrame,
  formatPaperVsOurs,
  type CegRow,
  type TableRun,
} from '../src/ceg/tables.js';
import { PUBLISHED } from '../src/ceg/published.js';
import type { MetricRow } from '../src/ceg/types.js';
import { ladderScale, MICRO_LADDER, getScale } from '../src/scales.js';

/**
 * Synthetic runs: evaluation every 20 steps, 21 evaluations. loss(step) = 2 + 8/sqrt(1 + step/20·speed).
 * flopsPerStep lets a variant be cheaper per step (as MQA is).
 */
function run(innovation: string, seed: number, speed: number, flopsPerStep = 1e9, floor = 2): TableRun {
  const metrics: MetricRow[] = [];
  for (let i = 0; i <= 20; i++) {
    const step = 20 * i;
    const valLoss = floor + 8 / Math.sqrt(1 + i * speed) + 0.001 * ((seed * 7 + i) % 3);
    metrics.push({
      step,
      tokens: step * 2048,
      flops: step * flopsPerStep,
      seconds: step * 0.1,
      trainLoss: valLoss,
      valLoss,
      lr: 1e-3,
    });
  }
  return { innovation, seed, scale: 'micro', metrics };
}

const runs: TableRun[] = [];
for (const seed of [1, 2, 3]) {
  runs.push(run('mqa', seed, 1, 0.9e9, 2.3)); // cheaper per step but plateaus higher: DNR
  runs.push(run('baseline', seed, 1));
  runs.push(run('rope', seed, 2)); // twice as fast per step
}

test("cegTable: one row per innovation in the paper's order, categories from the registry, baseline = 1", () => {
  const t = cegTable(runs, { bootstrap: { resamples: 200 } });
  const rows = t.rows;
  assert.deepEqual(
    rows.map((r) => r.innovation),
    ['baseline', 'rope', 'mqa'],
  );
  assert.deepEqual(
    rows.map((r) => r.category),
    ['baseline', 'compute-independent', 'compute-dependent'],
  );
  assert.equal(rows[0].label, 'Baseline');
  for (const axis of ['steps', 'tokens', 'flops', 'seconds'] as const) {
    assert.equal(rows[0].ceg[axis]!.ceg, 1);
    assert.equal(rows[0].ceg[axis]!.ciLow, 1);
  }
  assert.equal(rows[0].paper.ceg, 1);
  assert.equal(rows[0].nSeeds, 3);
  // rope: loss at evaluation i equals the baseline's at 2i (apart from the tiny seed wiggle), so CEG ≈ 2
  for (const axis of ['steps', 'flops'] as const)
    assert.ok(Math.abs(rows[1].ceg[axis]!.ceg! - 2) < 0.05, `rope ${axis} ${rows[1].ceg[axis]!.ceg}`);
  // the paper's method: baseline reaches its final smoothed loss at position 21, rope at 14
  // (smoothed rope at index 13 averages baseline losses at 12..26 even, below the baseline's
  // final window 13..20). The 8-point trailing average lags both curves by 3.5 evaluations,
  // which pulls a true 2 towards 1 on curves this short: 21/14 = 1.5.
  assert.equal(rows[1].paper.ceg, 1.5);
  // mqa never reaches the baseline's final loss: DNR everywhere, aux CEG from the paper's method
  assert.equal(rows[2].ceg.flops!.dnr, true);
  assert.equal(rows[2].ceg.flops!.nDnr, 3);
  assert.equal(rows[2].ceg.flops!.ceg, null);
  assert.equal(rows[2].paper.dnr, true);
  assert.equal(rows[2].paper.ceg, null);
  assert.ok(rows[2].paper.auxCeg! > 0 && rows[2].paper.auxCeg! < 1, `aux ${rows[2].paper.auxCeg}`);
  // best val loss: mean over seeds of each run's minimum, by hand from the generator
  const best = (seed: number) => Math.min(...run('baseline', seed, 1).metrics.map((m) => m.valLoss as number));
  assert.ok(Math.abs(rows[0].bestValLoss - (best(1) + best(2) + best(3)) / 3) < 1e-12);
});

test('cegFrame: the typed rows as flat columns (notebooks, csv/json), axis by axis', () => {
  const t = cegTable(runs, { axes: ['steps', 'flops'], bootstrap: { resamples: 50 } });
  const f = cegFrame(t);
  assert.deepEqual(f.columnNames(), [
    'innovation',
    'label',
    'category',
    'imported',
    'n_seeds',
    'n_diverged',
    'best_val_loss',
    'paper_adjusted',
    'paper_ceg',
    'paper_dnr',
    'paper_n_dnr',
    'paper_aux_ceg',
    'ceg_steps',
    'ci_low_steps',
    'ci_high_steps',
    'dnr_steps',
    'n_dnr_steps',
    'ceg_flops',
    'ci_low_flops',
    'ci_high_flops',
    'dnr_flops',
    'n_dnr_flops',
  ]);
  t.rows.forEach((r, i) => {
    assert.equal(f.get('innovation', i), r.innovation);
    assert.equal(f.get('paper_aux_ceg', i), r.paper.auxCeg);
    assert.equal(f.get('ceg_flops', i), r.ceg.flops!.ceg);
    assert.equal(f.get('ci_high_steps', i), r.ceg.steps!.ciHigh);
    assert.equal(f.get('n_dnr_flops', i), r.ceg.flops!.nDnr);
  });
  assert.equal(t.rows[1].ceg.tokens, undefined); // not an axis of this table
});

test('formatCegTable aligns columns and marks DNR', () => {
  const s = formatCegTable(cegTable(runs, { axes: ['steps', 'flops'], bootstrap: { resamples: 100 } }));
  const lines = s.split('\n');
  assert.equal(lines.length, 5); // header, rule, 3 rows
  assert.ok(lines.every((l) => l.trimEnd().length <= lines[1].length));
  assert.equal(new Set(lines.map((l) => l.length)).size, 1, s);
  assert.match(lines[0], /CEG steps.*CEG flops/);
  assert.match(lines[4], /Multi-query attention \(MQA\).*DNR \(aux 0\.\d{3}\).*DNR.*DNR/);
  assert.match(lines[3], /\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]/);
});

test('cegTable errors: several scales, no baseline, unknown innovation', () => {
  assert.throws(
    () => cegTable([...runs, { ...runs[0], scale: 'compact' }]),
    /several scales \(micro, compact\); pass opts.scale/,
  );
  assert.throws(() => cegTable(runs.filter((r) => r.innovation !== 'baseline')), /no "baseline" run at scale "micro"/);
  assert.throws(() => cegTable([...runs, { ...runs[0], innovation: 'xformer' }]), /unknown innovation "xformer"/);
});

test('paperVsOurs puts the published table next to ours', () => {
  const ct = cegTable(runs, { axes: ['flops'], bootstrap: { resamples: 100 } });
  const t = paperVsOurs(ct, 'compact');
  const rows = paperVsOursFrame(t).objects() as Record<string, any>[];
  assert.equal(rows.length, 7);
  assert.deepEqual(
    rows.map((r) => r.innovation),
    ['baseline', 'fused', 'rope', 'layernorm', 'fa_rope_ln', 'mqa', 'sparse'],
  );
  assert.equal(rows[2].published_ceg, 1.87);
  assert.equal(rows[5].published_dnr, true);
  assert.equal(rows[5].published_aux_ceg, 0.673);
  assert.equal(rows[6].published_best_loss, 3.8866);
  assert.ok(Math.abs(rows[2].ceg_flops - 2) < 0.05);
  assert.equal(rows[1].ceg_flops, null); // we did not run FA here
  assert.equal(PUBLISHED.full.find((r) => r.innovation === 'mqa')!.ceg, 0.931);
  assert.match(formatPaperVsOurs(t), /DNR \(aux 0\.515\)/);
  assert.throws(() => paperVsOurs(ct, 'micro'), /no published numbers for scale "micro"; valid: compact, full/);
});

test('paperVsOurs at full scale: the published full numbers, RoPE and MQA marked as resting on the adjustment', () => {
  const t = paperVsOurs(cegTable(runs, { axes: ['flops'], bootstrap: { resamples: 100 } }), 'full');
  const rows = paperVsOursFrame(t).objects() as Record<string, any>[];
  const by = (id: string) => rows.find((r) => r.innovation === id)!;
  // PAPER.md's full-scale column, typed out here independently of published.ts
  const want: Record<string, number> = {
    baseline: 1,
    fused: 1,
    rope: 1.35,
    layernorm: 1.421,
    fa_rope_ln: 1.8,
    mqa: 0.931,
    sparse: 0.964,
  };
  for (const [id, c] of Object.entries(want)) {
    assert.equal(by(id).published_ceg, c, id);
    assert.equal(by(id).published_dnr, false, id);
    assert.equal(by(id).published_adjusted, id === 'rope' || id === 'mqa', id);
  }
  const text = formatPaperVsOurs(t);
  assert.match(text, /1\.350 \*/);
  assert.match(text, /0\.931 \*/);
  assert.match(
    text,
    /\* rests on the paper notebook's adjustment: \|LayerNorm − baseline\| added to the Rotary embeddings \(RoPE\) and Multi-query attention \(MQA\) curves/,
  );
  // the compact table has no adjusted number and no footnote
  assert.doesNotMatch(
    formatPaperVsOurs(paperVsOurs(cegTable(runs, { axes: ['flops'], bootstrap: { resamples: 50 } }), 'compact')),
    /\*/,
  );
});

test('micro ladder: 4 rungs from micro, compute spans >= 1 decade, largest <= 3x micro', () => {
  // training FLOPs by 6·N·D + attention (Kaplan), written out here independently of the model code
  const flops = (s: ReturnType<typeof getScale>) => {
    const { nLayer: L, nEmbd: d, blockSize: T, vocabSize: V } = s.model;
    const perToken = 6 * 12 * L * d * d + 6 * L * T * d + 6 * d * V;
    return perToken * s.train.steps * s.train.batchSize * T;
  };
  const micro = getScale('micro');
  const c = MICRO_LADDER.map((_, i) => flops(ladderScale(i)));
  for (let i = 1; i < c.length; i++) assert.ok(c[i] > c[i - 1]);
  assert.ok(Math.log10(c[3] / c[0]) >= 1 && Math.log10(c[3] / c[0]) <= 2, `span ${Math.log10(c[3] / c[0])} decades`);
  assert.ok(c[3] <= 3 * flops(micro), `largest rung ${c[3] / flops(micro)}x micro`);
  const r2 = ladderScale('micro-r2');
  assert.equal(r2.model.nEmbd, micro.model.nEmbd);
  assert.equal(r2.train.batchSize, micro.train.batchSize);
  assert.equal(ladderScale(0).model.nKvHead, ladderScale(0).model.nHead);
  assert.equal(ladderScale(3).train.decaySteps, 300);
  assert.throws(() => ladderScale(7), /unknown ladder rung 7; valid: 0..3 or micro-r0/);
  assert.equal(getScale('micro').model.nLayer, 4); // micro itself unchanged
});

test('cegTable asPublished: rope and mqa get |LayerNorm − baseline| (same seed) added; others untouched', async () => {
  const { paperCeg } = await import('../src/ceg/paper.js');
  const withLn = [...runs, ...[1, 2, 3].map((s) => run('layernorm', s, 1.5))];
  const plain = cegTable(withLn, { bootstrap: { resamples: 50 } }).rows;
  const adj = cegTable(withLn, { asPublished: true, bootstrap: { resamples: 50 } }).rows;
  const by = (rows: CegRow[], id: string) => rows.find((r) => r.innovation === id)!;
  // the reference: the paper's method with the gap, seed by seed, averaged as the table does
  const ref = [1, 2, 3].map((s) => {
    const b = withLn.find((r) => r.innovation === 'baseline' && r.seed === s)!.metrics;
    const v = withLn.find((r) => r.innovation === 'rope' && r.seed === s)!.metrics;
    const l = withLn.find((r) => r.innovation === 'layernorm' && r.seed === s)!.metrics;
    return paperCeg(b, v, { gap: l }).ceg!;
  });
  assert.equal(by(adj, 'rope').paper.ceg, (ref[0] + ref[1] + ref[2]) / 3);
  assert.ok(by(adj, 'rope').paper.ceg! < by(plain, 'rope').paper.ceg!, 'the added gap makes rope slower to reach');
  assert.equal(by(adj, 'rope').paper.adjusted, true);
  assert.equal(by(adj, 'layernorm').paper.adjusted, false);
  assert.equal(by(adj, 'layernorm').paper.ceg, by(plain, 'layernorm').paper.ceg);
  assert.equal(by(plain, 'rope').paper.adjusted, false);
  // our CEG is never adjusted
  assert.equal(by(adj, 'rope').ceg.flops!.ceg, by(plain, 'rope').ceg.flops!.ceg);
  // without a layernorm run of the same seed it says what is missing
  assert.throws(
    () => cegTable(runs, { asPublished: true }),
    /as-published adjustment of rope needs a layernorm run of seed 1/,
  );
});
