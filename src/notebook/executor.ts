/**
 * Headless notebook execution without Python or a Jupyter kernel: each code cell is transpiled
 * (./transform.ts) and run in one shared scope, in order; console output becomes stream
 * outputs, `show(figure)` (src/report/notebook.ts) becomes display_data with the Plotly JSON and
 * a static PNG, the value of a final expression becomes execute_result. The first cell that
 * throws stops the notebook with a NotebookError naming the notebook, the cell and the error.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { format, inspect } from 'node:util';
import vm from 'node:vm';
import { openExporter, type Exporter } from '../report/export.js';
import type { Figure } from '../report/types.js';
import { cellSource, type CodeCell, type MimeBundle, type Notebook, type Output, toLines } from './nbformat.js';
import { transformCell } from './transform.js';
import { shrinkPng } from './png.js';

/** What `show` talks to while the runner executes a cell (set on globalThis[SINK_KEY]). */
export interface NotebookSink {
  showFigure(figure: Figure, opts?: { width?: number; height?: number }): Promise<void>;
  display(bundle: MimeBundle): void;
}
export const SINK_KEY = '__cegNotebookSink__';

export class NotebookError extends Error {
  constructor(
    readonly notebook: string,
    /** 1-based position among all cells (markdown included), as Jupyter numbers them */
    readonly cell: number,
    readonly cause: unknown,
  ) {
    const err = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    super(`${notebook}: cell ${cell} failed: ${err}`);
    this.name = 'NotebookError';
  }
}

/** Runs cells in one shared scope; relative imports resolve from `dir`. */
export function createCellRunner(dir: string) {
  const scope: Record<string, unknown> = Object.create(null);
  const ceg = {
    last: undefined as unknown,
    import(spec: string): Promise<unknown> {
      const url = spec.startsWith('./') || spec.startsWith('../') || path.isAbsolute(spec) ? pathToFileURL(path.resolve(dir, spec)).href : spec;
      return import(url);
    },
  };
  let n = 0;
  return {
    scope,
    /** Run one cell; returns its final expression's value (hasResult false: none). */
    async run(source: string): Promise<{ hasResult: boolean; value: unknown }> {
      const t = transformCell(source);
      for (const name of t.names) if (!(name in scope)) scope[name] = undefined;
      ceg.last = undefined;
      const wrapped = `(async function (__scope, __ceg) { with (__scope) {\n${t.code}\n} })`;
      const fn = vm.runInThisContext(wrapped, { filename: path.join(dir, `cell-${++n}.js`) }) as (s: object, c: object) => Promise<void>;
      await fn(scope, ceg);
      return { hasResult: t.hasResult, value: ceg.last };
    },
  };
}

export interface RunOptions {
  /** name used in messages (default: 'notebook') */
  name?: string;
  /** directory relative imports resolve from (the notebook's folder) */
  dir: string;
  /** size of the static PNG embedded for each figure (default 800x450) */
  pngWidth?: number;
  pngHeight?: number;
  /** a shared exporter; default: one opened on the first figure and closed at the end */
  exporter?: Exporter;
  /** progress lines (default: none) */
  log?: (line: string) => void;
}

type ConsoleMethod = 'log' | 'info' | 'debug' | 'warn' | 'error' | 'dir';
const STDOUT: ConsoleMethod[] = ['log', 'info', 'debug', 'dir'];
const STDERR: ConsoleMethod[] = ['warn', 'error'];

function figureTitle(f: Figure): string {
  const t = (f.layout as { title?: { text?: string } | string }).title;
  const s = typeof t === 'string' ? t : t?.text;
  return s ? s.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim() : 'figure';
}

/**
 * Execute every code cell of `nb` in order; returns a copy with outputs and execution counts.
 * Throws NotebookError at the first failing cell.
 */
export async function runNotebook(nb: Notebook, opts: RunOptions): Promise<Notebook> {
  const name = opts.name ?? 'notebook';
  const log = opts.log ?? (() => {});
  const out: Notebook = structuredClone(nb);
  const runner = createCellRunner(opts.dir);
  let exporter: Exporter | undefined = opts.exporter;
  let exporterFailed: Error | undefined;
  const ownsExporter = !opts.exporter;
  let count = 0;
  try {
    for (let i = 0; i < out.cells.length; i++) {
      const cell = out.cells[i];
      if (cell.cell_type !== 'code') continue;
      const code = cell as CodeCell;
      const outputs: Output[] = [];
      code.outputs = outputs;
      code.execution_count = ++count;
      const src = cellSource(code);
      if (!src.trim()) continue;
      const push = (stream: 'stdout' | 'stderr', text: string) => {
        const last = outputs[outputs.length - 1];
        if (last && last.output_type === 'stream' && last.name === stream) last.text.push(...toLines(text));
        else outputs.push({ output_type: 'stream', name: stream, text: toLines(text) });
      };
      const pending: Promise<void>[] = [];
      const sink: NotebookSink = {
        display(bundle) {
          outputs.push({ output_type: 'display_data', data: bundle, metadata: {} });
        },
        showFigure(figure, o = {}) {
          const data: MimeBundle = {
            'application/vnd.plotly.v1+json': JSON.parse(JSON.stringify(figure)),
            'text/plain': `<Plotly figure: ${figureTitle(figure)}>`,
          };
          outputs.push({ output_type: 'display_data', data, metadata: {} }); // keeps its place among outputs
          const p = (async () => {
            if (exporterFailed) return;
            try {
              exporter ??= await openExporter();
              const png = await exporter.render(figure, 'png', { width: o.width ?? opts.pngWidth ?? 800, height: o.height ?? opts.pngHeight ?? 450 });
              data['image/png'] = shrinkPng(png).toString('base64'); // lossless: palette / RGB, deflate 9
            } catch (e) {
              exporterFailed = e as Error;
              log(`warning: no static PNG for figures (${exporterFailed.message})`);
            }
          })();
          pending.push(p);
          return p;
        },
      };
      const saved = new Map<ConsoleMethod, (...a: unknown[]) => void>();
      for (const m of [...STDOUT, ...STDERR]) {
        saved.set(m, console[m]);
        const stream = STDOUT.includes(m) ? 'stdout' : 'stderr';
        console[m] = (...args: unknown[]) => push(stream, (m === 'dir' ? inspect(args[0]) : format(...args)) + '\n');
      }
      (globalThis as Record<string, unknown>)[SINK_KEY] = sink;
      const t0 = performance.now();
      try {
        const { hasResult, value } = await runner.run(src);
        await Promise.all(pending);
        if (hasResult && value !== undefined) {
          outputs.push({ output_type: 'execute_result', execution_count: count, data: { 'text/plain': inspect(value, { depth: 4 }) }, metadata: {} });
        }
      } catch (e) {
        await Promise.allSettled(pending);
        const err = e instanceof Error ? e : new Error(String(e));
        outputs.push({ output_type: 'error', ename: err.name, evalue: err.message, traceback: (err.stack ?? String(err)).split('\n') });
        throw new NotebookError(name, i + 1, e);
      } finally {
        for (const [m, f] of saved) console[m] = f;
        delete (globalThis as Record<string, unknown>)[SINK_KEY];
      }
      log(`${name}: cell ${i + 1} ok (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }
  } finally {
    if (ownsExporter && exporter) await exporter.close();
  }
  return out;
}
