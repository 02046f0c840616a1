/**
 * npm run figures [-- --scale micro] [--runs data/runs] [--backend wasm] [--out figures]
 *                 [--formats png,svg] [--width 1000 --height 600] [--smooth 1] [--demo]
 * Builds every report figure from STORED runs (no training) and writes <out>/<name>.png and
 * .svg with headless Chromium. --demo: synthetic, seeded data instead of runs.
 * Runs: completed runs of --scale (default micro) on --backend (default $CEG_BACKEND or wasm)
 * in --runs (default $CEG_RUNS or data/runs), plus the scale's ladder rungs if trained.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultRunsRoot, projectPath } from '../src/paths.js';
import { buildAllFigures, type ReportData } from '../src/report/all.js';
import { demoReportData } from '../src/report/demo.js';
import { exportFigures, IMAGE_FORMATS, type ImageFormat } from '../src/report/export.js';
import { loadReportData as loadFromStore, type LoadOptions, type LoadResult } from '../src/report/from-runs.js';
import { describeError } from '../src/cli/errors.js';
import { RunStore } from '../src/runs/index.js';
import { LADDERS, ladderOf } from '../src/scales.js';
import { checkRuns, staleIds, type CodeStatus } from '../src/train/stale.js';
import { readEnv } from '../src/env.js';

/** ReportData from the run store (see src/report/from-runs.ts); throws NoRunsError when empty. */
export function loadReportData(opts: LoadOptions = {}): LoadResult {
  return loadFromStore(opts);
}

const FIGURES_HELP = `usage: npm run figures -- [--scale micro] [--runs DIR] [--backend wasm] [--out figures]
                        [--formats png,svg] [--width 1000 --height 600] [--smooth 1] [--demo]

Build every report figure from stored runs (no training) and write <out>/<name>.png and .svg.
  --scale NAME      scale of the runs (default micro; or the --scale label of imported runs)
  --runs DIR        run store (default $CEG_RUNS or data/runs)
  --backend NAME    backend the runs were trained on (default $CEG_BACKEND or wasm)
  --out DIR         output folder (default figures)
  --formats LIST    png,svg (default both)
  --width/--height  pixels (default 1000 x 600)
  --smooth N        trailing mean over N evaluations of the loss curves (default 1: raw)
  --demo            synthetic, seeded data instead of runs`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      demo: { type: 'boolean', default: false },
      out: { type: 'string', default: projectPath('figures') },
      runs: { type: 'string', default: defaultRunsRoot() },
      scale: { type: 'string', default: 'micro' },
      backend: { type: 'string', default: readEnv('CEG_BACKEND') ?? 'wasm' },
      smooth: { type: 'string', default: '1' },
      formats: { type: 'string', default: 'png,svg' },
      width: { type: 'string', default: '1000' },
      height: { type: 'string', default: '600' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(FIGURES_HELP);
    return;
  }
  const formats = values.formats!.split(',').map((f) => f.trim()) as ImageFormat[];
  for (const f of formats) {
    if (!IMAGE_FORMATS.includes(f)) throw new Error(`--formats: "${f}" invalid; valid: ${IMAGE_FORMATS.join(', ')}`);
  }
  const width = Number(values.width);
  const height = Number(values.height);
  if (!(width > 0 && height > 0)) throw new Error(`--width/--height must be positive numbers, got ${values.width}x${values.height}`);
  const smooth = Number(values.smooth);
  if (!Number.isInteger(smooth) || smooth < 1) throw new Error(`--smooth must be an integer >= 1 (evaluations in the trailing mean), got ${values.smooth}`);
  let data: ReportData;
  const t0 = performance.now();
  if (values.demo) {
    data = demoReportData(1);
  } else {
    // stale runs (the code changed what they compute: src/train/stale.ts) are left out of every figure
    const store = new RunStore(values.runs);
    const checked = new Map<string, CodeStatus>();
    for (const scale of [values.scale!, ...(Object.hasOwn(LADDERS, values.scale!) ? ladderOf(values.scale!).map((r) => r.name) : [])])
      for (const [id, cs] of await checkRuns(store, { scale, backend: values.backend }, (m) => console.error(`[ceg] ${m}`))) checked.set(id, cs);
    const loaded = loadReportData({ runs: values.runs, scale: values.scale, backend: values.backend, smooth, stale: staleIds(checked) });
    data = loaded.data;
    console.log(`read ${loaded.counts.runs} runs at scale ${values.scale} and ${loaded.counts.ladderRuns} ladder runs (backend ${values.backend}) from ${path.resolve(values.runs!)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (const n of loaded.notes) console.log(`note: ${n}`);
  }
  const figs = buildAllFigures(data);
  const t1 = performance.now();
  const written = await exportFigures(figs, values.out!, { formats, width, height });
  const total = performance.now() - t1;
  for (const w of written) console.log(`${path.relative(process.cwd(), w.file).padEnd(36)} ${(w.bytes / 1024).toFixed(1).padStart(7)} KiB ${w.ms.toFixed(0).padStart(5)} ms`);
  console.log(`${figs.length} figures, ${written.length} files in ${(total / 1000).toFixed(1)} s (browser start included)`);
}

const isEntry = process.argv[1] && /figures\.ts$/.test(process.argv[1]);
if (isEntry) {
  main().catch((e) => {
    const handled = describeError(e); // bad input (NoRunsError, ExportError, ...): exit 2
    console.error(handled ? handled.message : e instanceof Error ? e.message : e);
    process.exit(handled ? handled.exitCode : 1);
  });
}
