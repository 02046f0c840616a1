/**
 * ceg import (src/runs/import.ts, src/cli/import.ts): the fixtures in test/fixtures/import are
 * written in the formats' real layouts (nanoGPT train.py console log with its config printout
 * and iter lines; a W&B CSV export of a val/loss panel with __MIN/__MAX columns and empty
 * cells; a plain CSV). Their curves are built so the CEG is known independently:
 * variant(s) = baseline(k·s) reaches the baseline's final loss at 1/k of its steps, CEG = k.
 * Also: --format csv/json parse, ceg runs fits 120 columns, bad files exit 2 naming file,
 * line and column with nothing written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main } from '../src/cli/main.js';
import {
  ImportError,
  parseNanoGptLog,
  parsePlainCsv,
  parseWandbCsv,
  parseJsonl,
  toMetricRows,
  detectFormat,
} from '../src/runs/import.js';
import { RunStore } from '../src/runs/index.js';
import { cegTable } from '../src/ceg/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fx = (f: string) => path.join(root, 'test/fixtures/import', f);
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ceg-import-'));

type Row = Record<string, unknown>;

async function reportJson(runs: string, scale: string): Promise<Row[]> {
  const out = path.join(runs, 'report.json');
  assert.equal(await main(['report', '--scale', scale, '--runs', runs, '--format', 'json', '--out', out]), 0);
  return JSON.parse(fs.readFileSync(out, 'utf8')) as Row[];
}

const byId = (rows: Row[]) => Object.fromEntries(rows.map((r) => [r.innovation as string, r]));

test('nanoGPT logs: two runs imported into a fresh store give the CEG table (rope = baseline at 2x steps -> CEG 2)', async () => {
  const runs = tmp();
  assert.equal(await main(['import', fx('baseline.log'), fx('rope.log'), '--baseline', 'baseline', '--runs', runs]), 0);
  const t = byId(await reportJson(runs, 'imported'));
  assert.deepEqual(Object.keys(t).sort(), ['baseline', 'rope']);
  assert.equal(t.rope.imported, true);
  assert.match(String(t.rope.label), /\[imported\]$/);
  assert.ok(Math.abs((t.rope.ceg_steps as number) - 2) < 1e-9, `ceg_steps ${t.rope.ceg_steps}`);
  // tokens per step from the log ("tokens per iteration will be: 16,384"): same ratio on tokens
  assert.ok(Math.abs((t.rope.ceg_tokens as number) - 2) < 1e-9);
  assert.equal(t.rope.ceg_flops, undefined, 'no FLOPs axis without --flops-per-step or --model-config');
  const log = parseNanoGptLog('b.log', fs.readFileSync(fx('baseline.log'), 'utf8'));
  assert.equal(log.tokensPerStep, 16384);
  assert.equal(log.config?.max_iters, '1000');
  assert.deepEqual(
    log.points.map((p) => p.step),
    [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000],
  );
  assert.equal(
    log.points[3].valLoss,
    Number(/step 300: train loss \S+ val loss (\S+)/.exec(fs.readFileSync(fx('baseline.log'), 'utf8'))![1]),
  );
  // seconds summed from the iter lines (iter 0 = compilation, left out): strictly increasing from 0
  const secs = log.points.map((p) => p.seconds as number);
  assert.equal(secs[0], 0);
  for (let i = 1; i < secs.length; i++) assert.ok(secs[i] > secs[i - 1]);
});

test('W&B CSV with several runs: one file -> three runs, CEG 2 and 1.25 on steps; --flops-per-step adds the FLOPs axis', async () => {
  const runs = tmp();
  assert.equal(
    await main([
      'import',
      fx('wandb.csv'),
      '--baseline',
      'no_features',
      '--scale',
      'paper',
      '--flops-per-step',
      '1e9',
      '--runs',
      runs,
    ]),
    0,
  );
  const t = byId(await reportJson(runs, 'paper'));
  assert.deepEqual(Object.keys(t).sort(), ['baseline', 'layer_norm', 'rotary']);
  assert.ok(Math.abs((t.rotary.ceg_steps as number) - 2) < 1e-9);
  assert.ok(Math.abs((t.layer_norm.ceg_steps as number) - 1.25) < 1e-9);
  assert.ok(Math.abs((t.layer_norm.ceg_flops as number) - 1.25) < 1e-9);
  const curves = parseWandbCsv('w.csv', fs.readFileSync(fx('wandb.csv'), 'utf8'));
  assert.deepEqual(
    curves.map((c) => [c.name, c.points.length]),
    [
      ['no_features', 11],
      ['rotary', 12],
      ['layer_norm', 11],
    ],
  );
  assert.equal(detectFormat('x.csv', fs.readFileSync(fx('wandb.csv'), 'utf8')), 'wandb');
});

test('plain CSV of (tokens, val loss) per run: CEG on tokens only; --format csv parses; ceg runs fits 120 columns', async () => {
  const runs = tmp();
  assert.equal(await main(['import', fx('plain.csv'), '--baseline', 'base', '--scale', 'plain', '--runs', runs]), 0);
  const t = byId(await reportJson(runs, 'plain'));
  // wide(s) = base(4 s): the target falls between evaluations, so log-interpolation is close to 4, not exact
  assert.ok(Math.abs((t.wide.ceg_tokens as number) - 4) / 4 < 0.01, `ceg_tokens ${t.wide.ceg_tokens}`);
  assert.equal(t.wide.ceg_steps, undefined, 'a tokens-only curve has no steps axis');
  const csv = path.join(runs, 'r.csv');
  assert.equal(await main(['report', '--scale', 'plain', '--runs', runs, '--format', 'csv', '--out', csv]), 0);
  const lines = fs
    .readFileSync(csv, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(','));
  assert.equal(lines.length, 3);
  for (const l of lines) assert.equal(l.length, lines[0].length);
  const col = lines[0].indexOf('ceg_tokens');
  assert.ok(Math.abs(Number(lines.find((l) => l[0] === 'wide')![col]) - (t.wide.ceg_tokens as number)) < 1e-12);
  const listing = path.join(runs, 'runs.txt');
  assert.equal(await main(['runs', '--runs', runs, '--out', listing]), 0);
  const text = fs.readFileSync(listing, 'utf8');
  assert.match(text, /imported/);
  for (const line of text.split('\n')) assert.ok(line.length <= 120, `${line.length} columns: ${line}`);
  const json = path.join(runs, 'runs.json');
  assert.equal(
    await main(['runs', '--runs', runs, '--format', 'json', '--columns', 'id,source,bestValLoss', '--out', json]),
    0,
  );
  const rows = JSON.parse(fs.readFileSync(json, 'utf8')) as Row[];
  assert.deepEqual(Object.keys(rows[0]), ['id', 'source', 'bestValLoss']);
  assert.ok(rows.every((r) => r.source === 'imported'));
});

test('importing the same file again replaces the runs (same ids), a trained store is left alone', async () => {
  const runs = tmp();
  await main(['import', fx('plain.csv'), '--baseline', 'base', '--scale', 'plain', '--runs', runs]);
  const ids = new RunStore(runs).ids();
  await main(['import', fx('plain.csv'), '--baseline', 'base', '--scale', 'plain', '--runs', runs]);
  assert.deepEqual(new RunStore(runs).ids(), ids);
  assert.equal(ids.length, 2);
});

test('cegTable takes (step, loss) curves: the axes every run carries, no "tokens at step 0 is undefined"', () => {
  const L = (s: number) => 1 + 2 / Math.sqrt(s + 10);
  const curve = (k: number) => [0, 10, 20, 40, 80].map((s) => ({ step: s, valLoss: L(k * s) }));
  const runs = [
    { innovation: 'baseline', seed: 1, scale: 'x', metrics: curve(1) as never },
    { innovation: 'rope', seed: 1, scale: 'x', metrics: curve(2) as never },
  ];
  const row = cegTable(runs).rows.find((r) => r.innovation === 'rope')!;
  assert.ok(Math.abs(row.ceg.steps!.ceg! - 2) < 1e-9);
  assert.ok(!('tokens' in row.ceg));
});

test('bad files: message names file, line and column; nothing parsed past the error', () => {
  const err = (fn: () => unknown, line: number, column: number, re: RegExp) =>
    assert.throws(fn, (e: unknown) => {
      assert.ok(e instanceof ImportError, String(e));
      assert.equal(e.line, line);
      assert.equal(e.column, column);
      assert.match(e.message, re);
      return true;
    });
  err(
    () => parsePlainCsv('a.csv', 'run,step,val_loss\nx,0,3.1\nx,10,abc\n'),
    3,
    6,
    /^a\.csv:3:6: val_loss "abc" is not a number/,
  );
  err(
    () => parsePlainCsv('a.csv', 'run,step,val_loss\nx,0,3.1\nx,10,3.0\nx,10,2.9\n'),
    4,
    3,
    /step 10 does not increase/,
  );
  err(() => parsePlainCsv('a.csv', 'run,step,loss_of_val\nx,0,3.1\n'), 1, 1, /no validation loss column/);
  err(
    () => parseWandbCsv('w.csv', '"Step","a - val/loss"\n0,3\n1,x\n'),
    3,
    3,
    /^w\.csv:3:3: a - val\/loss "x" is not a number/,
  );
  err(() => parseWandbCsv('w.csv', '"Iter","a - val/loss"\n0,3\n'), 1, 1, /no "Step" column/);
  err(
    () => parseNanoGptLog('n.log', 'step 0: train loss 4.0, val loss 4.1\nstep 0: train loss 3.0, val loss 3.1\n'),
    2,
    6,
    /step 0 does not increase/,
  );
  err(() => parseNanoGptLog('n.log', 'hello\n'), 1, 1, /no "step N: train loss X, val loss Y" line/);
  err(
    () => parseJsonl('j.jsonl', '{"step": 0, "val_loss": 3}\n{"step": 1, "val_loss": "x"}\n'),
    2,
    25,
    /val_loss "x" is not a number/,
  );
  // a curve in tokens without tokens per step: steps are evaluation indices and not an axis
  const c = parsePlainCsv('p.csv', 'tokens,val_loss\n0,3\n100,2\n')[0];
  assert.deepEqual(toMetricRows(c, {}).axes, ['tokens']);
  assert.deepEqual(
    toMetricRows(c, { tokensPerStep: 50 }).rows.map((r) => r.step),
    [0, 2],
  );
});

test('ceg import of a bad file (process): exit 2, one message with file:line:column, nothing written', () => {
  const dir = tmp();
  const good = fx('plain.csv');
  const bad = path.join(dir, 'bad.csv');
  fs.writeFileSync(bad, 'run,step,val_loss\nb,0,3.0\nb,5,\n');
  const runs = path.join(dir, 'store');
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'import', good, bad, '--baseline', 'base', '--runs', runs],
    {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, CEG_CLI_MAIN: '1' },
    },
  );
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /bad\.csv:3:5: val_loss "" is not a number/);
  assert.equal(fs.existsSync(runs), false, 'the good file before the bad one was not stored either');
});

test('figures from imported runs: only the axes they carry, CEG bars labelled [imported], no crash on NaN axes', async () => {
  const { storedRecords, reportDataFromRecords } = await import('../src/report/from-runs.js');
  const { buildAllFigures } = await import('../src/report/all.js');
  const runs = tmp();
  assert.equal(
    await main(['import', fx('wandb.csv'), '--baseline', 'no_features', '--scale', 'paper', '--runs', runs]),
    0,
  );
  const records = storedRecords(new RunStore(runs), 'paper', 'wasm');
  assert.equal(records.length, 3);
  const { data } = reportDataFromRecords(records, null, 'paper');
  assert.deepEqual(Object.keys(data.ceg ?? {}), ['steps']);
  const bars = data.ceg!.steps!;
  assert.deepEqual(bars.map((b) => b.label).sort(), ['layer_norm [imported]', 'rotary [imported]']);
  const names = buildAllFigures(data).map((f) => f.name);
  assert.ok(names.includes('loss_vs_steps') && names.includes('ceg_bars_steps'));
  assert.ok(!names.includes('loss_vs_flops') && !names.includes('loss_vs_seconds'));
});

// ---------------------------------------------------------------- FLOPs from a nanoGPT config printout

/**
 * nanoGPT's get_num_params(non_embedding=True), written out for the models below (bias=False,
 * tied lm_head, no position table): per block 12·C² in the Linears plus 2·C per LayerNorm
 * weight when blocks have LayerNorm; the token table V·C; ln_f's C.
 */
