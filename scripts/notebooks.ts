/**
 * npm run notebooks [-- --scale micro] [--out DIR | --in-place] [--runs DIR] [--clear] [files...]
 * Executes every notebooks/*.ipynb headless, in name order, with tslab's own kernel code and no
 * Python or Jupyter: each notebook in its own Node process (fresh module state, its folder as
 * the working directory, as Jupyter starts a kernel), every code cell through tslab's
 * JupyterHandlerImpl (converter: type check + transpile; executor: run), which is what the
 * kernel does for each execute_request; its stream and display_data messages become the
 * cell's outputs. Writes the
 * executed notebooks (with outputs) into --out DIR (default out/notebooks/, git-ignored), or
 * over the committed notebooks with --in-place. The first failing cell stops
 * the command with exit code 1, naming the notebook, the cell and the error.
 * CEG_SCALE (or --scale) is passed to the notebooks through the environment. The run store is
 * CEG_RUNS (or --runs); unset, a scale other than the committed study's (micro) trains into a
 * fresh temporary store, never into data/runs/.
 * --clear: run nothing; write the notebooks with all outputs removed (the clean state).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFlags, reportUsageError, type CommandSpec } from '../src/cli/args.js';
import { clearOutputs, readNotebook, writeNotebook } from './ipynb.js';
import { runNotebookFile } from './tslab-runner.js';

/** Executed notebooks go here unless --out or --in-place (git-ignored: the committed notebooks stay as they are). */
const DEFAULT_OUT = path.join('out', 'notebooks');
/** The scale whose runs are committed in data/runs/ (other scales train into a temporary store). */
const COMMITTED_SCALE = 'micro';

const HELP = `usage: npm run notebooks -- [--scale NAME] [--out DIR | --in-place] [--runs DIR] [--clear] [--dir DIR] [files...]

Execute notebooks/*.ipynb headless with tslab's kernel code (no Python, no Jupyter), each in its own Node process.
  --scale NAME   scale of the runs (sets CEG_SCALE; default: $CEG_SCALE or micro)
  --out DIR      write executed notebooks here (default ${DEFAULT_OUT}/, git-ignored)
  --in-place     write over the committed notebooks instead (to update them)
  --runs DIR     run store (default: $CEG_RUNS; data/runs at micro, a temporary folder at other scales)
  --clear        run nothing; write the notebooks with every output removed
  --dir DIR      folder of the notebooks (default notebooks)
  files...       only these notebooks`;

function runChild(file: string, outFile: string, env: NodeJS.ProcessEnv): Promise<number> {
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, self, '--one', file, '--one-out', outFile], {
      stdio: 'inherit',
      env,
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

/** The flags (keys as on the command line, so `values['in-place']`); HELP is their description. */
const spec = {
  flags: {
    dir: { type: 'string', default: 'notebooks' },
    out: { type: 'string' },
    scale: { type: 'string' },
    one: { type: 'string' },
    'one-out': { type: 'string' },
    clear: { type: 'bool' },
    'in-place': { type: 'bool' },
    runs: { type: 'string' },
  },
  positionals: ['files'],
  variadic: true,
} as const satisfies CommandSpec;

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseFlags(process.argv.slice(2), spec, 'npm run notebooks --');
  } catch (e) {
    return reportUsageError(e);
  }
  const { flags: values, positionals } = parsed;
  if (parsed.help) {
    console.log(HELP);
    return 0;
  }
  if (values['in-place'] && values.out) {
    console.error('give --out DIR or --in-place, not both');
    return 2;
  }
  const outDir = values['in-place'] ? undefined : (values.out ?? DEFAULT_OUT);
  if (values.one) {
    return runNotebookFile(values.one, values['one-out'] ?? values.one);
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
      const outFile =
        values.out || values['in-place']
          ? values.out
            ? path.join(values.out, path.basename(file))
            : file
          : path.join(DEFAULT_OUT, path.basename(file));
      writeNotebook(outFile, clearOutputs(await readNotebook(file)));
      console.log(`cleared ${file} -> ${outFile}`);
    }
    return 0;
  }
  const env = { ...process.env };
  if (values.scale) env.CEG_SCALE = values.scale;
  if (values.runs) env.CEG_RUNS = path.resolve(values.runs);
  const scale = env.CEG_SCALE || 'micro';
  if (!env.CEG_RUNS && scale !== COMMITTED_SCALE)
    env.CEG_RUNS = await mkdtemp(path.join(os.tmpdir(), `ceg-notebook-runs-${scale}-`));
  console.log(
    `running ${files.length} notebook(s), CEG_SCALE=${env.CEG_SCALE || '(unset)'}, run store ${env.CEG_RUNS ?? 'data/runs'}, ` +
      `output ${outDir ?? 'in place'}`,
  );
  const tAll = performance.now();
  let bytes = 0;
  for (const file of files) {
    const outFile = outDir ? path.join(outDir, path.basename(file)) : file;
    const t0 = performance.now();
    console.log(`▶ ${file}`);
    const code = await runChild(file, outFile, env);
    if (code !== 0) {
      console.error(`✗ ${file} failed (exit ${code}); later notebooks not run`);
      return 1;
    }
    const size = (await stat(outFile)).size;
    bytes += size;
    console.log(
      `✓ ${file} -> ${outFile} (${((performance.now() - t0) / 1000).toFixed(1)} s, ${(size / 1024).toFixed(0)} KiB)`,
    );
  }
  console.log(
    `${files.length} notebook(s) in ${((performance.now() - tAll) / 1000).toFixed(1)} s, ${(bytes / 1024).toFixed(0)} KiB written`,
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
