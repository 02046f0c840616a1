import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformCell } from '../src/notebook/transform.js';
import { createCellRunner, NotebookError, runNotebook } from '../src/notebook/executor.js';
import { makeNotebook, readNotebook, type CodeCell } from '../src/notebook/nbformat.js';
import { chromiumPath } from '../src/report/export.js';
import type { AxisCeg, CegRow, CegTable } from '../src/ceg/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
type T = Record<string, any>;

test('transformCell: top-level names become shared, types stripped, last expression captured', () => {
  const t = transformCell(
    "import { a as b, type X } from './m.js';\nimport * as ns from 'node:path';\nconst { p, q: [r] } = f() as X;\nlet u: number;\nfunction g(x: number): number { return x; }\nclass K {}\ng(1) + 1",
  );
  assert.deepEqual(t.names.sort(), ['K', 'b', 'g', 'ns', 'p', 'r', 'u'].sort());
  assert.equal(t.hasResult, true);
  assert.match(t.code, /__ceg\.import\("\.\/m\.js"\)/);
  assert.doesNotMatch(t.code, /: number|as X/);
  assert.ok(t.code.indexOf('g = function g') < t.code.indexOf('__ceg.import'), 'function declarations are hoisted');
  assert.equal(transformCell('console.log(1);\nconst z = 2;').hasResult, false);
  assert.match(transformCell("const m = await import('./x.js');").code, /__ceg\.import\('\.\/x\.js'\)/);
});

test('cell runner: variables, functions and classes persist across cells; top-level await', async () => {
  const r = createCellRunner(root);
  await r.run('let total: number = 1;\nconst [a, b] = [2, 3];\nfunction add(x: number, y: number) { return x + y; }');
  await r.run('total = add(total, a * b);\nclass Box { constructor(public v: number) {} }');
  const out = await r.run('const later = await new Promise<number>((res) => setTimeout(() => res(5), 1));\nnew Box(total + later).v');
  assert.deepEqual(out, { hasResult: true, value: 1 + 2 * 3 + 5 });
  const imp = await r.run("import { causalMask } from './src/report/figures.js';\ncausalMask(2)");
  assert.deepEqual(imp.value, [[1, 0], [1, 1]]);
  // the portable style that also works under the tslab kernel: computed specifier, .ts extension
  const dyn = await r.run("const lab = './src';\nconst { causalMask: cm } = await import(lab + '/report/figures.ts');\ncm(1)");
  assert.deepEqual(dyn.value, [[1]]);
});

async function tempNotebookDir(): Promise<string> {
  // inside the project so that '../src/...' imports resolve as they do from notebooks/
  const base = path.join(root, 'notebooks');
  await mkdir(base, { recursive: true });
  return mkdtemp(path.join(base, '.test-'));
}

