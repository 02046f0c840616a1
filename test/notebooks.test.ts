import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { codeCells, makeNotebook, readNotebook, type CodeCell, type Notebook } from '../scripts/ipynb.js';
import { chromiumPath } from '../src/report/export.js';
import type { AxisCeg, CegRow, CegTable } from '../src/ceg/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
type T = Record<string, any>;

async function tempNotebookDir(): Promise<string> {
  // inside notebooks/ so that 'ceg-lab/...' resolves through node_modules/ceg-lab (scripts/link-lab.mjs), as from the notebooks
  const base = path.join(root, 'notebooks');
  await mkdir(base, { recursive: true });
  return mkdtemp(path.join(base, '.test-'));
}

const runScript = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'scripts/notebooks.ts'), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, CEG_SCALE: '' },
  });

const outputsOf = (nb: Notebook) =>
  nb.cells.filter((c): c is CodeCell => c.cell_type === 'code').map((c) => c.outputs as T[]);

test('node_modules/ceg-lab (made by postinstall) links to src/, and no node_modules path is tracked by git', () => {
  assert.equal(realpathSync(path.join(root, 'node_modules/ceg-lab')), realpathSync(path.join(root, 'src')));
  const tracked = spawnSync('git', ['ls-files', '--', ':(glob)**/node_modules/**'], { cwd: root, encoding: 'utf8' });
  if (tracked.status === 0) assert.equal(tracked.stdout, '', 'no tracked path under a node_modules folder');
});

