/**
 * npm run typecheck (after `tsc --noEmit`): type-check every notebook's code cells with the
 * project's compiler options (strict), as one module per notebook: the code cells in order,
 * so a cell sees what earlier cells declared, as in tslab's kernel. The lab comes in through
 * `import * as lab from 'ceg-lab/lab'` (node_modules/ceg-lab links to src/), so every
 * `lab.*` call is checked against src/lab.ts. Errors are reported per notebook, cell and line;
 * exit code 1 if there is any. The tslab kernel itself also type-checks each cell when it runs
 * (with its own TypeScript, not strict); this check is the stricter one and needs no execution.
 *
 *   npm run typecheck                              # tsc, then every notebooks/*.ipynb
 *   tsx scripts/typecheck-notebooks.ts [files...]  # only these notebooks
 */
import path from 'node:path';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import ts from 'typescript';
import { codeCells, readNotebook } from './ipynb.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const HELP = `usage: tsx scripts/typecheck-notebooks.ts [--dir DIR] [files...]

Type-check the code cells of notebooks/*.ipynb (strict, the project's tsconfig), one module per
notebook with its cells in order. Exit 1 on any error, naming notebook, cell and line.
  --dir DIR   folder of the notebooks (default notebooks)
  files...    only these notebooks`;

/** One notebook as a TypeScript module, and where each of its code cells starts. */
export interface NotebookModule {
  file: string;
  /** the virtual .ts file (beside the notebook, so module resolution is the notebook's) */
  tsFile: string;
  text: string;
  /** per code cell: 1-based position among all cells, first line in `text` (0-based) */
  cells: { cell: number; line: number }[];
}

export async function notebookModule(file: string): Promise<NotebookModule> {
  const nb = await readNotebook(file);
  const parts: string[] = [];
  const cells: NotebookModule['cells'] = [];
  let line = 0;
  for (const c of codeCells(nb)) {
    const src = c.source.endsWith('\n') ? c.source : `${c.source}\n`;
    cells.push({ cell: c.index + 1, line });
    parts.push(src);
    line += src.split('\n').length - 1;
  }
  parts.push('export {};\n'); // a module even without imports (top-level await, own scope)
  return { file, tsFile: `${path.resolve(file)}.ts`, text: parts.join(''), cells };
}

function compilerOptions(): ts.CompilerOptions {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    path.join(root, 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  if (!parsed) throw new Error('tsconfig.json: not readable');
  // Bundler resolution: 'ceg-lab/lab' without an extension, as tslab (Node10) resolves it
  return {
    ...parsed.options,
    noEmit: true,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
  };
}

/** Diagnostics of the notebooks' cells, as "file: cell N, line L:C: message" lines. */
export function checkNotebooks(mods: NotebookModule[]): string[] {
  const options = compilerOptions();
  const byPath = new Map(mods.map((m) => [m.tsFile, m]));
  const host = ts.createCompilerHost(options, true);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (f) => byPath.has(f) || fileExists.call(host, f);
  host.readFile = (f) => byPath.get(f)?.text ?? readFile.call(host, f);
  host.getSourceFile = (f, lang, onError, create) => {
    const m = byPath.get(f);
    return m
      ? ts.createSourceFile(f, m.text, lang, true, ts.ScriptKind.TS)
      : getSourceFile.call(host, f, lang, onError, create);
  };
  const program = ts.createProgram([...byPath.keys()], options, host);
  const out: string[] = [];
  for (const m of mods) {
    const sf = program.getSourceFile(m.tsFile)!;
    const diags = [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)];
    for (const d of diags) {
      const msg = ts.flattenDiagnosticMessageText(d.messageText, '\n');
      if (d.start === undefined) {
        out.push(`${path.relative(process.cwd(), m.file)}: TS${d.code}: ${msg}`);
        continue;
      }
      const { line, character } = sf.getLineAndCharacterOfPosition(d.start);
      const cell = [...m.cells].reverse().find((c) => c.line <= line) ?? m.cells[0];
      out.push(
        `${path.relative(process.cwd(), m.file)}: cell ${cell?.cell ?? '?'}, line ${line - (cell?.line ?? 0) + 1}:${character + 1}: TS${d.code}: ${msg}`,
      );
    }
  }
  return out;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      dir: { type: 'string', default: path.join(root, 'notebooks') },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const files = positionals.length
    ? positionals
    : readdirSync(values.dir!)
        .filter((f) => f.endsWith('.ipynb'))
        .sort()
        .map((f) => path.join(values.dir!, f));
  if (files.length === 0) {
    console.error(`no notebooks found in ${values.dir}/ (*.ipynb)`);
    return 2;
  }
  const errors = checkNotebooks(await Promise.all(files.map(notebookModule)));
  for (const e of errors) console.error(e);
  console.log(`${files.length} notebook(s) type-checked: ${errors.length ? `${errors.length} error(s)` : 'no errors'}`);
  return errors.length ? 1 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(2);
    },
  );
}