test('runNotebook: stream, display_data (Plotly JSON + PNG), execute_result, execution counts', async () => {
  const dir = await tempNotebookDir();
  try {
    const nb = makeNotebook([
      { type: 'markdown', source: '# A test' },
      { source: "import { show } from '../../src/report/notebook.js';\nimport { expertLoadHistogram } from '../../src/report/figures.js';\nconst counts = [3, 1, 2];\nconsole.log('experts', counts.length);" },
      { source: "console.error('careful');\nawait show(expertLoadHistogram(counts), { width: 320, height: 200 });\nconsole.log('after');\ncounts.reduce((s, c) => s + c, 0)" },
      { source: 'process.env.CEG_SCALE ?? null' },
    ]);
    const prev = process.env.CEG_SCALE;
    process.env.CEG_SCALE = 'smoke';
    const done = await runNotebook(nb, { name: 'test.ipynb', dir }).finally(() => {
      if (prev === undefined) delete process.env.CEG_SCALE;
      else process.env.CEG_SCALE = prev;
    });
    const [c1, c2, c3] = done.cells.slice(1) as CodeCell[];
    assert.equal(done.cells[0].cell_type, 'markdown');
    assert.deepEqual([c1.execution_count, c2.execution_count, c3.execution_count], [1, 2, 3]);
    assert.deepEqual(c1.outputs, [{ output_type: 'stream', name: 'stdout', text: ['experts 3\n'] }]);
    const kinds = c2.outputs.map((o: T) => o.output_type + (o.name ? ':' + o.name : ''));
    assert.deepEqual(kinds, ['stream:stderr', 'display_data', 'stream:stdout', 'execute_result']);
    const disp = c2.outputs[1] as T;
    assert.deepEqual(disp.data['application/vnd.plotly.v1+json'].data[0].y, [3, 1, 2]);
    if (chromiumPath()) {
      const png = Buffer.from(disp.data['image/png'], 'base64');
      assert.equal(png.subarray(1, 4).toString('ascii'), 'PNG');
      assert.equal(png.readUInt32BE(16), 320);
    }
    assert.equal((c2.outputs[3] as T).data['text/plain'], '6');
    assert.equal((c3.outputs[0] as T).data['text/plain'], "'smoke'");
    assert.deepEqual(nb.cells[1].cell_type === 'code' && (nb.cells[1] as CodeCell).outputs, [], 'input notebook not mutated');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('runNotebook: a throwing cell fails with the notebook name, the cell number and the error', async () => {
  const nb = makeNotebook([
    { source: 'const x = 1;' },
    { type: 'markdown', source: 'text' },
    { source: "if (x === 1) throw new RangeError('bad value 42');" },
    { source: "console.log('never');" },
  ]);
  await assert.rejects(runNotebook(nb, { name: 'nb/fail.ipynb', dir: root }), (e: unknown) => {
    assert.ok(e instanceof NotebookError);
    assert.equal(e.cell, 3);
    assert.equal(e.message, 'nb/fail.ipynb: cell 3 failed: RangeError: bad value 42');
    return true;
  });
});

test('npm run notebooks (scripts/notebooks.ts): writes executed notebooks; exit 1 naming the failing cell', async () => {
  const dir = await tempNotebookDir();
  try {
    const ok = makeNotebook([{ source: "const s: string = 'hi';\nconsole.log(s, process.env.CEG_SCALE);" }]);
    await writeFile(path.join(dir, '01-ok.ipynb'), JSON.stringify(ok));
    const out = path.join(dir, 'out');
    const run = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'scripts/notebooks.ts'), ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, CEG_SCALE: '' } });
    const r1 = run(['--dir', dir, '--out', out, '--scale', 'micro']);
    assert.equal(r1.status, 0, r1.stderr);
    const done = await readNotebook(path.join(out, '01-ok.ipynb'));
    assert.deepEqual((done.cells[0] as CodeCell).outputs, [{ output_type: 'stream', name: 'stdout', text: ['hi micro\n'] }]);
    const bad = makeNotebook([{ source: 'const y = 2;' }, { source: 'y.nope.deeper;' }]);
    await writeFile(path.join(dir, '02-bad.ipynb'), JSON.stringify(bad));
    const r2 = run(['--dir', dir, '--out', out]);
    assert.equal(r2.status, 1);
    assert.match(r2.stderr, /02-bad\.ipynb: cell 2 failed: TypeError: Cannot read properties of undefined/);
    assert.match(await readFile(path.join(out, '01-ok.ipynb'), 'utf8'), /"nbformat": 4/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ PNG shrinking (src/notebook/png.ts)

import { deflateSync } from 'node:zlib';
import { decodePng, shrinkPng } from '../src/notebook/png.js';

/** A plain RGBA PNG written the simplest way (filter 0 on every row), as an independent reference. */
function plainPng(width: number, height: number, rgba: Uint8Array): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 6;
  const raw = Buffer.alloc(height * (width * 4 + 1));
  for (let y = 0; y < height; y++) Buffer.from(rgba.subarray(y * width * 4, (y + 1) * width * 4)).copy(raw, y * (width * 4 + 1) + 1);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 0 })), chunk('IEND', Buffer.alloc(0))]);
}

