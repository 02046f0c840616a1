/**
 * Display helpers for notebooks: `await show(figure)` and `showHtml(html)`.
 *  - under tslab (the kernel in Jupyter, and `npm run notebooks`, which drives the same kernel
 *    code in-process): one display_data bundle with the Plotly JSON
 *    (application/vnd.plotly.v1+json: interactive where a Plotly renderer is installed, e.g.
 *    JupyterLab, VS Code; a few KiB, no plotly.js embedded) and the static PNG (rendered with
 *    Chromium) that front-ends without a Plotly renderer show instead;
 *  - anywhere else (a plain script): one line naming the figure.
 */
import type * as aq from 'arquero';
import type { Figure } from './types.js';
import { openExporter, type Exporter } from './export.js';

interface TslabDisplay {
  html(s: string): void;
  png(b: Uint8Array): void;
  raw(contentType: string, b: string | Uint8Array): unknown;
}

type WriteDisplayData = (
  content: { data: Record<string, unknown>; metadata: Record<string, unknown>; transient: Record<string, unknown> },
  update: boolean,
) => void;

/** tslab's writer of display_data messages (several MIME types in one message), when available. */
function tslabWriter(): WriteDisplayData | null {
  const t = (
    globalThis as { __tslab__?: { require?: (id: string) => { lastWriteDisplayData?: WriteDisplayData | null } } }
  ).__tslab__;
  try {
    return t?.require?.('tslab/dist/jupyter').lastWriteDisplayData ?? null;
  } catch {
    return null;
  }
}

/** tslab's own module instance when running in its kernel (its executor sets globalThis.__tslab__). */
function tslabDisplay(): TslabDisplay | null {
  const t = (globalThis as { __tslab__?: { require?: (id: string) => { display?: TslabDisplay } } }).__tslab__;
  return t?.require ? (t.require('tslab').display ?? null) : null;
}

/** True inside tslab's kernel (where HTML and figures can be displayed). */
export function inNotebook(): boolean {
  return tslabDisplay() !== null;
}

let kernelExporter: Promise<Exporter> | null = null;

export interface ShowOptions {
  /** static image size in pixels (default 800x450) */
  width?: number;
  height?: number;
}

export async function show(figure: Figure, opts: ShowOptions = {}): Promise<void> {
  const tslab = tslabDisplay();
  if (tslab) {
    let png: Buffer | null = null;
    try {
      kernelExporter ??= openExporter();
      png = await (await kernelExporter).render(figure, 'png', {
        width: opts.width ?? 800,
        height: opts.height ?? 450,
      });
    } catch {
      kernelExporter = null; // no Chromium: the Plotly JSON alone
    }
    const write = tslabWriter();
    if (write) {
      const title = (figure.layout as { title?: { text?: string } }).title?.text ?? 'figure';
      write(
        {
          data: {
            'application/vnd.plotly.v1+json': JSON.parse(JSON.stringify(figure)),
            ...(png ? { 'image/png': png.toString('base64') } : {}),
            'text/plain': `[figure: ${title
              .replace(/<[^>]+>/g, ' ')
              .replace(/\s+/g, ' ')
              .trim()}]`,
          },
          metadata: {},
          transient: {},
        },
        false,
      );
    } else if (png) tslab.png(png);
    else tslab.raw('application/vnd.plotly.v1+json', JSON.stringify(figure));
    return;
  }
  const t = (figure.layout as { title?: { text?: string } }).title?.text ?? 'figure';
  console.log(
    `[figure: ${t.replace(/<[^>]+>/g, ' ')}] (not in a notebook; export it with exportFigures from src/report/export.ts)`,
  );
}

/** Show HTML (e.g. an arquero table's toHTML()). */
export function showHtml(html: string): void {
  // one bundle: the HTML and its text (for front-ends and viewers that do not render HTML)
  const write = tslabWriter();
  if (write) {
    write(
      {
        data: {
          'text/html': html,
          'text/plain': html
            .replace(/<[^>]+>/g, ' ')
            .replace(/\s+/g, ' ')
            .trim(),
        },
        metadata: {},
        transient: {},
      },
      false,
    );
    return;
  }
  const tslab = tslabDisplay();
  if (tslab) {
    tslab.html(html);
    return;
  }
  console.log(html);
}

/** Close the Chromium that show() started in a tslab kernel (tests; a kernel keeps it until it exits). */
export async function closeKernelExporter(): Promise<void> {
  const e = kernelExporter;
  kernelExporter = null;
  if (e) await (await e.catch(() => null))?.close();
}

/** What a progress bar writes to (structurally cli/progress.ts's ProgressStream). */
export interface NotebookProgress {
  write(s: string): void;
  readonly isTTY: true;
  readonly columns: number;
  /** remove the display (the cell keeps what was printed besides it) */
  close(): void;
}

/**
 * A progress stream for a notebook cell: terminal-style writes (`\r` redraws the current line,
 * `\x1b[K` clears to its end, `\n` starts a new one) kept as text and shown in one display that
 * is updated in place (update_display_data), so a training run shows one live line instead of
 * a stream of them; close() empties the display. Nothing is displayed until the first `\r` (a
 * progress bar being drawn). Null outside tslab's kernel.
 */
export function notebookProgress(): NotebookProgress | null {
  const write = tslabWriter();
  if (!write) return null;
  const id = `ceg-progress-${Math.random().toString(16).slice(2)}-${Date.now().toString(16)}`;
  const lines: string[] = [''];
  let shown = false;
  let live = false;
  const send = (data: Record<string, unknown>) => {
    write({ data, metadata: {}, transient: { display_id: id } }, shown);
    shown = true;
  };
  return {
    isTTY: true,
    columns: 100,
    write(s: string) {
      for (const part of s.replaceAll('\x1b[K', '').split(/(\r|\n)/)) {
        if (part === '\r') {
          lines[lines.length - 1] = '';
          live = true;
        } else if (part === '\n') lines.push('');
        else lines[lines.length - 1] += part;
      }
      // shown from the first redraw (a run in progress): runs only loaded from the store leave no output
      if (live) send({ 'text/plain': lines.join('\n').replace(/\n$/, '') });
    },
    close() {
      if (shown) send({});
    },
  };
}

/** An arquero table as HTML in a notebook, as aligned text elsewhere. */
export function showTable(table: aq.ColumnTable, opts: { limit?: number } = {}): void {
  const limit = opts.limit ?? 50;
  if (inNotebook()) {
    showHtml(table.toHTML({ limit, format: numberFormats(table) }));
  } else {
    table.print({ limit });
  }
}

function numberFormats(table: aq.ColumnTable): Record<string, (v: unknown) => string> {
  const out: Record<string, (v: unknown) => string> = {};
  for (const c of table.columnNames()) {
    out[c] = (v: unknown) =>
      typeof v === 'number'
        ? Number.isInteger(v)
          ? String(v)
          : Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3
            ? v.toExponential(3)
            : v.toFixed(4)
        : v == null
          ? '—'
          : String(v);
  }
  return out;
}
