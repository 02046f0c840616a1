/**
 * Execute one notebook with tslab's own kernel code, in this process, without ZeroMQ or Jupyter:
 * tslab's converter (type check + transpile to CommonJS), its executor (runs the cell, keeps the
 * names it declares for later cells) and its JupyterHandlerImpl (what the kernel runs for each
 * execute_request: it routes process.stdout/stderr writes to `stream` messages and sets the
 * writer behind `tslab.display` to `display_data` messages). Here those messages become the
 * cell's nbformat outputs, as Jupyter would store them. So a cell that passes here passes in
 * the kernel, and the reverse: same type check (tslab's TypeScript), same module loading.
 *
 * Like Jupyter, it runs with the notebook's folder as the working directory (tslab's converter
 * roots its program there). The lab is loaded with `import * as lab from 'ceg-lab/lab'`
 * through node_modules/ceg-lab, a committed link to src/ (docs/notebooks.md).
 * TypeScript sources load through tsx (this process runs under `--import tsx`, as the kernel
 * does with NODE_OPTIONS="--import tsx").
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import {
  cellSource,
  readNotebook,
  toLines,
  writeNotebook,
  type CodeCell,
  type Notebook,
  type Output,
} from './ipynb.js';

type Jupyter = typeof import('tslab/dist/jupyter.js');
type Converter = typeof import('tslab/dist/converter.js');
type Executor = typeof import('tslab/dist/executor.js');

/** One cell's failure: the notebook, its 1-based position among all cells (as Jupyter numbers them) and what tslab printed. */
export class CellFailure extends Error {
  constructor(
    readonly notebook: string,
    readonly cell: number,
    readonly detail: string,
  ) {
    // the error's own line (a runtime error's message follows tslab's source excerpt), else tslab's first line (a type error)
    const headline = /^[\w.]*(?:Error|Exception)\b.*$/m.exec(detail)?.[0] ?? detail.trim().split('\n')[0] ?? '';
    super(`${notebook}: cell ${cell} failed: ${headline}`);
    this.name = 'CellFailure';
  }
}

/** The kernel's handler, created in the current working directory (the notebook's folder). */
function kernelHandler(): InstanceType<Jupyter['JupyterHandlerImpl']> {
  // the same module instances that the cells reach through __tslab__.require('tslab'), so
  // `tslab.display` writes through the handler's display writer
  const req = createRequire(path.join(process.cwd(), 'notebook.js'));
  const { JupyterHandlerImpl } = req('tslab/dist/jupyter') as Jupyter;
  const { createConverter } = req('tslab/dist/converter') as Converter;
  const { createExecutor } = req('tslab/dist/executor') as Executor;
  let node: ReturnType<Converter['createConverter']> | undefined;
  let browser: ReturnType<Converter['createConverter']> | undefined;
  const convs = {
    get node() {
      return (node ??= createConverter({ isJS: false, isBrowser: false }));
    },
    get browser() {
      return (browser ??= createConverter({ isJS: false, isBrowser: true }));
    },
    close() {
      node?.close();
      browser?.close();
    },
  };
  const executor = createExecutor(process.cwd(), convs, { log: console.log, error: console.error });
  return new JupyterHandlerImpl(executor, false);
}

/**
 * Execute every code cell of `nb` in order (cwd must be the notebook's folder); returns a copy
 * with outputs and execution counts, and at the first failing cell stops with `failure` (that
 * cell's outputs, tslab's error message included, are in the returned notebook).
 */
export async function executeNotebook(
  nb: Notebook,
  name: string,
  log: (line: string) => void = () => {},
): Promise<{ notebook: Notebook; failure?: CellFailure }> {
  const out: Notebook = structuredClone(nb);
  const handler = kernelHandler();
  const stdoutWrite = process.stdout.write;
  const stderrWrite = process.stderr.write;
  try {
    for (let i = 0; i < out.cells.length; i++) {
      const cell = out.cells[i];
      if (cell.cell_type !== 'code') continue;
      const code = cell as CodeCell;
      const outputs: Output[] = [];
      code.outputs = outputs;
      const writeStream = (stream: string, text: string) => {
        if (stream !== 'stdout' && stream !== 'stderr') return;
        const last = outputs[outputs.length - 1];
        if (last && last.output_type === 'stream' && last.name === stream)
          last.text = toLines(last.text.join('') + text);
        else outputs.push({ output_type: 'stream', name: stream, text: toLines(text) });
      };
      const displays = new Map<string, Output & { data: Record<string, unknown> }>();
      const writeDisplayData = (
        content: { data: object; metadata?: object; transient?: { display_id?: string } },
        update: boolean,
      ) => {
        const id = content.transient?.display_id;
        const prev = id ? displays.get(id) : undefined;
        if (update && prev) {
          // an update to an empty bundle removes the display (a finished progress line)
          if (Object.keys(content.data).length === 0) {
            const at = outputs.indexOf(prev);
            if (at >= 0) outputs.splice(at, 1);
            displays.delete(id!);
          } else prev.data = { ...content.data };
          return;
        }
        const o = {
          output_type: 'display_data' as const,
          data: { ...content.data } as Record<string, unknown>,
          metadata: { ...content.metadata } as Record<string, unknown>,
        };
        outputs.push(o);
        if (id) displays.set(id, o);
      };
      const t0 = performance.now();
      const reply = await handler.handleExecute(
        { code: cellSource(code) } as Parameters<typeof handler.handleExecute>[0],
        writeStream,
        writeDisplayData as never,
      );
      // the handler leaves process.stdout/stderr pointing at this cell (the kernel forwards late
      // output to the last cell); between cells this runner's own lines go to the terminal
      process.stdout.write = stdoutWrite;
      process.stderr.write = stderrWrite;
      code.execution_count = reply.execution_count ?? null;
      if (reply.status !== 'ok') {
        const errText = outputs
          .flatMap((o) => (o.output_type === 'stream' && o.name === 'stderr' ? o.text : []))
          .join('');
        return { notebook: out, failure: new CellFailure(name, i + 1, errText || `status ${reply.status}`) };
      }
      log(`${name}: cell ${i + 1} ok (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }
  } finally {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
  }
  return { notebook: out };
}

/**
 * Run one .ipynb file and write the executed copy (nbformat 4, atomically). Returns the exit
 * code: 0, or 1 after printing the failing cell's message (the notebook is not written).
 */
export async function runNotebookFile(file: string, outFile: string): Promise<number> {
  const abs = path.resolve(file);
  const absOut = path.resolve(outFile);
  const name = path.relative(process.cwd(), abs) || file;
  const nb = await readNotebook(abs);
  process.chdir(path.dirname(abs));
  const { notebook, failure } = await executeNotebook(nb, name, (l) => process.stderr.write(`  ${l}\n`));
  if (failure) {
    process.stderr.write(`${failure.message}\n${failure.detail}\n`);
    return 1;
  }
  writeNotebook(absOut, notebook);
  return 0;
}
