/**
 * `ceg`: the command line. Thin: parse, call the library, print.
 *   ceg train --innovation rope --scale micro --seed 1 [--backend wasm]
 *   ceg sweep --scale micro --seeds 3 [--innovations a,b]
 *   ceg ladder --innovations baseline,layernorm --seeds 2
 *   ceg runs [--scale micro] [--innovation rope]
 *   ceg prepare [--corpus sotu] [--tokenizer char]
 *   ceg report --scale micro [--axis flops]
 *   ceg reproduce --scale micro [--seeds 1]      (npm start)
 *   ceg study --plan cpu [--dry-run]             (issue #13's study; ceg report --study cpu)
 * Bad input ends with one message naming the bad value and the valid choices, exit code 2,
 * and nothing written.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  defineCli, parseCommand, helpText, usage, reportUsageError, UsageError,
  innovationFlag, innovationsFlag, scaleFlag, backendFlag, seedsFlag,
} from './args.js';
import { ConfigError, CORPORA, TOKENIZERS } from '../config.js';
import { EngineError, requestedBackend, type BackendName } from '../engine/index.js';
import { STUDY_SET } from '../innovations.js';
import { LADDERS, ladderOf, ladderRungNames, scaleNames } from '../scales.js';
import { RunStore, isRunId } from '../runs/index.js';
import { ensureRuns, ensureSpecs, runSpec, resolveScale, type RunRecord, type SpecOptions } from '../train/sweep.js';
import { getPlan, planNames } from '../plans.js';
import { validatePlan } from '../train/study.js';
import { analyzeStudyData, formatStudyReport, studyData } from '../report/study.js';
import { formatDryRun, runStudy } from './study.js';
import { InterruptedError } from '../train/trainer.js';
import { measureStepTimes, saveTiming, loadTiming, calibratedSecondsCeg } from '../train/timing.js';
import { cegTable, formatCegTable, paperVsOurs, formatPaperVsOurs, verdicts, alignColumns } from '../ceg/index.js';
import { storedRecords } from '../report/from-runs.js';
import { prepareCorpus, DataError, BUNDLED_CORPORA, TOKENIZER_NAMES, type BundledCorpus, type TokenizerName } from '../data/index.js';

function defaultJobs(): number {
  return Math.max(1, Math.min(2, os.availableParallelism()));
}

const runsFlag = { type: 'string', help: 'run store folder (default $CEG_RUNS or <project>/data/runs)' } as const;

const spec = defineCli({
  train: {
    summary: 'train one run (or return it from the store if complete; resume it if interrupted)',
    flags: {
      innovation: innovationFlag({ default: 'baseline' }),
      scale: scaleFlag({ default: 'micro', choices: () => [...scaleNames(), ...ladderRungNames()], help: 'named scale or ladder rung' }),
      seed: { type: 'int', default: 1, min: 0, help: 'run seed' },
      backend: backendFlag(),
      data: { type: 'string', help: 'folder with nanoGPT-format train.bin/val.bin to train on instead of the bundled corpus' },
      tokenizer: { type: 'choice', choices: TOKENIZERS, noun: 'tokenizer', help: "tokenizer of the data (default: the scale's; gpt2 with --data)" },
      config: { type: 'string', help: 'JSON file {"model": {...}, "train": {...}} of overrides over the scale' },
      runs: runsFlag,
      run: { type: 'string', help: 'train the run with this id from its spec.json in the store (runs created by ceg study); other run flags are ignored' },
    },
  },
  study: {
    summary: 'a study plan (issue #13): print it with an estimated time (--dry-run), or run it (resumable, cached)',
    flags: {
      plan: { type: 'choice', choices: () => planNames(), noun: 'study plan', required: true, help: 'plan name (src/plans.ts)' },
      dryRun: { type: 'bool', default: false, help: 'print the plan, its runs and the estimated time on this machine; train nothing' },
      backend: backendFlag(),
      jobs: { type: 'int', default: defaultJobs(), min: 1, help: 'runs trained at once, one process each (default: 2 on 2+ cores)' },
      runs: runsFlag,
    },
  },
  sweep: {
    summary: 'train every variant x seed at a scale, skipping completed runs',
    flags: {
      scale: scaleFlag({ default: 'micro', choices: () => [...scaleNames(), ...ladderRungNames()], help: 'named scale or ladder rung' }),
      seeds: seedsFlag({ of: 'int', help: 'N (seeds 1..N) or a comma-separated list', default: [1] }),
      innovations: innovationsFlag({ help: "comma-separated ids (default: the paper's study set)" }),
      backend: backendFlag(),
      jobs: { type: 'int', default: defaultJobs(), min: 1, help: 'runs trained at once, one process each (default: 2 on 2+ cores)' },
      data: { type: 'string', help: 'folder with nanoGPT-format train.bin/val.bin to train on instead of the bundled corpus' },
      tokenizer: { type: 'choice', choices: TOKENIZERS, noun: 'tokenizer', help: "tokenizer of the data (default: the scale's; gpt2 with --data)" },
      config: { type: 'string', help: 'JSON file {"model": {...}, "train": {...}} of overrides over the scale' },
      runs: runsFlag,
    },
  },
  ladder: {
    summary: 'train the scaling ladder of a scale (for scaling fits and compute-dependence verdicts)',
    flags: {
      scale: { type: 'choice', choices: () => Object.keys(LADDERS), noun: 'ladder scale', default: 'micro', help: 'scale whose ladder to train' },
      seeds: seedsFlag({ of: 'int', help: 'N (seeds 1..N) or a comma-separated list', default: [1] }),
      innovations: innovationsFlag({ default: ['baseline', 'layernorm', 'mqa'] }),
      backend: backendFlag(),
      jobs: { type: 'int', default: defaultJobs(), min: 1, help: 'runs trained at once, one process each (default: 2 on 2+ cores)' },
      runs: runsFlag,
    },
  },
  timing: {
    summary: "measure every variant's ms/step side by side (interleaved, one process) for a load-independent wall-clock CEG",
    flags: {
      scale: scaleFlag({ default: 'micro' }),
      innovations: innovationsFlag({ help: "comma-separated ids (default: the paper's study set)" }),
      steps: { type: 'int', default: 5, min: 1, help: 'timed steps per variant per round' },
      rounds: { type: 'int', default: 3, min: 1, help: 'interleaved rounds' },
      backend: backendFlag(),
      runs: runsFlag,
    },
  },
  runs: {
    summary: 'list stored runs',
    flags: {
      scale: { type: 'string', help: 'only this scale' },
      innovation: innovationFlag({ help: 'only this innovation' }),
      runs: runsFlag,
    },
  },
  prepare: {
    summary: 'tokenise bundled corpora once and cache train.bin/val.bin',
    flags: {
      corpus: { type: 'list', choices: BUNDLED_CORPORA, noun: 'corpus', help: 'corpora (default all)' },
      tokenizer: { type: 'list', choices: TOKENIZER_NAMES, noun: 'tokenizer', help: 'tokenizers (default all)' },
    },
  },
  report: {
    summary: 'print the CEG table of stored runs: the paper method beside ours on every axis',
    flags: {
      scale: scaleFlag({ default: 'micro' }),
      study: { type: 'choice', choices: () => planNames(), noun: 'study plan', help: "a study plan's table and verdicts instead (ceg study)" },
      backend: backendFlag(),
      runs: runsFlag,
    },
  },
  reproduce: {
    summary: "the study at a scale: train the paper's variant set (cached runs are reused), then the CEG table",
    flags: {
      scale: scaleFlag({ default: 'micro' }),
      seeds: seedsFlag({ of: 'int', help: 'N (seeds 1..N) or a comma-separated list', default: [1] }),
      backend: backendFlag(),
      jobs: { type: 'int', default: defaultJobs(), min: 1, help: 'runs trained at once, one process each (default: 2 on 2+ cores)' },
      runs: runsFlag,
    },
  },
});

/** --data / --tokenizer / --config as SpecOptions; a bad config file is a clear usage error. */
function specOptions(f: { data?: string; tokenizer?: string; config?: string }): SpecOptions {
  let overrides: SpecOptions['overrides'];
  if (f.config) {
    if (!fs.existsSync(f.config)) throw new UsageError(`--config: no such file "${f.config}"`);
    try {
      overrides = JSON.parse(fs.readFileSync(f.config, 'utf8'));
    } catch (e) {
      throw new UsageError(`--config ${f.config}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides))
      throw new UsageError(`--config ${f.config}: expected an object {"model": {...}, "train": {...}}`);
  }
  if (f.data) {
    for (const file of ['train.bin', 'val.bin']) {
      if (!fs.existsSync(path.join(f.data, file))) throw new UsageError(`--data ${f.data}: missing ${file} (nanoGPT format: uint16 token ids)`);
    }
  }
  return { dataDir: f.data, tokenizer: f.tokenizer, overrides };
}

/** `--seeds 3` means seeds 1..3; a list means those seeds. */
function seedList(v: readonly number[]): number[] {
  if (v.length === 1) {
    if (v[0] < 1) throw new UsageError(`--seeds ${v[0]}: give a count >= 1 or a list of seeds`);
    return Array.from({ length: v[0] }, (_, i) => i + 1);
  }
  return [...v];
}

function backendOf(flag: string | undefined): BackendName {
  return requestedBackend({ backend: flag as BackendName | undefined });
}

function storeOf(flag: string | undefined): RunStore {
  return new RunStore(flag);
}

/** SIGINT: first stops after the current step with a checkpoint; second exits at once. */
function interruptSignal(): AbortSignal {
  const ac = new AbortController();
  process.on('SIGINT', () => {
    if (ac.signal.aborted) process.exit(130);
    process.stderr.write('\n[ceg] interrupt: checkpointing after this step (Ctrl-C again to quit at once)\n');
    ac.abort();
  });
  return ac.signal;
}

function printReport(records: RunRecord[], scale: string): void {
  const table = cegTable(records.map((r) => ({ innovation: r.innovation, seed: r.seed, scale: r.scale, metrics: r.metrics })), { scale });
  console.log(`\nCompute-equivalent gain at scale "${scale}" (${new Set(records.map((r) => r.seed)).size} seed(s); CI = bootstrap 95% over seeds)`);
  console.log(formatCegTable(table));
  console.log(
    'CEG seconds uses each run\'s own wall-clock time, which includes whatever else the machine was doing while it trained;\n' +
      'on a shared machine prefer the wall-clock CEG from side-by-side step times below (ceg timing).',
  );
  console.log("\nThe paper's published numbers (compact scale) beside ours:");
  console.log(formatPaperVsOurs(paperVsOurs(table, 'compact')));
}

/** Wall-clock CEG from side-by-side step times (ceg timing), when measured for this scale. */
function printTiming(records: RunRecord[], store: RunStore, scale: string, backend: string): void {
  const t = loadTiming(store.root, scale, backend);
  if (!t) {
    console.log(`\n(run \`ceg timing --scale ${scale}\` for a wall-clock CEG from step times measured side by side)`);
    return;
  }
  const base = t.results.find((r) => r.innovation === 'baseline');
  if (!base) return;
  const table = cegTable(records.map((r) => ({ innovation: r.innovation, seed: r.seed, scale: r.scale, metrics: r.metrics })), { scale });
  const rows = table.objects() as Record<string, unknown>[];
  const f3 = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(3) : '-');
  console.log(`\nWall-clock CEG from step times measured side by side (${t.measuredAt.slice(0, 16)}Z, load ${t.load.toFixed(2)}): CEG steps x baseline ms/step / variant ms/step`);
  console.log(
    alignColumns(
      ['Innovation', 'ms/step', 'CEG steps', 'CEG wall-clock'],
      t.results.map((r) => {
        const row = rows.find((x) => x.innovation === r.innovation);
        const steps = (row?.ceg_steps as number | null | undefined) ?? null;
        return [String(row?.label ?? r.innovation), r.msPerStep.toFixed(1), f3(steps), f3(calibratedSecondsCeg(steps, base.msPerStep, r.msPerStep))];
      }),
    ),
  );
}

/** The compute-dependence verdicts from the scale's ladder runs, when there are any. */
function printVerdicts(store: RunStore, scale: string, backend: string): void {
  if (!(scale in LADDERS)) return;
  const ladder = ladderOf(scale).flatMap((r) => storedRecords(store, r.name, backend));
  if (ladder.length === 0) {
    console.log(`\n(no ladder runs: \`ceg ladder --scale ${scale}\` trains them for the compute-dependence verdicts)`);
    return;
  }
  const rows = verdicts(ladder).objects() as Record<string, unknown>[];
  const f3 = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(3) : '-');
  console.log(`\nCompute dependence from the ${scale} scaling ladder (${ladderOf(scale).map((r) => r.name).join(', ')}):`);
  console.log(
    alignColumns(
      ['Innovation', 'Paper category', 'Seeds', 'Slope of log CEG vs log C', '95% CI', 'Verdict'],
      rows.map((r) => [String(r.innovation), String(r.paper_category), String(r.seeds), f3(r.slope), `[${f3(r.ci_low)}, ${f3(r.ci_high)}]`, String(r.verdict)]),
    ),
  );
}

