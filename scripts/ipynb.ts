/**
 * The part of Jupyter's nbformat 4 that scripts/notebooks.ts and scripts/typecheck-notebooks.ts
 * read and write. https://nbformat.readthedocs.io/en/latest/format_description.html
 */
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../src/fsx.js';

export type MimeBundle = Record<string, unknown>;

export type Output =
  | { output_type: 'stream'; name: 'stdout' | 'stderr'; text: string[] }
  | { output_type: 'display_data'; data: MimeBundle; metadata: Record<string, unknown> }
  | { output_type: 'execute_result'; execution_count: number; data: MimeBundle; metadata: Record<string, unknown> }
  | { output_type: 'error'; ename: string; evalue: string; traceback: string[] };

export interface CodeCell {
  cell_type: 'code';
  id?: string;
  metadata: Record<string, unknown>;
  source: string | string[];
  execution_count: number | null;
  outputs: Output[];
}

export interface OtherCell {
  cell_type: 'markdown' | 'raw';
  id?: string;
  metadata: Record<string, unknown>;
  source: string | string[];
  attachments?: Record<string, unknown>;
}

export type Cell = CodeCell | OtherCell;

export interface Notebook {
  nbformat: 4;
  nbformat_minor: number;
  metadata: Record<string, unknown>;
  cells: Cell[];
}

/** tslab's kernelspec, so Jupyter and VS Code offer the TypeScript kernel. */
export const TSLAB_METADATA = {
  kernelspec: { display_name: 'TypeScript', language: 'typescript', name: 'tslab' },
  language_info: { name: 'typescript', file_extension: '.ts', mimetype: 'text/typescript', version: '5' },
};

/** The code cells' sources, in order. */
export function codeCells(nb: Notebook): { index: number; source: string }[] {
  return nb.cells.flatMap((c, index) => (c.cell_type === 'code' ? [{ index, source: cellSource(c) }] : []));
}

export function cellSource(cell: Cell): string {
  return Array.isArray(cell.source) ? cell.source.join('') : cell.source;
}

/** Split text into nbformat's list of lines (each keeps its newline). */
export function toLines(text: string): string[] {
  const parts = text.split(/(?<=\n)/);
  return parts.length === 1 && parts[0] === '' ? [] : parts;
}

export async function readNotebook(file: string): Promise<Notebook> {
  let nb: Notebook;
  try {
    nb = JSON.parse(await readFile(file, 'utf8')) as Notebook;
  } catch (e) {
    throw new Error(`${file}: not a readable notebook JSON file (${(e as Error).message})`);
  }
  if (nb.nbformat !== 4 || !Array.isArray(nb.cells)) {
    throw new Error(`${file}: expected nbformat 4 with a cells array, got nbformat ${String(nb.nbformat)}`);
  }
  return nb;
}

/** Write a notebook as nbformat 4 JSON (1-space indent, as Jupyter does), atomically. */
export function writeNotebook(file: string, nb: Notebook): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileAtomic(file, JSON.stringify(nb, null, 1) + '\n');
}

/** A copy with every code cell's outputs and execution count removed (the clean state for git). */
export function clearOutputs(nb: Notebook): Notebook {
  const out: Notebook = structuredClone(nb);
  for (const c of out.cells) {
    if (c.cell_type !== 'code') continue;
    c.outputs = [];
    c.execution_count = null;
  }
  return out;
}

/** A notebook from cell sources, for tests and for writing new notebooks from code. */
export function makeNotebook(cells: { type?: 'code' | 'markdown'; source: string }[]): Notebook {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { ...TSLAB_METADATA },
    cells: cells.map((c, i) =>
      (c.type ?? 'code') === 'code'
        ? {
            cell_type: 'code',
            id: `cell-${i}`,
            metadata: {},
            source: toLines(c.source),
            execution_count: null,
            outputs: [],
          }
        : { cell_type: 'markdown', id: `cell-${i}`, metadata: {}, source: toLines(c.source) },
    ),
  };
}