test('npm run notebooks runs cells through tslab: names shared, stream and display outputs, figures as Plotly JSON + PNG', async () => {
  const dir = await tempNotebookDir();
  try {
    const ok = makeNotebook([
      { type: 'markdown', source: '# A test' },
      {
        source:
          "import { show, notebookProgress } from 'ceg-lab/report/notebook';\nimport { expertLoadHistogram } from 'ceg-lab/report/figures';\nconst counts: number[] = [3, 1, 2];\nconsole.log('experts', counts.length, process.env.CEG_SCALE);",
      },
      {
        source:
          "console.error('careful');\nawait show(expertLoadHistogram(counts), { width: 320, height: 200 });\nconsole.log('after');\ncounts.reduce((s, c) => s + c, 0)",
      },
      {
        source:
          "const live = notebookProgress()!;\nlive.write('\\rrun 1 step 1');\nlive.write('\\rrun 1 step 2\\x1b[K');\nlive.write('\\nrun 2 done\\n');",
      },
      { source: "const gone = notebookProgress()!;\ngone.write('\\rstep 1');\ngone.close();\nconsole.log('closed');" },
      { source: "const quiet = notebookProgress()!;\nquiet.write('run 3 cached\\n');\nquiet.close();" },
    ]);
    await writeFile(path.join(dir, '01-ok.ipynb'), JSON.stringify(ok));
    const out = path.join(dir, 'out');
    const r = runScript(['--dir', dir, '--out', out, '--scale', 'smoke', '--runs', path.join(dir, 'runs')]);
    assert.equal(r.status, 0, r.stderr);
    const done = await readNotebook(path.join(out, '01-ok.ipynb'));
    const [c1, c2, c3, c4, c5] = outputsOf(done);
    assert.deepEqual(
      done.cells.filter((c) => c.cell_type === 'code').map((c) => (c as CodeCell).execution_count),
      [1, 2, 3, 4, 5],
    );
    assert.deepEqual(c1, [{ output_type: 'stream', name: 'stdout', text: ['experts 3 smoke\n'] }]);
    // tslab prints a cell's last expression with console.log (a stream, as in the kernel)
    assert.deepEqual(
      c2.map((o) => o.output_type + (o.name ? ':' + o.name : '')),
      ['stream:stderr', 'display_data', 'stream:stdout'],
    );
    assert.deepEqual(c2[2].text, ['after\n', '6\n']);
    const data = c2[1].data as T;
    assert.deepEqual(data['application/vnd.plotly.v1+json'].data[0].y, [3, 1, 2]);
    assert.ok(!('text/html' in data) && JSON.stringify(data).length < 200_000, 'no plotly.js embedded');
    if (chromiumPath()) {
      const png = Buffer.from(data['image/png'], 'base64');
      assert.equal(png.subarray(1, 4).toString('ascii'), 'PNG');
      assert.equal(png.readUInt32BE(16), 320);
    }
    // one display updated in place: the last state is kept; a closed one is removed
    assert.deepEqual(c3, [
      { output_type: 'display_data', data: { 'text/plain': 'run 1 step 2\nrun 2 done' }, metadata: {} },
    ]);
    assert.deepEqual(c4, [{ output_type: 'stream', name: 'stdout', text: ['closed\n'] }]);
    assert.deepEqual(c5, [], 'no progress bar drawn (runs only loaded): no display at all');
    assert.deepEqual((ok.cells[1] as CodeCell).outputs, [], 'input notebook not written over');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('npm run notebooks: a type error or a throwing cell stops with exit 1 naming the notebook and the cell', async () => {
  const dir = await tempNotebookDir();
  try {
    await writeFile(
      path.join(dir, '01-types.ipynb'),
      JSON.stringify(
        makeNotebook([
          { source: 'const y = 2;' },
          { type: 'markdown', source: 'x' },
          { source: "const n: number = 'text';" },
        ]),
      ),
    );
    await writeFile(
      path.join(dir, '02-throws.ipynb'),
      JSON.stringify(
        makeNotebook([
          { source: 'const y: any = 2;' },
          { source: 'y.nope.deeper;' },
          { source: "console.log('never');" },
        ]),
      ),
    );
    const out = path.join(dir, 'out');
    const r1 = runScript(['--dir', dir, '--out', out, path.join(dir, '01-types.ipynb')]);
    assert.equal(r1.status, 1);
    assert.match(r1.stderr, /01-types\.ipynb: cell 3 failed: .*Type 'string' is not assignable to type 'number'/);
    const r2 = runScript(['--dir', dir, '--out', out, path.join(dir, '02-throws.ipynb')]);
    assert.equal(r2.status, 1);
    assert.match(r2.stderr, /02-throws\.ipynb: cell 2 failed: TypeError: Cannot read properties of undefined/);
    assert.doesNotMatch(r2.stderr + r2.stdout, /never/);
    await assert.rejects(readFile(path.join(out, '02-throws.ipynb')), 'a failed notebook is not written');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ the notebooks themselves

/** Names a cell declares at top level (shared with later cells). */
function declaredNames(src: string): string[] {
  const sf = ts.createSourceFile('cell.ts', src, ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  const bind = (n: ts.BindingName) => {
    if (ts.isIdentifier(n)) out.push(n.text);
    else for (const el of n.elements) if (!ts.isOmittedExpression(el)) bind(el.name);
  };
  for (const st of sf.statements) {
    if (ts.isVariableStatement(st)) st.declarationList.declarations.forEach((d) => bind(d.name));
    else if ((ts.isFunctionDeclaration(st) || ts.isClassDeclaration(st)) && st.name) out.push(st.name.text);
    else if (ts.isImportDeclaration(st) && st.importClause) {
      const c = st.importClause;
      if (c.name) out.push(c.name.text);
      if (c.namedBindings && ts.isNamespaceImport(c.namedBindings)) out.push(c.namedBindings.name.text);
      else if (c.namedBindings) for (const el of c.namedBindings.elements) out.push(el.name.text);
    }
  }
  return out;
}

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

test('shorthandNames / declaredNames see what the notebook check below relies on', () => {
  assert.deepEqual(
    declaredNames(
      "import * as lab from 'x';\nimport { a as b } from 'y';\nconst { p, q: [r] } = f();\nfunction g() {}\nclass K {}",
    ),
    ['lab', 'b', 'p', 'r', 'g', 'K'],
  );
  assert.deepEqual(shorthandNames('f({ scale, seeds: s, ...rest });'), ['scale']);
});

test('notebooks/*.ipynb: tslab kernelspec, the lab imported statically as ceg-lab/lab, tslab-safe cells', () => {
  const dir = path.join(root, 'notebooks');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.ipynb'))
    .sort();
  assert.ok(files.length >= 11, `expected the 11 notebooks, found ${files.join(', ')}`);
  for (const f of files) {
    const nb = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Notebook;
    assert.equal((nb.metadata.kernelspec as T).name, 'tslab', f);
    const code = codeCells(nb).map((c) => c.source);
    assert.ok(code.length > 0, f);
    assert.match(
      code[0],
      /^import \* as lab from 'ceg-lab\/lab';$/m,
      `${f}: the setup cell imports the lab statically (typed)`,
    );
    const earlier = new Set<string>();
    for (const [i, src] of code.entries()) {
      assert.doesNotMatch(
        src,
        /import\(\s*src\b|\/lab\.ts'/,
        `${f}: code cell ${i + 1} loads the lab dynamically (untyped)`,
      );
      // tslab rewrites names from earlier cells, but not inside shorthand properties: `{ scale }` fails there
      const own = new Set(declaredNames(src));
      const bad = shorthandNames(src).filter((n) => earlier.has(n) && !own.has(n));
      assert.deepEqual(
        bad,
        [],
        `${f}: code cell ${i + 1} uses earlier cells' names as shorthand properties (breaks under tslab): write { name: name }`,
      );
      for (const n of own) earlier.add(n);
      assert.doesNotMatch(
        src,
        /^\s*lab\.show\(/m,
        `${f}: code cell ${i + 1}: await lab.show(...) so figures land in their own cell`,
      );
    }
  }
});

// ------------------------------------------------------------------ lab facade (src/lab.ts)

import { initEngine, tf } from '../src/engine/index.js';
import type { RunRecord } from '../src/runs/index.js';

function fakeRun(innovation: string, scale: string, seed: number, pts: [number, number][]): RunRecord {
  return {
    id: `${innovation}-${scale}-${seed}`,
    innovation,
    scale,
    seed,
    backend: 'cpu',
    cached: true,
    metrics: pts.map(([flops, valLoss], i) => ({
      step: (i + 1) * 10,
      tokens: (i + 1) * 100,
      flops,
      seconds: i + 1,
      valLoss,
      trainLoss: null,
      lr: 0,
    })) as unknown as RunRecord['metrics'],
  };
}

test('lab: cegSummary / explainCeg read the CEG table; cegBars shows a note when nothing is finite', async () => {
  const lab = await import('../src/lab.js');
  const one = (x: Partial<AxisCeg> = {}): AxisCeg => ({ ceg: 1, ciLow: null, ciHigh: null, dnr: false, nDnr: 0, ...x });
  const row = (
    innovation: string,
    label: string,
    extra: {
      paper?: Partial<CegRow['paper']>;
      steps?: Partial<AxisCeg>;
      flops?: Partial<AxisCeg>;
      seconds?: Partial<AxisCeg>;
    },
  ): CegRow => ({
    innovation,
    label,
    category: 'compute-independent',
    imported: false,
    nSeeds: 3,
    nDiverged: 0,
    bestValLoss: 2.5,
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
  assert.match(
    text,
    /FLOPs: CEG 1\.250 \(95% interval 1\.100–1\.400 over 3 seeds\): RoPE needed 0\.80× the baseline's FLOPs/,
  );
  assert.match(text, /wall-clock seconds: DNR/);
  const allDnr = typed([
    row('baseline', 'Baseline', {}),
    row('mqa', 'MQA', { flops: { dnr: true, ceg: null }, paper: { dnr: true } }),
  ]);
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
      runs.push(
        fakeRun('baseline', rung, seed, [
          [C / 2, law(C / 2) + 0.5],
          [C, law(C)],
        ]),
      );
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
  const rows = lab
    .measureAttention({ T: [128, 256], kernels: ['plain', 'fused'], B: 1, H: 1, hs: 8, repeats: 1, fusedBlock: 32 })
    .objects() as Record<string, number>[];
  const peak = (T: number, k: string) =>
    rows.find((r) => r.T === T && (r.kernel as unknown) === k)!.peak_mib_fwd_bwd * 2 ** 20;
  for (const T of [128, 256])
    assert.ok(peak(T, 'plain') >= 2 * T * T * 4, `plain peak ${peak(T, 'plain')} B holds at least two T×T buffers`);
  // doubling T: plain's peak grows ~4x (T² buffers), fused's ~2x (T·hs buffers and fixed tiles)
  assert.ok(peak(256, 'plain') / peak(128, 'plain') > 3, `plain ${peak(128, 'plain')} -> ${peak(256, 'plain')}`);
  assert.ok(peak(256, 'fused') / peak(128, 'fused') < 2.5, `fused ${peak(128, 'fused')} -> ${peak(256, 'fused')}`);
  assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
});

// ------------------------------------------------------------------ npm run typecheck over the cells (scripts/typecheck-notebooks.ts)

import { checkNotebooks, notebookModule } from '../scripts/typecheck-notebooks.js';

test('typecheck-notebooks: cells are one strict module per notebook; errors name the notebook, cell and line', async () => {
  const dir = await tempNotebookDir();
  try {
    const file = path.join(dir, 'types.ipynb');
    await writeFile(
      file,
      JSON.stringify(
        makeNotebook([
          {
            source:
              "import { scaleNames } from 'ceg-lab/scales';\nconst names = scaleNames();\nconst first = await Promise.resolve(names[0]);",
          },
          { type: 'markdown', source: 'text' },
          {
            source:
              'const ok: string = first;\nconst n: number = names.length;\nconst bad: number = first;\nscaleNames().nope();',
          },
          { source: 'const implicit = (x) => x;' },
        ]),
      ),
    );
    const errors = checkNotebooks([await notebookModule(file)]);
    const rel = path.relative(process.cwd(), file);
    assert.deepEqual(
      errors.map((e) => e.replace(/: TS\d+: .*/s, '')),
      [`${rel}: cell 3, line 3:7`, `${rel}: cell 3, line 4:14`, `${rel}: cell 4, line 1:19`],
      errors.join('\n'),
    );
    assert.match(errors[0], /TS2322: Type 'string' is not assignable to type 'number'/);
    assert.match(errors[1], /Property 'nope' does not exist/);
    assert.match(errors[2], /implicitly has an 'any' type/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
