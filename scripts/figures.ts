/**
 * npm run figures [-- --scale micro] [--runs data/runs] [--backend wasm] [--out figures]
 *                 [--formats png,svg] [--width 1000 --height 600] [--smooth 1] [--demo]
 * Builds every report figure from STORED runs (no training) and writes <out>/<name>.png and
 * .svg with headless Chromium. --demo: synthetic, seeded data instead of runs.
 * Runs: completed runs of --scale (default micro) on --backend (default $CEG_BACKEND or wasm)
 * in --runs (default $CEG_RUNS or data/runs), plus the scale's ladder rungs if trained.
 */
import fs from 'node:fs';
import path from 'node:path';
import { defaultRunsRoot, projectPath } from '../src/paths.js';
import { buildAllFigures, type ReportData } from '../src/report/all.js';
import { demoReportData } from '../src/report/demo.js';
import { exportFigures, IMAGE_FORMATS, type ImageFormat } from '../src/report/export.js';
import { loadReportData as loadFromStore, type LoadOptions, type LoadResult } from '../src/report/from-runs.js';
import { describeError } from '../src/cli/errors.js';
import { RunStore } from '../src/runs/index.js';
import type { BackendName } from '../src/engine/index.js';
import { LADDERS, ladderOf } from '../src/scales.js';
import { checkRuns, staleIds, type CodeStatus } from '../src/train/stale.js';
import { readEnv } from '../src/env.js';
import { backendFlag, parseScriptArgs, type CommandSpec } from '../src/cli/args.js';

/** ReportData from the run store (see src/report/from-runs.ts); throws NoRunsError when empty. */
export function loadReportData(opts: LoadOptions = {}): LoadResult {
  return loadFromStore(opts);
}

const spec = {
  summary: 'Build every report figure from stored runs (no training) and write <out>/<name>.png and .svg.',
  flags: {
    scale: { type: 'string', default: 'micro', help: 'scale of the runs (or the --scale label of imported runs)' },
    runs: { type: 'string', default: defaultRunsRoot(), help: 'run store ($CEG_RUNS or data/runs)' },
    backend: backendFlag({
      default: readEnv('CEG_BACKEND') ?? 'wasm',
      help: 'backend the runs were trained on ($CEG_BACKEND or wasm)',
    }),
    out: { type: 'string', default: projectPath('figures'), help: 'output folder' },
    formats: { type: 'list', choices: IMAGE_FORMATS, noun: 'format', default: ['png', 'svg'], help: 'image formats' },
    width: { type: 'int', default: 1000, min: 1, help: 'pixels' },
    height: { type: 'int', default: 600, min: 1, help: 'pixels' },
    smooth: { type: 'int', default: 1, min: 1, help: 'trailing mean over N evaluations of the loss curves (1: raw)' },
    demo: { type: 'bool', help: 'synthetic, seeded data instead of runs' },
    study: {
      type: 'string',
      help: "a study plan's figures instead (as ceg report --study NAME --figures DIR), and its table as <out>/study_NAME.txt",
    },
  },
} as const satisfies CommandSpec;

async function main(): Promise<void> {
  const { flags: values } = parseScriptArgs('npm run figures --', spec);
  const formats = values.formats as ImageFormat[];
  const { width, height, smooth } = values;
  if (values.study !== undefined) {
    // a study plan's figures (loss vs LR per variant, frontiers, CEG vs compute, anchors): src/report/study-figures.ts
    const { getPlan } = await import('../src/plans.js');
    const { studyData } = await import('../src/report/study.js');
    const { reportStudy } = await import('../src/cli/study-report.js');
    const d = studyData(getPlan(values.study), new RunStore(values.runs), values.backend as BackendName);
    fs.mkdirSync(values.out, { recursive: true });
    await reportStudy(d, {
      format: 'table',
      out: path.join(values.out, `study_${values.study}.txt`),
      figures: values.out,
    });
    return;
  }
  let data: ReportData;
  const t0 = performance.now();
  if (values.demo) {
    data = demoReportData(1);
  } else {
    // stale runs (the code changed what they compute: src/train/stale.ts) are left out of every figure
    const store = new RunStore(values.runs);
    const checked = new Map<string, CodeStatus>();
    for (const scale of [
      values.scale,
      ...(Object.hasOwn(LADDERS, values.scale) ? ladderOf(values.scale).map((r) => r.name) : []),
    ])
      for (const [id, cs] of await checkRuns(store, { scale, backend: values.backend }, (m) =>
        console.error(`[ceg] ${m}`),
      ))
        checked.set(id, cs);
    const loaded = loadReportData({
      runs: values.runs,
      scale: values.scale,
      backend: values.backend,
      smooth,
      stale: staleIds(checked),
    });
    data = loaded.data;
    console.log(
      `read ${loaded.counts.runs} runs at scale ${values.scale} and ${loaded.counts.ladderRuns} ladder runs (backend ${values.backend}) from ${path.resolve(values.runs)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    for (const n of loaded.notes) console.log(`note: ${n}`);
  }
  const figs = buildAllFigures(data);
  const t1 = performance.now();
  const written = await exportFigures(figs, values.out, { formats, width, height });
  const total = performance.now() - t1;
  for (const w of written)
    console.log(
      `${path.relative(process.cwd(), w.file).padEnd(36)} ${(w.bytes / 1024).toFixed(1).padStart(7)} KiB ${w.ms.toFixed(0).padStart(5)} ms`,
    );
  console.log(
    `${figs.length} figures, ${written.length} files in ${(total / 1000).toFixed(1)} s (browser start included)`,
  );
}

const isEntry = process.argv[1] && /figures\.ts$/.test(process.argv[1]);
if (isEntry) {
  main().catch((e) => {
    const handled = describeError(e); // bad input (NoRunsError, ExportError, ...): exit 2
    console.error(handled ? handled.message : e instanceof Error ? e.message : e);
    process.exit(handled ? handled.exitCode : 1);
  });
}
