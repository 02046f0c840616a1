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