test('shrinkPng: exact pixels back, smaller; palette for few colours, RGB for many opaque ones', () => {
  const w = 64, h = 40;
  // few colours: a plot-like picture (white background, two coloured lines)
  const few = new Uint8Array(w * h * 4).fill(255);
  for (let x = 0; x < w; x++) {
    const y1 = Math.floor((x * h) / w), y2 = h - 1 - Math.floor((x * h) / (2 * w));
    few.set([0, 0, 0, 255], (y1 * w + x) * 4);
    few.set([230, 159, 0, 255], (y2 * w + x) * 4);
  }
  // many colours: a smooth gradient (w*h distinct colours > 256), opaque
  const many = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) many.set([i & 255, (i >> 8) & 255, (3 * i) & 255, 255], i * 4);
  // translucent pixels must survive (palette with tRNS)
  const alpha = few.slice();
  alpha.set([10, 20, 30, 128], 0);
  for (const [name, px, colorType] of [['few', few, 3], ['many', many, 2], ['alpha', alpha, 3]] as const) {
    const input = plainPng(w, h, px);
    assert.deepEqual(Buffer.from(decodePng(input)!.rgba), Buffer.from(px), `${name}: decoder reads the reference`);
    const out = shrinkPng(input);
    assert.ok(out.length < input.length, `${name}: ${out.length} < ${input.length}`);
    assert.equal(out[25], colorType, `${name}: colour type`);
    const back = decodePng(out)!;
    assert.deepEqual([back.width, back.height], [w, h]);
    assert.deepEqual(Buffer.from(back.rgba), Buffer.from(px), `${name}: same pixels`);
  }
  const notPng = Buffer.from('not a png');
  assert.deepEqual(shrinkPng(notPng), notPng);
});

// ------------------------------------------------------------------ the notebooks themselves

import { readdirSync, readFileSync } from 'node:fs';
import { cellSource } from '../src/notebook/nbformat.js';

import ts from 'typescript';

