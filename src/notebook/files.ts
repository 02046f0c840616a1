/** Run one .ipynb file and write the executed copy (nbformat 4, atomically). */
import path from 'node:path';
import { runNotebook, type RunOptions } from './executor.js';
import { readNotebook, writeNotebook } from './nbformat.js';

export async function runNotebookFile(file: string, outFile: string, opts: Partial<RunOptions> = {}): Promise<void> {
  const nb = await readNotebook(file);
  const name = path.relative(process.cwd(), file) || file;
  const done = await runNotebook(nb, { name, dir: path.dirname(path.resolve(file)), ...opts });
  await writeNotebook(outFile, done);
}