export async function main(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, spec);
  if (parsed.help) {
    console.log(parsed.command === 'help' ? helpText(spec, parsed) : usage(spec, parsed.command));
    return 0;
  }
  switch (parsed.command) {
    case 'train': {
      const f = parsed.flags;
      if (f.run !== undefined) {
        const store = storeOf(f.runs);
        const run = isRunId(f.run) ? store.get(f.run) : undefined;
        if (!run) throw new UsageError(`--run ${f.run}: no run with that id in ${store.root} (ceg study creates them)`);
        const [r] = await ensureSpecs([run.spec], { store, signal: interruptSignal() });
        const last = r.metrics[r.metrics.length - 1];
        console.log(`${r.innovation} ${r.scale} seed ${r.seed}: run ${r.id}, final val loss ${last?.valLoss?.toFixed(4)}${r.cached ? ' (cached)' : ''}`);
        return 0;
      }
      const so = specOptions(f);
      const s = runSpec(f.innovation, f.scale, f.seed, backendOf(f.backend), so);
      const [r] = await ensureRuns({
        scale: f.scale, innovations: [s.innovation], seeds: [f.seed], backend: s.backend,
        store: storeOf(f.runs), signal: interruptSignal(), specOptions: so,
      });
      const last = r.metrics[r.metrics.length - 1];
      console.log(`${r.innovation} ${r.scale} seed ${r.seed}: run ${r.id}, final val loss ${last?.valLoss?.toFixed(4)}${r.cached ? ' (cached)' : ''}`);
      return 0;
    }
    case 'sweep':
    case 'reproduce': {
      const f = parsed.flags;
      const innovations = 'innovations' in f && f.innovations.length ? f.innovations : [...STUDY_SET];
      const backend = backendOf(f.backend);
      const seeds = seedList(f.seeds);
      const so = 'data' in f ? specOptions(f) : {};
      for (const inn of innovations) for (const seed of seeds) runSpec(inn, f.scale, seed, backend, so); // validate all first
      const store = storeOf(f.runs);
      console.error(`[ceg] ${innovations.length} variants x ${seeds.length} seed(s) at scale "${f.scale}" on ${backend}; run store ${store.root}`);
      const records = await ensureRuns({
        scale: f.scale, innovations, seeds, backend, store, signal: interruptSignal(), jobs: f.jobs,
        specOptions: so, configFile: 'config' in f ? f.config : undefined,
      });
      console.log(`\nFinal validation loss (scale ${f.scale}):`);
      for (const r of records) console.log(`  ${r.innovation.padEnd(12)} seed ${r.seed}  ${r.metrics[r.metrics.length - 1]?.valLoss?.toFixed(4)}`);
      if (records.some((r) => r.innovation === 'baseline')) {
        printReport(records, f.scale);
        printTiming(records, store, f.scale, backend);
        printVerdicts(store, f.scale, backend);
      }
      return 0;
    }
    case 'timing': {
      const f = parsed.flags;
      const backend = backendOf(f.backend);
      const innovations = f.innovations.length ? f.innovations : [...STUDY_SET];
      for (const inn of innovations) runSpec(inn, f.scale, 1, backend); // validate first
      const store = storeOf(f.runs);
      const t = await measureStepTimes({
        scale: f.scale, innovations, backend, steps: f.steps, rounds: f.rounds,
        onProgress: (m) => process.stderr.write(`[ceg] timing ${m}\n`),
      });
      const file = saveTiming(store.root, t);
      console.log(`step times at scale "${f.scale}" on ${backend} (load ${t.load.toFixed(2)} at start), saved to ${file}:`);
      for (const r of t.results) console.log(`  ${r.innovation.padEnd(12)} ${r.msPerStep.toFixed(1).padStart(8)} ms/step`);
      return 0;
    }
    case 'ladder': {
      const f = parsed.flags;
      const backend = backendOf(f.backend);
      const store = storeOf(f.runs);
      const seeds = seedList(f.seeds);
      const signal = interruptSignal();
      for (const rung of ladderOf(f.scale)) {
        await ensureRuns({ scale: rung.name, innovations: f.innovations, seeds, backend, store, signal, jobs: f.jobs });
      }
      return 0;
    }
    case 'runs': {
      const f = parsed.flags;
      if (f.scale) resolveScale(f.scale);
      const store = storeOf(f.runs);
      const t = store.table({ ...(f.scale ? { scale: f.scale } : {}), ...(f.innovation ? { innovation: f.innovation } : {}) });
      if (t.numRows() === 0) console.log(`no runs in ${store.root}`);
      else t.print({ limit: Infinity });
      return 0;
    }
    case 'prepare': {
      const f = parsed.flags;
      for (const corpus of (f.corpus.length ? f.corpus : BUNDLED_CORPORA) as BundledCorpus[]) {
        for (const tokenizer of (f.tokenizer.length ? f.tokenizer : TOKENIZER_NAMES) as TokenizerName[]) {
          const p = prepareCorpus({ corpus, tokenizer, onProgress: (m) => console.error(`[ceg] ${m}`) });
          console.log(`${corpus}/${tokenizer}: ${p.meta.tokens.train} train + ${p.meta.tokens.val} val tokens in ${p.dir}${p.cached ? ' (cached)' : ''}`);
        }
      }
      return 0;
    }
    case 'study': {
      const f = parsed.flags;
      const plan = getPlan(f.plan);
      validatePlan(plan);
      const backend = backendOf(f.backend);
      const store = storeOf(f.runs);
      if (f.dryRun) {
        console.log(await formatDryRun(plan, { store, backend, jobs: f.jobs }));
        return 0;
      }
      console.error(`[ceg] study ${plan.name} on ${backend}, --jobs ${f.jobs}; run store ${store.root}`);
      await runStudy(plan, { store, backend, jobs: f.jobs, signal: interruptSignal() });
      const d = studyData(plan, store, backend);
      console.log(formatStudyReport(d, analyzeStudyData(d)));
      return 0;
    }
    case 'report': {
      const f = parsed.flags;
      const backend = backendOf(f.backend);
      const store = storeOf(f.runs);
      if (f.study !== undefined) {
        const d = studyData(getPlan(f.study), store, backend);
        if (d.done === 0) {
          console.error(`no completed runs of study "${f.study}" on ${backend} in ${store.root}; run: ceg study --plan ${f.study}`);
          return 1;
        }
        console.log(formatStudyReport(d, analyzeStudyData(d)));
        return 0;
      }
      const records = storedRecords(store, f.scale, backend);
      if (records.length === 0) {
        console.error(`no completed runs at scale "${f.scale}" on ${backend} in ${store.root}; train some with: ceg sweep --scale ${f.scale}`);
        return 1;
      }
      printReport(records, f.scale);
      printTiming(records, store, f.scale, backend);
      printVerdicts(store, f.scale, backend);
      return 0;
    }
  }
  return 0;
}

const isEntry = process.argv[1] && /main\.ts$|ceg(\.js)?$/.test(process.argv[1]);
if (isEntry || process.env.CEG_CLI_MAIN === '1') {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      if (e instanceof UsageError) process.exit(reportUsageError(e));
      if (e instanceof ConfigError || e instanceof EngineError || e instanceof DataError) {
        process.stderr.write(`ceg: ${e.message}\n`);
        process.exit(2);
      }
      if (e instanceof InterruptedError) {
        process.stderr.write(`ceg: ${e.message}\n`);
        process.exit(130);
      }
      process.stderr.write(`ceg: ${(e as Error)?.stack ?? e}\n`);
      process.exit(1);
    },
  );
}
void CORPORA;