/** Names used as shorthand object properties (`{ a, b }`) anywhere in a cell. */
function shorthandNames(src: string): string[] {
  const sf = ts.createSourceFile('cell.ts', src, ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  const visit = (n: ts.Node) => {
    if (ts.isShorthandPropertyAssignment(n)) out.push(n.name.text);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

test('notebooks/*.ipynb: tslab kernelspec, portable dynamic import, cells transpile, every lab.* name exists', async () => {
  const lab = (await import('../src/lab.js')) as Record<string, unknown>;
  const dir = path.join(root, 'notebooks');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ipynb')).sort();
  assert.ok(files.length >= 11, `expected the 11 notebooks, found ${files.join(', ')}`);
  for (const f of files) {
    const nb = JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
    assert.equal(nb.metadata.kernelspec.name, 'tslab', f);
    const code = nb.cells.filter((c: T) => c.cell_type === 'code').map((c: T) => cellSource(c as CodeCell));
    assert.ok(code.length > 0, f);
    assert.match(code[0], /await import\(src \+ '\/lab\.ts'\)/, `${f}: setup cell imports the lab dynamically`);
    const earlier = new Set<string>();
    for (const [i, src] of code.entries()) {
      assert.doesNotMatch(src, /^\s*import\s.*from\s+['"]\.\.\//m, `${f}: code cell ${i + 1} has a static import from outside notebooks/`);
      assert.doesNotThrow(() => transformCell(src), `${f}: code cell ${i + 1} transpiles`);
      // tslab rewrites names from earlier cells, but not inside shorthand properties: `{ scale }` fails there
      const own = new Set(transformCell(src).names);
      const bad = shorthandNames(src).filter((n) => earlier.has(n) && !own.has(n));
      assert.deepEqual(bad, [], `${f}: code cell ${i + 1} uses earlier cells' names as shorthand properties (breaks under tslab): write { name: name }`);
      for (const n of own) earlier.add(n);
      for (const m of src.matchAll(/(?<![\w/'])lab\.(\w+)(?:\.(\w+))?/g)) {
        assert.ok(m[1] in lab, `${f}: lab.${m[1]} is not exported by src/lab.ts`);
        if (m[2] && (m[1] === 'fig' || m[1] === 'demo')) assert.ok(m[2] in (lab[m[1]] as object), `${f}: lab.${m[1]}.${m[2]} does not exist`);
      }
      assert.doesNotMatch(src, /^\s*lab\.show\(/m, `${f}: code cell ${i + 1}: await lab.show(...) so figures land in their own cell`);
    }
  }
});

// ------------------------------------------------------------------ lab facade (src/lab.ts)

import { initEngine, tf } from '../src/engine/index.js';
import type { RunRecord } from '../src/runs/index.js';

function fakeRun(innovation: string, scale: string, seed: number, pts: [number, number][]): RunRecord {
  return {
    id: `${innovation}-${scale}-${seed}`, innovation, scale, seed, backend: 'cpu', cached: true,
    metrics: pts.map(([flops, valLoss], i) => ({ step: (i + 1) * 10, tokens: (i + 1) * 100, flops, seconds: i + 1, valLoss, trainLoss: null, lr: 0 })) as unknown as RunRecord['metrics'],
  };
}

test('lab: cegSummary / explainCeg read the CEG table; cegBars shows a note when nothing is finite', async () => {
  const lab = await import('../src/lab.js');
  const one = (x: Partial<AxisCeg> = {}): AxisCeg => ({ ceg: 1, ciLow: null, ciHigh: null, dnr: false, nDnr: 0, ...x });
  const row = (innovation: string, label: string, extra: { paper?: Partial<CegRow['paper']>; steps?: Partial<AxisCeg>; flops?: Partial<AxisCeg>; seconds?: Partial<AxisCeg> }): CegRow => ({
    innovation, label, category: 'compute-independent', imported: false, nSeeds: 3, nDiverged: 0, bestValLoss: 2.5,
    paper: { ceg: 1.1, dnr: false, nDnr: 0, auxCeg: null, adjusted: false, ...extra.paper },
    ceg: { steps: one(extra.steps), flops: one(extra.flops), seconds: one(extra.seconds) },
  });
  const typed = (rows: CegRow[]): CegTable => ({ scale: 'micro', axes: ['steps', 'flops', 'seconds'], rows });
  const table = typed([
    row('baseline', 'Baseline', {}),
    row('rope', 'RoPE', { flops: { ceg: 1.25, ciLow: 1.1, ciHigh: 1.4, nDnr: 1 }, seconds: { dnr: true, ceg: null } }),
  ]);
  const s = lab.cegSummary(table).objects() as Record<string, unknown>[];
  assert.equal(s[1]['CEG flops'], '1.250 [1.100, 1.400] (1 of 3 DNR)');
  assert.equal(s[1]['CEG seconds'], 'DNR');
  assert.equal(s[1]['paper method (steps, 8-pt mean)'], '1.100');
  const text = lab.explainCeg(table, 'rope');
  assert.match(text, /FLOPs: CEG 1\.250 \(95% interval 1\.100–1\.400 over 3 seeds\): RoPE needed 0\.80× the baseline's FLOPs/);
  assert.match(text, /wall-clock seconds: DNR/);
  const allDnr = typed([row('baseline', 'Baseline', {}), row('mqa', 'MQA', { flops: { dnr: true, ceg: null }, paper: { dnr: true } })]);
  const note = lab.fig.cegBars(allDnr, 'flops');
  assert.deepEqual(note.data, []);
  assert.match(JSON.stringify(note.layout), /MQA did not reach the target/);
});

test('lab: scalingAnalysis and verdicts never throw on thin ladders; a clean power law is recovered', async () => {
  const lab = await import('../src/lab.js');
  const law = (C: number) => 1 + 10 * Math.pow(C, -0.3);
  const Cs = [1e6, 1e7, 1e8, 1e9];
  const rungs = ['micro-r0', 'micro-r1', 'micro-r2', 'micro-r3'];
  const runs: RunRecord[] = [];
  for (const seed of [1, 2, 3])
    rungs.forEach((rung, i) => {
      const C = Cs[i] * (1 + 0.01 * seed);
      runs.push(fakeRun('baseline', rung, seed, [[C / 2, law(C / 2) + 0.5], [C, law(C)]]));
      runs.push(fakeRun('layernorm', rung, seed, [[C, law(2 * C)]])); // a constant CEG of 2
    });
  const a = lab.scalingAnalysis(runs);
  assert.deepEqual(a.skipped, []);
  const base = a.fits.find((f) => f.innovation === 'baseline')!;
  assert.ok(Math.abs(base.fit.alpha - 0.3) < 0.02 && Math.abs(base.fit.E - 1) < 0.05, JSON.stringify(base.fit));
  assert.equal(base.seedFits.length, 3);
  const v = lab.verdicts(runs).objects() as Record<string, unknown>[];
  assert.equal(v.length, 1);
  assert.equal(v[0].innovation, 'layernorm');
  assert.ok(Math.abs((v[0].ceg_at_smallest as number) - 2) < 0.1, String(v[0].ceg_at_smallest));
  // thin ladders: two rungs only, and no baseline at all: notes, not exceptions
  const thin = runs.filter((r) => r.scale === 'micro-r0' || r.scale === 'micro-r1');
  const t = lab.scalingAnalysis(thin);
  assert.deepEqual(t.fits, []);
  assert.match(t.skipped[0].reason, /2 ladder rung\(s\).*at least 3/);
  const vt = lab.verdicts(thin).objects() as Record<string, unknown>[];
  assert.equal(vt[0].verdict, 'undetermined');
  assert.match(String(vt[0].reason), /no baseline fit/);
  assert.deepEqual(lab.fig.scalingFits([]).data, []);
  assert.deepEqual(lab.fig.cegVsCompute(t.fits).data, []);
});

test('lab: peakBufferBytes is the exact high-water mark of new buffers; attention peaks: plain holds T×T, fused does not', async () => {
  await initEngine({ backend: 'cpu' });
  const lab = await import('../src/lab.js');
  const keep = tf.zeros([100]); // live before: not counted
  const { peak: high } = lab.peakBufferBytes(() => {
    const a = tf.zeros([1000]); // 4000 bytes
    const b = tf.reshape(a, [10, 100]); // a view: same buffer, not counted again
    const c = tf.ones([500]); // +2000 -> 6000
    tf.dispose([a, b, c]);
    const d = tf.ones([1200]); // 4800 < 6000
    tf.dispose(d);
  });
  assert.equal(high, 6000);
  keep.dispose();
  const { causalMask } = await import('../src/model/attention/plain.js');
  for (const T of [128, 256]) causalMask(T); // plain's mask is kept once per (backend, T): a cache, not a leak
  const before = tf.memory().numTensors;
  const rows = lab.measureAttention({ T: [128, 256], kernels: ['plain', 'fused'], B: 1, H: 1, hs: 8, repeats: 1, fusedBlock: 32 }).objects() as Record<string, number>[];
  const peak = (T: number, k: string) => rows.find((r) => r.T === T && (r.kernel as unknown) === k)!.peak_mib_fwd_bwd * 2 ** 20;
  for (const T of [128, 256]) assert.ok(peak(T, 'plain') >= 2 * T * T * 4, `plain peak ${peak(T, 'plain')} B holds at least two T×T buffers`);
  // doubling T: plain's peak grows ~4x (T² buffers), fused's ~2x (T·hs buffers and fixed tiles)
  assert.ok(peak(256, 'plain') / peak(128, 'plain') > 3, `plain ${peak(128, 'plain')} -> ${peak(256, 'plain')}`);
  assert.ok(peak(256, 'fused') / peak(128, 'fused') < 2.5, `fused ${peak(128, 'fused')} -> ${peak(256, 'fused')}`);
  assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
});
