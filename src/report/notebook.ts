/**
 * Display helpers for notebooks: `await show(figure)` and `showHtml(html)`.
 *  - under the headless runner (npm run notebooks): display_data with the Plotly JSON
 *    (interactive in JupyterLab / VS Code) and an embedded static PNG (readable offline);
 *  - under the tslab kernel in Jupyter: one display_data bundle with the Plotly JSON
 *    (application/vnd.plotly.v1+json: interactive where a Plotly renderer is installed, e.g.
 *    JupyterLab, VS Code; a few KiB, no plotly.js embedded) and the static PNG (rendered with
 *    Chromium) that front-ends without a Plotly renderer show instead;
 *  - anywhere else (a plain script): one line naming the figure.
 */
import type { Figure } from './types.js';
import { openExporter, type Exporter } from './export.js';
import { shrinkPng } from '../notebook/png.js';

const SINK_KEY = '__cegNotebookSink__'; // = SINK_KEY in src/notebook/executor.ts

interface Sink {
  showFigure(figure: Figure, opts?: { width?: number; height?: number }): Promise<void>;
  display(bundle: Record<string, unknown>): void;
}

interface TslabDisplay {
  html(s: string): void;
  png(b: Uint8Array): void;
  raw(contentType: string, b: string | Uint8Array): unknown;
}

type WriteDisplayData = (content: { data: Record<string, unknown>; metadata: Record<string, unknown>; transient: Record<string, unknown> }, update: boolean) => void;

/** tslab's writer of display_data messages (several MIME types in one message), when available. */
function tslabWriter(): WriteDisplayData | null {
  const t = (globalThis as { __tslab__?: { require?: (id: string) => { lastWriteDisplayData?: WriteDisplayData | null } } }).__tslab__;
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

/** True inside the headless runner or tslab's kernel (where HTML and figures can be displayed). */
export function inNotebook(): boolean {
  return Boolean((globalThis as Record<string, unknown>)[SINK_KEY]) || tslabDisplay() !== null;
}

let kernelExporter: Promise<Exporter> | null = null;

export interface ShowOptions {
  /** static image size in pixels (default 800x450) */
  width?: number;
  height?: number;
}

export async function show(figure: Figure, opts: ShowOptions = {}): Promise<void> {
  const sink = (globalThis as Record<string, unknown>)[SINK_KEY] as Sink | undefined;
  if (sink) return sink.showFigure(figure, opts);
  const tslab = tslabDisplay();
  if (tslab) {
    let png: Buffer | null = null;
    try {
      kernelExporter ??= openExporter();
      png = shrinkPng(await (await kernelExporter).render(figure, 'png', { width: opts.width ?? 800, height: opts.height ?? 450 }));
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
            'text/plain': `[figure: ${title.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim()}]`,
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
  console.log(`[figure: ${t.replace(/<[^>]+>/g, ' ')}] (not in a notebook; export it with exportFigures from src/report/export.ts)`);
}

/** Show HTML (e.g. an arquero table's toHTML()). */
export function showHtml(html: string): void {
  const sink = (globalThis as Record<string, unknown>)[SINK_KEY] as Sink | undefined;
  if (sink) {
    sink.display({ 'text/html': html, 'text/plain': html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim() });
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
