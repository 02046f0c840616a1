/**
 * The layer rule, checked: a module in src/ imports only from its own layer or a layer below.
 *
 * Layers, lowest first (docs/architecture.md):
 *   core     the top-level files src/*.ts (config, paths, log, innovations, scales, plans,
 *            differences): plain data, validation and logging, no tensors
 *   engine   src/engine   the only importer of TensorFlow.js
 *   data     src/data
 *   model    src/model
 *   runs     src/runs
 *   train    src/train
 *   ceg      src/ceg
 *   report   src/report
 *   cli      src/cli
 *   lab      src/lab.ts, src/lab-study.ts   the notebooks' one import (and its study part)
 *
 * Every import is read with TypeScript's own pre-processor (static imports, re-exports,
 * `import type`, dynamic `import('...')` with a literal path). A violation prints
 * `file:line  <layer> imports <layer> (path)` and the command exits 1.
 *
 *   npm run check:layers
 */
import { parseScriptArgs } from '../src/cli/args.js';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const LAYERS = ['core', 'engine', 'data', 'model', 'runs', 'train', 'ceg', 'report', 'cli', 'lab'] as const;
type Layer = (typeof LAYERS)[number];

/** Folders that share a layer with another name. */
const FOLDER_LAYER: Record<string, Layer> = {};

/**
 * Known upward imports that another branch removes. Each entry names the branch; the integrator
 * deletes the entry when merging it (the check then holds without exceptions).
 */
const ALLOWED: { from: string; to: string; why: string }[] = [];

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const srcDir = join(root, 'src');

/** The layer of a file under src/ (path relative to the project root, forward slashes). */
export function layerOf(file: string): Layer {
  const parts = file.split('/');
  if (parts[0] !== 'src') throw new Error(`not under src/: ${file}`);
  if (parts.length === 2) return parts[1] === 'lab.ts' || parts[1] === 'lab-study.ts' ? 'lab' : 'core';
  const folder = parts[1]!;
  const layer = FOLDER_LAYER[folder] ?? LAYERS.find((l) => l === folder);
  if (!layer)
    throw new Error(`src/${folder}/ has no layer: add it to scripts/check-layers.ts and docs/architecture.md`);
  return layer;
}

/** Every .ts file under `dir`, relative to the project root with forward slashes. */
export function sourceFiles(dir = srcDir): string[] {
  return tsFiles(dir).map((f) => relative(root, f).split(sep).join('/'));
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

export interface Violation {
  file: string;
  line: number;
  from: Layer;
  to: Layer;
  target: string;
}

/** Every upward import in the files (paths relative to the project root; `read` gives a file's text). */
export function violations(
  files: string[],
  read = (file: string) => readFileSync(join(root, file), 'utf8'),
): Violation[] {
  const found: Violation[] = [];
  for (const file of files) {
    const text = read(file);
    const info = ts.preProcessFile(text, true, true);
    const from = layerOf(file);
    for (const ref of info.importedFiles) {
      if (!ref.fileName.startsWith('.')) continue; // packages and node: builtins
      const target = posix.normalize(posix.join(posix.dirname(file), ref.fileName)).replace(/\.js$/, '.ts');
      if (!target.startsWith('src/')) continue;
      const to = layerOf(target);
      if (LAYERS.indexOf(to) <= LAYERS.indexOf(from)) continue;
      if (ALLOWED.some((a) => a.from === file && a.to === target)) continue;
      const line = text.slice(0, ref.pos).split('\n').length;
      found.push({ file, line, from, to, target });
    }
  }
  return found;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  parseScriptArgs('npm run check:layers --', {
    summary: `Fails (exit 1) when a module in src/ imports from a layer above its own. Layers, lowest first: ${LAYERS.join(', ')} (docs/architecture.md).`,
    flags: {},
  });
  const files = sourceFiles();
  const found = violations(files);
  for (const v of found) {
    console.error(
      `${v.file}:${v.line}  ${v.from} imports ${v.to} (${v.target}): a module imports only from its own layer or below`,
    );
  }
  if (found.length > 0) {
    console.error(
      `\n${found.length} upward import(s). Layers, lowest first: ${LAYERS.join(' < ')} (docs/architecture.md)`,
    );
    process.exit(1);
  }
  console.log(`layers ok: ${files.length} files in src/, no upward import (${LAYERS.join(' < ')})`);
}
