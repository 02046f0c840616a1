/**
 * Display helpers for notebooks: `await show(figure)` and `showHtml(html)`.
 *  - under the headless runner (npm run notebooks): display_data with the Plotly JSON
 *    (interactive in JupyterLab / VS Code) and an embedded static PNG (readable offline);
 *  - under the tslab kernel in Jupyter: tslab's display API (PNG rendered with Chromium, or the
 *    Plotly JSON when Chromium is missing);
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
    try {
      kernelExporter ??= openExporter();
      const png = await (await kernelExporter).render(figure, 'png', { width: opts.width ?? 800, height: opts.height ?? 450 });
      tslab.png(shrinkPng(png));
    } catch {
      kernelExporter = null;
      tslab.raw('application/vnd.plotly.v1+json', JSON.stringify(figure));
    }
    return;
  }
  const t = (figure.layout as { title?: { text?: string } }).title?.text ?? 'figure';
  console.log(`[figure: ${t.replace(/<[^>]+>/g, ' ')}] (not in a notebook; export it with exportFigures from src/report/export.ts)`);
}

/** Show HTML (e.g. an arquero table's toHTML()). */
export function showHtml(html: string): void {
  const sink = (globalThis as Record<string, unknown>)[SINK_KEY] as Sink | undefined;
  if (sink) return sink.display({ 'text/html': html, 'text/plain': html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim() });
  const tslab = tslabDisplay();
  if (tslab) return tslab.html(html);
  console.log(html);
}