const nanoGptParams = (L: number, C: number, V: number, blockNorms: boolean) =>
  L * (12 * C * C + (blockNorms ? 2 * C : 0)) + V * C + C;

test("nanoGPT log: FLOPs per step from its config printout (n_layer, n_embd, ... and train.py's defaults), checked against the parameters it reports", async () => {
  const { stepFlops } = await import('../src/model/flops.js');
  const { parseModelConfig } = await import('../src/config.js');
  const text = fs.readFileSync(fx('shakespeare-char.log'), 'utf8');
  const log = parseNanoGptLog('shakespeare-char.log', text);
  assert.equal(log.config?.n_layer, '6');
  assert.equal(log.config?.block_size, '256', 'the comment after the value is not part of it');
  assert.equal(log.config?.max_iters, '1000', 'an Overriding line wins over the printed file');
  assert.equal(log.vocabSize, 65);
  assert.equal(log.reportedParams, 10_650_000);
  assert.equal(
    Math.round(nanoGptParams(6, 384, 65, true) / 1e4) / 100,
    10.65,
    "the reference formula gives the log's count",
  );
  const runs = tmp();
  assert.equal(await main(['import', fx('shakespeare-char.log'), '--baseline', 'shakespeare-char', '--runs', runs]), 0);
  const [run] = new RunStore(runs).list({ scale: 'imported' });
  const src = (
    new RunStore(runs).get(run.id)!.spec as unknown as {
      imported: { flopsPerStep: number; tokensPerStep: number; axes: string[]; flopsFrom: string };
    }
  ).imported;
  // vanilla nanoGPT: pre-LayerNorm blocks, learned positions, no bias (train.py's default), flash attention
  const want = parseModelConfig({
    vocabSize: 65,
    blockSize: 256,
    nLayer: 6,
    nHead: 6,
    nEmbd: 384,
    nKvHead: 6,
    dropout: 0.2,
    bias: false,
    norm: 'layernorm',
    positions: 'learned',
    ropeBase: 10000,
    attnKernel: 'fused',
    sparse: { blockSize: 64, localBlocks: 1, selectedBlocks: 16 },
    mlp: 'gelu',
    mlpHidden: 1536,
    moe: { experts: 4, topK: 2, auxLossWeight: 0.01 },
  });
  assert.equal(src.tokensPerStep, 64 * 256);
  assert.equal(src.flopsPerStep, stepFlops(want, 64 * 256).total);
  assert.equal(src.flopsFrom, 'log');
  assert.ok(src.axes.includes('flops'), `axes ${src.axes}`);
  const rows = new RunStore(runs).get(run.id)!.metrics();
  assert.equal(rows[2].flops, 200 * stepFlops(want, 64 * 256).total);
  // a printout that does not give the reported model (here: one layer more) is not guessed from
  const other = path.join(tmp(), 'seven-layers.log');
  fs.writeFileSync(other, text.replace('n_layer = 6\n', 'n_layer = 7\n'));
  const runs2 = tmp();
  const lines: string[] = [];
  const log0 = console.log;
  console.log = (s: string) => void lines.push(String(s));
  try {
    assert.equal(await main(['import', other, '--baseline', 'seven-layers', '--runs', runs2]), 0);
  } finally {
    console.log = log0;
  }
  assert.match(
    lines.join('\n'),
    /seven-layers: no FLOPs axis: .*7 layers.*12\.42M parameters but the log reports 10\.65M; give --flops-per-step or --model-config/,
  );
  const [r2] = new RunStore(runs2).list({ scale: 'imported' });
  assert.ok(Number.isNaN(new RunStore(runs2).get(r2.id)!.metrics()[1].flops));
});

