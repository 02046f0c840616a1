/**
 * Static export of Plotly figures (PNG, SVG) with headless Chromium, driven by playwright-core.
 * Plotly is loaded from node_modules into a blank page: no network. One browser serves every
 * figure of a call (openExporter keeps it open for repeated use, e.g. by the notebook runner).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Figure, NamedFigure } from './types.js';
import { readEnv } from '../env.js';
import { writeFileAtomic } from '../fsx.js';

export type ImageFormat = 'png' | 'svg';
export const IMAGE_FORMATS: readonly ImageFormat[] = ['png', 'svg'];

export class ExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportError';
  }
}

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The Chromium binary to drive: $CEG_CHROMIUM, else Debian's /usr/bin/chromium; null if absent. */
export function chromiumPath(): string | null {
  const p = readEnv('CEG_CHROMIUM') || '/usr/bin/chromium';
  return existsSync(p) ? p : null;
}

function requireChromium(): string {
  const p = chromiumPath();
  if (!p) {
    const tried = readEnv('CEG_CHROMIUM') ? `CEG_CHROMIUM=${readEnv('CEG_CHROMIUM')}` : '/usr/bin/chromium';
    throw new ExportError(
      `no Chromium at ${tried}: install Debian's chromium: apt-get install chromium, or set CEG_CHROMIUM to a Chromium binary`,
    );
  }
  return p;
}

function plotlyBundlePath(): string {
  const require = createRequire(import.meta.url);
  return require.resolve('plotly.js-dist-min/plotly.min.js');
}

export interface RenderOptions {
  width?: number;
  height?: number;
  /** device pixel ratio for PNG (default 1) */
  scale?: number;
}

export interface Exporter {
  /** PNG bytes or SVG text as UTF-8 bytes */
  render(figure: Figure, format: ImageFormat, opts?: RenderOptions): Promise<Buffer>;
  close(): Promise<void>;
}

/** Start Chromium and load Plotly once; render any number of figures; close() when done. */
export async function openExporter(): Promise<Exporter> {
  const executablePath = requireChromium();
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true });
  try {
    const page = await browser.newPage();
    await page.setContent('<!doctype html><html><head><meta charset="utf-8"></head><body></body></html>');
    await page.addScriptTag({ path: plotlyBundlePath() });
    return {
      async render(figure, format, opts = {}) {
        if (!IMAGE_FORMATS.includes(format))
          throw new ExportError(`format "${format}" invalid; valid: ${IMAGE_FORMATS.join(', ')}`);
        const width = opts.width ?? 1000;
        const height = opts.height ?? 600;
        const scale = opts.scale ?? 1;
        const url: string = await page.evaluate(
          async ({ fig, format, width, height, scale }) => {
            // biome-ignore lint/suspicious/noExplicitAny: Plotly's global in the browser page, untyped
            const P = (globalThis as any).Plotly;
            const gd = document.createElement('div');
            document.body.appendChild(gd);
            try {
              const layout = { ...fig.layout, width, height };
              await P.newPlot(gd, fig.data, layout, { staticPlot: true });
              return await P.toImage(gd, { format, width, height, scale });
            } finally {
              P.purge(gd);
              gd.remove();
            }
          },
          { fig: JSON.parse(JSON.stringify(figure)), format, width, height, scale },
        );
        return decodeDataUrl(url);
      },
      async close() {
        await browser.close();
      },
    };
  } catch (e) {
    await browser.close();
    throw e;
  }
}

/** data:image/png;base64,... or data:image/svg+xml,<url-encoded> -> bytes. */
export function decodeDataUrl(url: string): Buffer {
  const comma = url.indexOf(',');
  if (!url.startsWith('data:') || comma < 0) throw new ExportError(`not a data URL: ${url.slice(0, 40)}...`);
  const head = url.slice(5, comma);
  const body = url.slice(comma + 1);
  return head.endsWith(';base64') ? Buffer.from(body, 'base64') : Buffer.from(decodeURIComponent(body), 'utf8');
}

export interface ExportOptions extends RenderOptions {
  formats?: ImageFormat[];
}

export interface ExportedFile {
  name: string;
  format: ImageFormat;
  file: string;
  bytes: number;
  ms: number;
}

/** Render every figure to outDir/<name>.<format> with one browser; returns what was written. */
export async function exportFigures(
  figs: NamedFigure[],
  outDir: string,
  opts: ExportOptions = {},
): Promise<ExportedFile[]> {
  const formats = opts.formats ?? ['png', 'svg'];
  for (const f of formats)
    if (!IMAGE_FORMATS.includes(f)) throw new ExportError(`format "${f}" invalid; valid: ${IMAGE_FORMATS.join(', ')}`);
  const names = new Set<string>();
  for (const { name } of figs) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name))
      throw new ExportError(`figure name "${name}" must be a plain file stem (letters, digits, . _ -)`);
    if (names.has(name)) throw new ExportError(`figure name "${name}" is used twice`);
    names.add(name);
  }
  const exporter = await openExporter();
  const written: ExportedFile[] = [];
  try {
    for (const { name, figure } of figs) {
      for (const format of formats) {
        const t0 = performance.now();
        const bytes = await exporter.render(figure, format, opts);
        const file = path.join(outDir, `${name}.${format}`);
        await mkdir(path.dirname(file), { recursive: true });
        writeFileAtomic(file, bytes);
        written.push({ name, format, file, bytes: bytes.length, ms: performance.now() - t0 });
      }
    }
  } finally {
    await exporter.close();
  }
  return written;
}
