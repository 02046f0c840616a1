/**
 * npm run figures [-- --demo] [--out figures] [--formats png,svg] [--width 1000 --height 600]
 * Builds every report figure from stored runs (or synthetic data with --demo) and writes
 * <out>/<name>.png and .svg with headless Chromium.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildAllFigures, type ReportData } from '../src/report/all.js';
import { demoReportData } from '../src/report/demo.js';
import { exportFigures, IMAGE_FORMATS, type ImageFormat } from '../src/report/export.js';

/**
 * Loader stub: the lead connects the run store (src/runs) and the CEG analysis (src/ceg) here,
 * mapping metric rows to RunCurve and CEG tables (`table.objects()`) to CegRow.
 */
export async function loadReportData(_runsDir: string): Promise<ReportData> {
  throw new Error('loading stored runs is not connected yet (src/runs); run with --demo to see synthetic figures');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      demo: { type: 'boolean', default: false },
      out: { type: 'string', default: 'figures' },
      runs: { type: 'string', default: 'runs' },
      formats: { type: 'string', default: 'png,svg' },
      width: { type: 'string', default: '1000' },
      height: { type: 'string', default: '600' },
    },
  });
  const formats = values.formats!.split(',').map((f) => f.trim()) as ImageFormat[];
  for (const f of formats) {
    if (!IMAGE_FORMATS.includes(f)) throw new Error(`--formats: "${f}" invalid; valid: ${IMAGE_FORMATS.join(', ')}`);
  }
  const width = Number(values.width);
  const height = Number(values.height);
  if (!(width > 0 && height > 0)) throw new Error(`--width/--height must be positive numbers, got ${values.width}x${values.height}`);
  const data = values.demo ? demoReportData(1) : await loadReportData(values.runs!);
  const figs = buildAllFigures(data);
  const t0 = performance.now();
  const written = await exportFigures(figs, values.out!, { formats, width, height });
  const total = performance.now() - t0;
  for (const w of written) console.log(`${path.relative(process.cwd(), w.file).padEnd(36)} ${(w.bytes / 1024).toFixed(1).padStart(7)} KiB ${w.ms.toFixed(0).padStart(5)} ms`);
  console.log(`${figs.length} figures, ${written.length} files in ${(total / 1000).toFixed(1)} s (browser start included)`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