test("the paper's fork's logs (torchrun x4, config importing its base, wandb lines): runs, tokens and FLOPs per step, and the CEG table", async () => {
  const { stepFlops } = await import('../src/model/flops.js');
  const { parseModelConfig } = await import('../src/config.js');
  const fork = (f: string) => fx(path.join('paper-fork', f));
  const rope = parseNanoGptLog('r.log', fs.readFileSync(fork('run4_compact_rope.log'), 'utf8'));
  assert.deepEqual(
    rope.points.map((p) => p.step),
    [0, 500, 1000, 1500, 2000],
  );
  assert.equal(rope.tokensPerStep, 262144, '4 GPUs x 128 x 512 (gradient accumulation 4 split over the 4 ranks)');
  assert.deepEqual(rope.configImports, ['config.compact.train_gpt2_compact']);
  assert.equal(rope.config?.use_rope, 'True');
  assert.equal(rope.config?.wandb_run_name, "'compact - rope'");
  assert.equal(rope.vocabSize, 50304);
  assert.equal(rope.reportedParams, 29_930_000);
  assert.equal(
    Math.round(nanoGptParams(6, 384, 50304, false) / 1e4) / 100,
    29.93,
    "the reference formula gives the fork's count",
  );
  const secs = rope.points.map((p) => p.seconds as number);
  for (let i = 1; i < secs.length; i++) assert.ok(secs[i] > secs[i - 1]);

  const runs = tmp();
  assert.equal(
    await main([
      'import',
      fork('run1_compact_no_features.log'),
      fork('run4_compact_rope.log'),
      '--baseline',
      'run1_compact_no_features',
      '--scale',
      'compact-fork',
      '--runs',
      runs,
    ]),
    0,
  );
  // the paper's compact base config (config/compact/train_gpt2_compact.py): no LayerNorm, learned
  // positions, plain attention, bias off; RoPE replaces the position table
  const compact = (positions: 'learned' | 'rope') =>
    parseModelConfig({
      vocabSize: 50304,
      blockSize: 512,
      nLayer: 6,
      nHead: 6,
      nEmbd: 384,
      nKvHead: 6,
      dropout: 0.2,
      bias: false,
      norm: 'none',
      positions,
      ropeBase: 10000,
      attnKernel: 'plain',
      sparse: { blockSize: 64, localBlocks: 1, selectedBlocks: 16 },
      mlp: 'gelu',
      mlpHidden: 1536,
      moe: { experts: 4, topK: 2, auxLossWeight: 0.01 },
    });
  const store = new RunStore(runs);
  const fps = Object.fromEntries(
    store
      .list({ scale: 'compact-fork' })
      .map((r) => [
        r.innovation,
        (store.get(r.id)!.spec as unknown as { imported: { flopsPerStep: number } }).imported.flopsPerStep,
      ]),
  );
  assert.equal(fps.baseline, stepFlops(compact('learned'), 262144).total);
  assert.equal(fps.run4_compact_rope, stepFlops(compact('rope'), 262144).total);
  const t = byId(await reportJson(runs, 'compact-fork'));
  const rows = t.run4_compact_rope;
  assert.ok(Number.isFinite(rows.ceg_flops as number), `a FLOPs CEG: ${JSON.stringify(rows)}`);
  assert.ok((rows.ceg_steps as number) > 1, 'RoPE reaches the baseline loss in fewer steps in these logs');
  // same tokens per step; FLOPs per step differ only by RoPE's rotations: CEG on FLOPs = on steps x the FLOPs ratio
  assert.ok(
    Math.abs((rows.ceg_flops as number) - (rows.ceg_steps as number) * (fps.baseline / fps.run4_compact_rope)) < 1e-9,
  );

  // a fork config importing a base that is not the paper's: its model is unknown, no FLOPs axis
  const dir = tmp();
  const other = path.join(dir, 'mine.log');
  fs.writeFileSync(
    other,
    fs
      .readFileSync(fork('run4_compact_rope.log'), 'utf8')
      .replaceAll('config.compact.train_gpt2_compact', 'config.mine.base'),
  );
  const lines: string[] = [];
  const log0 = console.log;
  console.log = (s: string) => void lines.push(String(s));
  try {
    assert.equal(await main(['import', other, '--baseline', 'mine', '--runs', path.join(dir, 'runs')]), 0);
  } finally {
    console.log = log0;
  }
  assert.match(
    lines.join('\n'),
    /mine: no FLOPs axis: its config imports config\.mine\.base, whose values the log does not print/,
  );
});
