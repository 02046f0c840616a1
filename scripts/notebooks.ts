/**
 * npm run notebooks [-- --scale micro] [--out DIR] [--clear] [files...]
 * Executes every notebooks/*.ipynb headless, in name order, with no Python and no kernel: each
 * notebook in its own Node process (fresh module state), cells in one shared scope. Writes the
 * executed notebooks (with outputs) in place, or into --out DIR. The first failing cell stops
 * the command with exit code 1, naming the notebook, the cell and the error.
 * CEG_SCALE (or --scale) is passed to the notebooks through the environment.
 * --clear: run nothing; write the notebooks with all outputs removed (the clean state).
 */
import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NotebookError } from '../src/notebook/executor.js';
import { runNotebookFile } from '../src/notebook/files.js';
import { clearOutputs, readNotebook, writeNotebook } from '../src/notebook/nbformat.js';

function runChild(file: string, outFile: string, env: NodeJS.ProcessEnv): Promise<number> {
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, self, '--one', file, '--one-out', outFile], { stdio: 'inherit', env });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      dir: { type: 'string', default: 'notebooks' },
      out: { type: 'string' },
      scale: { type: 'string' },
      one: { type: 'string' },
      'one-out': { type: 'string' },
      clear: { type: 'boolean', default: false },
    },
  });
  if (values.one) {
    try {
      await runNotebookFile(values.one, values['one-out'] ?? values.one, { log: (l) => process.stderr.write(`  ${l}\n`) });
      return 0;
    } catch (e) {
      const msg = e instanceof NotebookError ? `${e.message}\n${e.cause instanceof Error ? e.cause.stack : ''}` : e instanceof Error ? e.message : String(e);
      process.stderr.write(`${msg}\n`);
      return 1;
    }
  }
  const files = positionals.length
    ? positionals
    : (await readdir(values.dir!).catch(() => [] as string[]))
        .filter((f) => f.endsWith('.ipynb'))
        .sort()
        .map((f) => path.join(values.dir!, f));
  if (files.length === 0) {
    console.error(`no notebooks found in ${values.dir}/ (*.ipynb)`);
    return 1;
  }
  if (values.clear) {
    for (const file of files) {
      const outFile = values.out ? path.join(values.out, path.basename(file)) : file;
      await writeNotebook(outFile, clearOutputs(await readNotebook(file)));
      console.log(`cleared ${file} -> ${outFile}`);
    }
    return 0;
  }
  const env = { ...process.env };
  if (values.scale) env.CEG_SCALE = values.scale;
  console.log(`running ${files.length} notebook(s), CEG_SCALE=${env.CEG_SCALE ?? '(unset)'}`);
  const tAll = performance.now();
  let bytes = 0;
  for (const file of files) {
    const outFile = values.out ? path.join(values.out, path.basename(file)) : file;
    const t0 = performance.now();
    console.log(`▶ ${file}`);
    const code = await runChild(file, outFile, env);
    if (code !== 0) {
      console.error(`✗ ${file} failed (exit ${code}); later notebooks not run`);
      return 1;
    }
    const size = (await stat(outFile)).size;
    bytes += size;
    console.log(`✓ ${file} -> ${outFile} (${((performance.now() - t0) / 1000).toFixed(1)} s, ${(size / 1024).toFixed(0)} KiB)`);
  }
  console.log(`${files.length} notebook(s) in ${((performance.now() - tAll) / 1000).toFixed(1)} s, ${(bytes / 1024).toFixed(0)} KiB written`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
