/**
 * `ceg`: the command line. Thin: parse, call the library, print.
 *   ceg train --innovation rope --scale micro --seed 1 [--backend wasm]
 *   ceg sweep --scale micro --seeds 3 [--innovations a,b]
 *   ceg ladder --innovations baseline,layernorm --seeds 2
 *   ceg runs [--scale micro] [--innovation rope]
 *   ceg prepare [--corpus sotu] [--tokenizer char]
 *   ceg report --scale micro [--axis flops]
 *   ceg config --scale compact --innovation sparse  (resolved config, parameters, FLOPs as JSON)
 *   ceg reproduce --scale micro [--seeds 1]      (npm run micro)
 *   ceg study --plan cpu [--dry-run]             (issue #13's study; ceg report --study cpu)
 *   ceg import FILE... --baseline NAME [--scale LABEL]  (runs from nanoGPT logs, W&B CSV, CSV/JSONL)
 *   ceg export --run ID --out FILE.safetensors    ceg sample --run ID [--prompt TEXT]
 * Bad input ends with one message naming the bad value and the valid choices, exit code 2,
 * and nothing written.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  defineCli,
  parseCommand,
  helpText,
  usage,
  reportUsageError,
  UsageError,
  innovationFlag,
  innovationsFlag,
  scaleFlag,
  backendFlag,
  seedsFlag,
} from './args.js';
import { ConfigError, CORPORA, TOKENIZERS } from '../config.js';
import { EngineError, initEngine, requestedBackend, type BackendName } from '../engine/index.js';
import { STUDY_SET } from '../innovations.js';
import { LADDERS, ladderOf, ladderRungNames, resolveScale, scaleNames } from '../scales.js';
import {
  RunStore,
  ClaimLostError,
  isImportedSpec,
  isRunId,
  runId,
  validateRunSpec,
  type Divergence,
  type RunRecord,
  type RunSpec,
} from '../runs/index.js';
import { ensureRuns, ensureSpecs, runSpec, EXIT_DIVERGED, type SpecOptions } from '../train/sweep.js';
import { getPlan, planNames } from '../plans.js';
import { validatePlan } from '../train/study.js';
import { analyzeStudyData, formatStudyReport, studyData } from '../report/study.js';
import { formatDryRun, runStudy } from './study.js';
import { reportStudy } from './study-report.js';
import { InterruptedError } from '../train/trainer.js';
import { formatDivergedRuns } from '../ceg/index.js';
import { describeConfig } from '../train/describe.js';
import { slurmExecutor, SlurmDetached, SlurmUnavailableError } from '../train/slurm.js';
import type { Executor } from '../train/sweep.js';
import {
  measureStepTimes,
  saveTiming,
  loadTimings,
  pickTimingSet,
  timingPath,
  secondsTimingKey,
  calibratedSecondsCeg,
} from '../train/timing.js';
import { currentProvenance, timingKey } from '../train/provenance.js';
import { runningFingerprint } from '../report/study-provenance.js';
import { AXES, CegError } from '../ceg/types.js';
import {
  cegTable,
  cegFrame,
  formatCegTable,
  paperVsOurs,
  formatPaperVsOurs,
  verdictRows,
  alignColumns,
  paperCell,
  f3,
  type CegRow,
} from '../ceg/index.js';
import { AS_PUBLISHED_ADJUSTED, PUBLISHED_SCALES } from '../ceg/published.js';
import { storedRecords } from '../report/from-runs.js';
import { checkRuns, staleIds, codeStatusLabel, type CodeStatus } from '../train/stale.js';
import { ImportError, IMPORT_FORMATS, SUMMARY_COLUMNS } from '../runs/index.js';
import { formatRunRef, resolveRunArg } from './run-ref.js';
import { importCommand } from './import.js';
import { OUTPUT_FORMATS, formatRows, formatFrame, emit, type OutputFormat } from '../report/formats.js';
import { exportRun, sampleRun, StoredModelError } from '../train/stored-model.js';
import {
  prepareCorpus,
  DataError,
  BUNDLED_CORPORA,
  TOKENIZER_NAMES,
  type BundledCorpus,
  type TokenizerName,
} from '../data/index.js';
import { describeError } from './errors.js';
import { runsCheck, damagedNote } from './runs-check.js';
import { readEnv } from '../env.js';
import { defaultCacheDir } from '../paths.js';
import { interruptSignal, printTrained } from '../train/child.js';
import { setLogLevel } from '../log.js';

function defaultJobs(): number {
  return Math.max(1, Math.min(2, os.availableParallelism()));
}

const runsFlag = { type: 'string', help: 'run store folder (default $CEG_RUNS or <project>/data/runs)' } as const;
const allowSmallCorpusFlag = {
  type: 'bool',
  help: 'train even if a run would repeat its corpus more than 4 epochs (compact/full on the bundled corpus; see --data)',
} as const;
const allowStaleFlag = {
  type: 'bool',
  default: false,
  help: 'keep completed runs that the current code no longer reproduces (labelled STALE) instead of retraining them',
} as const;

/** Check the completed runs of `scales` on `backend` against the current code; stale ones (id -> why) for storedRecords. */
async function staleRuns(store: RunStore, scales: string[], backend: string): Promise<Map<string, string>> {
  const checked = new Map<string, CodeStatus>();
  for (const scale of scales)
    for (const [id, cs] of await checkRuns(store, { scale, backend }, (m) => process.stderr.write(`[ceg] ${m}\n`)))
      checked.set(id, cs);
  return staleIds(checked);
}

/** Say which stale runs a table leaves out (or, with --allow-stale, keeps). */
function printStale(records: RunRecord[], notes: string[]): void {
  const kept = records.filter((r) => r.stale);
  if (kept.length)
    console.log(
      `\nSTALE runs kept by --allow-stale (the current code does not reproduce them): ${kept.map((r) => `${r.innovation} seed ${r.seed} (${r.id})`).join(', ')}`,
    );
  const left = notes.filter((n) => / is stale, left out/.test(n));
  if (left.length)
    console.log(
      `\n${left.length} stale run(s) left out of the tables (the current code does not reproduce them; \`ceg sweep\` retrains them):\n${left.map((n) => `  ${n}`).join('\n')}`,
    );
}

const formatFlag = {
  type: 'choice',
  choices: OUTPUT_FORMATS,
  noun: 'output format',
  default: 'table',
  help: 'output format',
} as const;
const outFlag = { type: 'string', help: 'write to this file (atomically) instead of stdout' } as const;
/** `ceg runs` columns: the defaults fit 120 terminal columns. */
const DEFAULT_RUN_COLUMNS = ['id', 'innovation', 'scale', 'seed', 'steps', 'bestValLoss', 'state', 'source'];
const RUN_COLUMNS: readonly string[] = SUMMARY_COLUMNS;
const RUNS_ROW_LIMIT = 50;
/** `--executor local|slurm` and what SLURM passes through (issue 16; src/train/slurm.ts, docs/cluster.md) */
const executorFlags = {
  executor: {
    type: 'choice',
    choices: ['local', 'slurm'],
    noun: 'executor',
    default: 'local',
    help: 'local: processes on this machine (--jobs); slurm: one sbatch job array of the missing runs',
  },
  partition: { type: 'string', help: 'slurm: partition (sbatch --partition)' },
  account: { type: 'string', help: 'slurm: account (sbatch --account)' },
  time: { type: 'string', help: 'slurm: time limit per task, e.g. 2:00:00 (sbatch --time)' },
  cpusPerTask: { type: 'int', min: 1, help: 'slurm: CPUs per task (default 1)' },
  gpusPerTask: { type: 'int', min: 0, help: 'slurm: GPUs per task (sbatch --gpus-per-task)' },
  throttle: { type: 'int', min: 1, help: 'slurm: at most N tasks of the array at once (--array=...%N)' },
  sbatch: { type: 'string', help: "slurm: extra #SBATCH lines, separated by ';' (e.g. 'qos=high;constraint=a100')" },
  setup: {
    type: 'string',
    help: "slurm: shell lines each task runs first, separated by ';' (e.g. 'module load nodejs')",
  },
  signalLead: {
    type: 'int',
    min: 1,
    default: 120,
    help: 'slurm: seconds before the time limit at which a task checkpoints and requeues',
  },
  noWait: { type: 'bool', help: 'slurm: submit, print the job id and return' },
} as const;

/** The executor named by the flags (undefined: local, --jobs processes). */
function executorOf(f: {
  executor: string;
  partition?: string;
  account?: string;
  time?: string;
  cpusPerTask?: number;
  gpusPerTask?: number;
  throttle?: number;
  sbatch?: string;
  setup?: string;
  signalLead: number;
  noWait: boolean;
}): Executor | undefined {
  if (f.executor !== 'slurm') {
    const given = (
      ['partition', 'account', 'time', 'cpusPerTask', 'gpusPerTask', 'throttle', 'sbatch', 'setup'] as const
    ).filter((k) => f[k] !== undefined);
    if (f.noWait) given.push('noWait' as never);
    if (given.length)
      throw new UsageError(
        `--${given.map((k) => k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())).join(', --')}: only with --executor slurm`,
      );
    return undefined;
  }
  const lines = (x?: string) =>
    (x ?? '')
      .split(';')
      .map((l) => l.trim())
      .filter(Boolean);
  return slurmExecutor({
    partition: f.partition,
    account: f.account,
    time: f.time,
    cpusPerTask: f.cpusPerTask,
    gpusPerTask: f.gpusPerTask,
    throttle: f.throttle,
    sbatchLines: lines(f.sbatch),
    setupLines: lines(f.setup),
    signalLeadSeconds: f.signalLead,
    wait: !f.noWait,
  });
}

const spec = defineCli({
  train: {
    summary: 'train one run (or return it from the store if complete; resume it if interrupted)',
    flags: {
      innovation: innovationFlag({ default: 'baseline' }),
      scale: scaleFlag({
        default: 'micro',
        choices: () => [...scaleNames(), ...ladderRungNames()],
        help: 'named scale or ladder rung',
      }),
      seed: { type: 'int', default: 1, min: 0, help: 'run seed' },
      backend: backendFlag(),
      data: {
        type: 'string',
        help: 'folder with nanoGPT-format train.bin/val.bin to train on instead of the bundled corpus',
      },
      tokenizer: {
        type: 'choice',
        choices: TOKENIZERS,
        noun: 'tokenizer',
        help: "tokenizer of the data (default: the scale's; gpt2 with --data)",
      },
      config: { type: 'string', help: 'JSON file {"model": {...}, "train": {...}} of overrides over the scale' },
      allowSmallCorpus: allowSmallCorpusFlag,
      runs: runsFlag,
      allowStale: allowStaleFlag,
      run: {
        type: 'string',
        help: 'train the run with this id from its spec.json in the store (runs created by ceg study); other run flags are ignored',
      },
      spec: {
        type: 'string',
        help: "with --run: the run's spec from this JSON file instead of the store (how ceg study hands runs to its child processes)",
      },
    },
  },
  study: {
    summary: 'a study plan (issue #13): print it with an estimated time (--dry-run), or run it (resumable, cached)',
    flags: {
      plan: {
        type: 'choice',
        choices: () => planNames(),
        noun: 'study plan',
        required: true,
        help: 'plan name (src/plans.ts)',
      },
      dryRun: {
        type: 'bool',
        default: false,
        help: 'print the plan, its runs and the estimated time on this machine; train nothing',
      },
      backend: backendFlag(),
      jobs: {
        type: 'int',
        default: defaultJobs(),
        min: 1,
        help: 'runs trained at once, one process each (default: 2 on 2+ cores)',
      },
      runs: runsFlag,
      allowSmallCorpus: allowSmallCorpusFlag,
      allowStale: allowStaleFlag,
      ...executorFlags,
    },
  },
  sweep: {
    summary: 'train every variant x seed at a scale, skipping completed runs',
    flags: {
      scale: scaleFlag({
        default: 'micro',
        choices: () => [...scaleNames(), ...ladderRungNames()],
        help: 'named scale or ladder rung',
      }),
      seeds: seedsFlag({ of: 'int', help: 'N (seeds 1..N) or a comma-separated list', default: [1] }),
      innovations: innovationsFlag({ help: "comma-separated ids (default: the paper's study set)" }),
      backend: backendFlag(),
      jobs: {
        type: 'int',
        default: defaultJobs(),
        min: 1,
        help: 'runs trained at once, one process each (default: 2 on 2+ cores)',
      },
      ...executorFlags,
      data: {
        type: 'string',
        help: 'folder with nanoGPT-format train.bin/val.bin to train on instead of the bundled corpus',
      },
      tokenizer: {
        type: 'choice',
        choices: TOKENIZERS,
        noun: 'tokenizer',
        help: "tokenizer of the data (default: the scale's; gpt2 with --data)",
      },
      config: { type: 'string', help: 'JSON file {"model": {...}, "train": {...}} of overrides over the scale' },
      allowSmallCorpus: allowSmallCorpusFlag,
      runs: runsFlag,
      allowStale: allowStaleFlag,
    },
  },
  ladder: {
    summary: 'train the scaling ladder of a scale (for scaling fits and compute-dependence verdicts)',
    flags: {
      scale: {
        type: 'choice',
        choices: () => Object.keys(LADDERS),
        noun: 'ladder scale',
        default: 'micro',
        help: 'scale whose ladder to train',
      },
      seeds: seedsFlag({ of: 'int', help: 'N (seeds 1..N) or a comma-separated list', default: [1] }),
      innovations: innovationsFlag({ default: ['baseline', 'layernorm', 'mqa'] }),
      backend: backendFlag(),
      jobs: {
        type: 'int',
        default: defaultJobs(),
        min: 1,
        help: 'runs trained at once, one process each (default: 2 on 2+ cores)',
      },
      ...executorFlags,
      runs: runsFlag,
      allowStale: allowStaleFlag,
    },
  },
  timing: {
    summary:
      "measure every variant's ms/step side by side (interleaved, one process) for a load-independent wall-clock CEG",
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
      innovation: { type: 'string', help: 'only this innovation (or imported run name)' },
      format: formatFlag,
      out: outFlag,
      all: { type: 'bool', help: `every run (default: the first ${RUNS_ROW_LIMIT}) and every column` },
      columns: {
        type: 'list',
        choices: () => [...RUN_COLUMNS, 'code'],
        noun: 'column',
        help: `columns to show (default ${DEFAULT_RUN_COLUMNS.join(',')},code)`,
      },
      runs: runsFlag,
      check: {
        type: 'bool',
        help: 'check every run (metrics against their seal, checkpoint checksums, spec/status files) and list the damaged ones; exit 1 if any',
      },
      repair: {
        type: 'bool',
        help: 'check, then quarantine or reset each damaged run so that training resumes it (healthy runs are not touched)',
      },
      verify: {
        type: 'bool',
        default: true,
        help: 'check completed runs against the current code (replays changed ones once; --no-verify: cached verdicts only)',
      },
    },
  },
  import: {
    summary:
      'store runs trained elsewhere (nanoGPT train.py logs, W&B CSV exports, plain CSV/JSONL) for report, figures and notebooks',
    positionals: ['file'],
    minPositionals: 1,
    variadic: true,
    flags: {
      format: {
        type: 'choice',
        choices: IMPORT_FORMATS,
        noun: 'import format',
        help: 'format of every file (default: from the name and content)',
      },
      baseline: {
        type: 'string',
        help: 'name of the imported run that is the baseline (stored as innovation "baseline")',
      },
      scale: {
        type: 'string',
        default: 'imported',
        help: 'label the runs are stored under: `ceg report --scale LABEL`',
      },
      seed: { type: 'int', default: 1, min: 0, help: 'seed label of the runs' },
      tokensPerStep: {
        type: 'float',
        min: 1,
        help: 'tokens per optimizer step (default: the log\'s "tokens per iteration")',
      },
      flopsPerStep: { type: 'float', min: 1, help: 'training FLOPs per step (forward + backward)' },
      modelConfig: { type: 'string', help: 'JSON model config (ours, see ceg config) to count FLOPs per step from' },
      runs: runsFlag,
    },
  },
  export: {
    summary: "write a trained run's weights as safetensors with nanoGPT's parameter names and layout",
    flags: {
      run: {
        type: 'string',
        required: true,
        help: 'run id (ceg runs), or innovation@scale[#seed] naming one completed run',
      },
      out: { type: 'string', required: true, help: 'output .safetensors file' },
      runs: runsFlag,
    },
  },
  sample: {
    summary: "generate text from a trained run, as nanoGPT's sample.py does",
    flags: {
      run: {
        type: 'string',
        required: true,
        help: 'run id (ceg runs), or innovation@scale[#seed] naming one completed run',
      },
      prompt: { type: 'string', default: '\n', help: 'text to continue' },
      tokens: { type: 'int', default: 200, min: 1, help: 'new tokens per sample' },
      samples: { type: 'int', default: 1, min: 1, help: 'number of samples' },
      temperature: { type: 'float', default: 0.8, min: 0, help: 'softmax temperature (0: greedy)' },
      topK: { type: 'int', default: 200, min: 1, help: 'sample among the k most likely tokens' },
      seed: { type: 'int', default: 1337, min: 0, help: 'sampling seed' },
      backend: backendFlag(),
      runs: runsFlag,
      check: {
        type: 'bool',
        help: 'check every run (metrics against their seal, checkpoint checksums, spec/status files) and list the damaged ones; exit 1 if any',
      },
      repair: {
        type: 'bool',
        help: 'check, then quarantine or reset each damaged run so that training resumes it (healthy runs are not touched)',
      },
      verify: {
        type: 'bool',
        default: true,
        help: 'check completed runs against the current code (replays changed ones once; --no-verify: cached verdicts only)',
      },
    },
  },
  prepare: {
    summary: 'tokenise bundled corpora once and cache train.bin/val.bin',
    flags: {
      corpus: { type: 'list', choices: BUNDLED_CORPORA, noun: 'corpus', help: 'corpora (default all)' },
      tokenizer: { type: 'list', choices: TOKENIZER_NAMES, noun: 'tokenizer', help: 'tokenizers (default all)' },
      cacheDir: { type: 'string', help: 'token cache folder (default $CEG_CACHE, else data/cache)' },
      force: { type: 'bool', help: 'tokenise again even when cached (to time tokenisation)' },
    },
  },
  report: {
    summary: 'print the CEG table of stored runs: the paper method beside ours on every axis',
    flags: {
      scale: { type: 'string', default: 'micro', help: 'named scale, or the --scale label of imported runs' },
      study: {
        type: 'choice',
        choices: () => planNames(),
        noun: 'study plan',
        help: "a study plan's table and verdicts instead (ceg study)",
      },
      figures: { type: 'string', help: "with --study: also write the study's figures (PNG, SVG) into this folder" },
      backend: backendFlag(),
      format: formatFlag,
      out: outFlag,
      runs: runsFlag,
    },
  },
  config: {
    summary:
      'print the resolved model/train/data config of a run as JSON, with parameters, FLOPs per step and what differs from the paper',
    flags: {
      innovation: innovationFlag({ default: 'baseline' }),
      scale: scaleFlag({
        default: 'micro',
        choices: () => [...scaleNames(), ...ladderRungNames()],
        help: 'named scale or ladder rung',
      }),
      backend: backendFlag(),
      data: {
        type: 'string',
        help: 'folder with nanoGPT-format train.bin/val.bin to train on instead of the bundled corpus',
      },
      tokenizer: {
        type: 'choice',
        choices: TOKENIZERS,
        noun: 'tokenizer',
        help: "tokenizer of the data (default: the scale's; gpt2 with --data)",
      },
      config: { type: 'string', help: 'JSON file {"model": {...}, "train": {...}} of overrides over the scale' },
    },
  },
  reproduce: {
    summary: "the study at a scale: train the paper's variant set (cached runs are reused), then the CEG table",
    flags: {
      scale: scaleFlag({ default: 'micro' }),
      seeds: seedsFlag({ of: 'int', help: 'N (seeds 1..N) or a comma-separated list', default: [1] }),
      backend: backendFlag(),
      jobs: {
        type: 'int',
        default: defaultJobs(),
        min: 1,
        help: 'runs trained at once, one process each (default: 2 on 2+ cores)',
      },
      ...executorFlags,
      allowSmallCorpus: allowSmallCorpusFlag,
      runs: runsFlag,
      allowStale: allowStaleFlag,
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
      if (!fs.existsSync(path.join(f.data, file)))
        throw new UsageError(`--data ${f.data}: missing ${file} (nanoGPT format: uint16 token ids)`);
    }
  }
  return { dataDir: f.data, tokenizer: f.tokenizer, overrides };
}

/** `--run ID --spec FILE`: the run spec in FILE (validated), which must hash to ID. */
function specFromFile(file: string, id: string): RunSpec {
  let spec: RunSpec;
  try {
    spec = JSON.parse(fs.readFileSync(file, 'utf8')) as RunSpec;
  } catch (e) {
    throw new UsageError(`--spec ${file}: cannot read a run spec (${(e as Error).message})`);
  }
  validateRunSpec(spec);
  const want = runId(spec);
  if (want !== id) throw new UsageError(`--spec ${file}: the spec is run ${want}, not --run ${id}`);
  return spec;
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

/** Diverged runs, listed apart from the CEG table; nothing when there are none. */
function printDiverged(records: RunRecord[]): void {
  const text = formatDivergedRuns(records);
  if (text) console.log(`\n${text}`);
}

/** Diverged runs of a scale in the store (`ceg report` lists them apart). */
function storedDiverged(store: RunStore, scale: string, backend: string): RunRecord[] {
  return store.list({ scale, backend, state: 'diverged' }).flatMap((s) => {
    const run = store.get(s.id);
    const d = run?.status().divergence as Divergence | undefined;
    return run && d
      ? [
          {
            id: s.id,
            innovation: s.innovation,
            scale: s.scale,
            seed: s.seed,
            backend: s.backend,
            metrics: [],
            cached: true,
            diverged: d,
          },
        ]
      : [];
  });
}

function printReport(records: RunRecord[], scale: string, log: (s: string) => void = console.log): void {
  // per-run seconds are divided into each other only when every run shares one machine and kernel set
  const timing = secondsTimingKey(records.map((r) => r.timingKey));
  // imported runs may lack axes: cegTable then keeps the ones every run carries
  const axes = records.some((r) => r.imported)
    ? undefined
    : timing === null
      ? AXES.filter((a) => a !== 'seconds')
      : [...AXES];
  const table = cegTable(records, { scale, ...(axes ? { axes } : {}) });
  log(
    `\nCompute-equivalent gain at scale "${scale}" (${new Set(records.map((r) => r.seed)).size} seed(s); CI = bootstrap 95% over seeds)`,
  );
  log(formatCegTable(table));
  if (records.every((r) => r.imported)) return; // imported runs: no published counterpart, no as-published adjustment
  if (timing === null) {
    const keys = [...new Set(records.map((r) => r.timingKey ?? 'unknown'))];
    log(
      `No CEG seconds: the runs were trained on ${keys.length} different machines/kernel sets (${keys.join('; ')}), and seconds from different ones are never divided into each other.`,
    );
  } else {
    log(
      `CEG seconds uses each run's own wall-clock time (all on ${timing}), which includes whatever else the machine was doing while it trained;\n` +
        'on a shared machine prefer the wall-clock CEG from side-by-side step times below (ceg timing).',
    );
  }
  for (const published of PUBLISHED_SCALES) {
    log(`\nThe paper's published numbers (${published} scale) beside ours (${scale} scale):`);
    log(formatPaperVsOurs(paperVsOurs(table, published)));
  }
  printAsPublished(records, scale, log);
}

/** Our runs by the paper's method as published (|LN − baseline| added to RoPE and MQA), when they include LayerNorm. */
function printAsPublished(records: RunRecord[], scale: string, log: (s: string) => void = console.log): void {
  const runs = records.map((r) => ({ innovation: r.innovation, seed: r.seed, scale: r.scale, metrics: r.metrics }));
  const ids = new Set(runs.map((r) => r.innovation));
  const adjusted = AS_PUBLISHED_ADJUSTED.full.filter((id) => ids.has(id));
  if (!ids.has('layernorm') || adjusted.length === 0) return;
  const rows = cegTable(runs, { scale, axes: ['steps'], asPublished: true }).rows;
  const cell = (r: CegRow) => (r.paper.dnr ? 'DNR' : paperCell(r.paper));
  log(
    `\nThe paper's method as published on our runs (|LayerNorm − baseline| added to ${adjusted.join(' and ')}, as its ` +
      `full-scale numbers were computed): ${rows
        .filter((r) => adjusted.includes(r.innovation))
        .map((r) => `${r.label} ${cell(r)}`)
        .join(', ')}`,
  );
}

/** Wall-clock CEG from side-by-side step times (ceg timing), when measured for this scale. */
async function printTiming(
  records: RunRecord[],
  store: RunStore,
  scale: string,
  backend: BackendName,
  log: (s: string) => void = console.log,
): Promise<void> {
  const stored = loadTimings(store.root, scale, backend);
  // this machine's key, to prefer its step times (none when the backend cannot start here)
  const here = await initEngine({ backend }).then(
    () => timingKey(currentProvenance(backend)),
    () => `this machine without ${backend}`,
  );
  const t = pickTimingSet(stored, here);
  if (!t) {
    log(`\n(run \`ceg timing --scale ${scale}\` for a wall-clock CEG from step times measured side by side)`);
    return;
  }
  const base = t.results.find((r) => r.innovation === 'baseline');
  if (!base) return;
  const others = (stored?.sets.length ?? 1) - 1;
  const table = cegTable(
    records.map((r) => ({
      innovation: r.innovation,
      seed: r.seed,
      scale: r.scale,
      metrics: r.metrics,
      diverged: r.diverged,
    })),
    { scale },
  );
  const rows = table.rows;
  const when = [...new Set(t.results.map((r) => (r.measuredAt ?? '').slice(0, 16)))].map((w) => `${w}Z`).join(', ');
  log(
    `\nWall-clock CEG from step times measured side by side: CEG steps x baseline ms/step / variant ms/step\n` +
      `using the step times of ${t.key}${t.key === here ? ' (this machine and kernel set)' : ` (NOT this machine/kernel set: ${here})`}, measured ${when}` +
      (others > 0
        ? `; ${others} other machine/kernel set(s) in ${path.basename(timingPath(store.root, scale, backend))} not mixed in`
        : ''),
  );
  log(
    alignColumns(
      ['Innovation', 'ms/step', 'CEG steps', 'CEG wall-clock', 'measured (UTC)'],
      t.results.map((r) => {
        const row = rows.find((x) => x.innovation === r.innovation);
        const steps = row?.ceg.steps?.ceg ?? null;
        return [
          row?.label ?? r.innovation,
          r.msPerStep.toFixed(1),
          f3(steps),
          f3(calibratedSecondsCeg(steps, base.msPerStep, r.msPerStep)),
          (r.measuredAt ?? '?').slice(0, 19).replace('T', ' '),
        ];
      }),
    ),
  );
}

/** The compute-dependence verdicts from the scale's ladder runs, when there are any. */
function printVerdicts(
  store: RunStore,
  scale: string,
  backend: string,
  stale?: ReadonlyMap<string, string>,
  notes: string[] = [],
  log: (s: string) => void = console.log,
): void {
  if (!(scale in LADDERS)) return;
  const ladder = ladderOf(scale).flatMap((r) => storedRecords(store, r.name, backend, notes, { stale }));
  if (ladder.length === 0) {
    log(`\n(no ladder runs: \`ceg ladder --scale ${scale}\` trains them for the compute-dependence verdicts)`);
    return;
  }
  const rows = verdictRows(ladder);
  log(
    `\nCompute dependence from the ${scale} scaling ladder (${ladderOf(scale)
      .map((r) => r.name)
      .join(', ')}):`,
  );
  log(
    alignColumns(
      ['Innovation', 'Paper category', 'Seeds', 'Slope of log CEG vs log C', '95% CI', 'Verdict'],
      rows.map((r) => [
        r.innovation,
        r.paper_category,
        String(r.seeds),
        f3(r.slope),
        `[${f3(r.ci_low)}, ${f3(r.ci_high)}]`,
        r.verdict,
      ]),
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
      if (f.spec !== undefined && f.run === undefined)
        throw new UsageError('--spec needs --run ID (the id the spec hashes to)');
      if (f.run !== undefined) {
        const store = storeOf(f.runs);
        const runSpecOf =
          f.spec !== undefined ? specFromFile(f.spec, f.run) : isRunId(f.run) ? store.get(f.run)?.spec : undefined;
        if (!runSpecOf)
          throw new UsageError(`--run ${f.run}: no run with that id in ${store.root} (ceg study creates them)`);
        if (isImportedSpec(runSpecOf))
          throw new UsageError(`--run ${f.run}: an imported run (ceg import), which cannot be trained`);
        const [r] = await ensureSpecs([runSpecOf], {
          store,
          signal: interruptSignal(),
          allowSmallCorpus: f.allowSmallCorpus,
          allowStale: f.allowStale,
        });
        return printTrained(r);
      }
      const so = specOptions(f);
      const s = runSpec(f.innovation, f.scale, f.seed, backendOf(f.backend), so);
      const [r] = await ensureRuns({
        scale: f.scale,
        innovations: [s.innovation],
        seeds: [f.seed],
        backend: s.backend,
        store: storeOf(f.runs),
        signal: interruptSignal(),
        specOptions: so,
        allowSmallCorpus: f.allowSmallCorpus,
        allowStale: f.allowStale,
      });
      return printTrained(r);
    }
    case 'sweep':
    case 'reproduce': {
      const f = parsed.flags;
      const innovations = 'innovations' in f && f.innovations.length ? f.innovations : [...STUDY_SET];
      const backend = backendOf(f.backend);
      const seeds = seedList(f.seeds);
      // every flag reaches every run, whatever --jobs is (issue 18): reproduce has no data flags
      const so = parsed.command === 'sweep' ? specOptions(parsed.flags) : {};
      for (const inn of innovations) for (const seed of seeds) runSpec(inn, f.scale, seed, backend, so); // validate all first
      const store = storeOf(f.runs);
      console.error(
        `[ceg] ${innovations.length} variants x ${seeds.length} seed(s) at scale "${f.scale}" on ${backend}; run store ${store.root}`,
      );
      const records = await ensureRuns({
        scale: f.scale,
        innovations,
        seeds,
        backend,
        store,
        signal: interruptSignal(),
        jobs: f.jobs,
        specOptions: so,
        allowSmallCorpus: f.allowSmallCorpus,
        allowStale: f.allowStale,
        executor: executorOf(f),
      });
      console.log(`\nFinal validation loss (scale ${f.scale}):`);
      for (const r of records)
        console.log(
          `  ${r.innovation.padEnd(12)} seed ${r.seed}  ${r.diverged ? `DIVERGED at step ${r.diverged.step} (loss ${r.diverged.loss}, lr ${r.diverged.lr})` : r.metrics[r.metrics.length - 1]?.valLoss?.toFixed(4)}`,
        );
      if (records.some((r) => r.innovation === 'baseline' && !r.diverged)) {
        printReport(records, f.scale);
        await printTiming(records, store, f.scale, backend);
        const ladderScales = f.scale in LADDERS ? ladderOf(f.scale).map((r) => r.name) : [];
        const stale = f.allowStale ? undefined : await staleRuns(store, ladderScales, backend);
        const notes: string[] = [];
        printVerdicts(store, f.scale, backend, stale, notes);
        printStale(records, notes);
      }
      printDiverged(records);
      const diverged = records.filter((r) => r.diverged);
      if (diverged.length) {
        process.stderr.write(
          `ceg: ${diverged.length} of ${records.length} runs diverged (listed above, left out of the CEG table)\n`,
        );
        return EXIT_DIVERGED;
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
        scale: f.scale,
        innovations,
        backend,
        steps: f.steps,
        rounds: f.rounds,
        onProgress: (m) => process.stderr.write(`[ceg] timing ${m}\n`),
      });
      const file = saveTiming(store.root, t);
      console.log(
        `step times at scale "${f.scale}" on ${t.kernels} (${t.machine?.cpu} x${t.machine?.cores}; load ${t.load.toFixed(2)} at start), merged into ${file}:`,
      );
      for (const r of t.results)
        console.log(`  ${r.innovation.padEnd(12)} ${r.msPerStep.toFixed(1).padStart(8)} ms/step`);
      return 0;
    }
    case 'ladder': {
      const f = parsed.flags;
      const backend = backendOf(f.backend);
      const store = storeOf(f.runs);
      const seeds = seedList(f.seeds);
      const signal = interruptSignal();
      const diverged: RunRecord[] = [];
      const executor = executorOf(f);
      for (const rung of ladderOf(f.scale)) {
        let records: RunRecord[];
        try {
          records = await ensureRuns({
            scale: rung.name,
            innovations: f.innovations,
            seeds,
            backend,
            store,
            signal,
            jobs: f.jobs,
            allowStale: f.allowStale,
            executor,
          });
        } catch (e) {
          if (!(e instanceof SlurmDetached)) throw e;
          console.log(`${rung.name}: ${e.message}`); // --no-wait: one array per rung
          continue;
        }
        diverged.push(...records.filter((r) => r.diverged));
      }
      if (diverged.length) {
        printDiverged(diverged);
        return EXIT_DIVERGED;
      }
      return 0;
    }
    case 'runs': {
      const f = parsed.flags;
      if (f.scale) resolveScale(f.scale);
      const store = storeOf(f.runs);
      if (f.check || f.repair) return runsCheck(store, Boolean(f.repair));
      const filter = { ...(f.scale ? { scale: f.scale } : {}), ...(f.innovation ? { innovation: f.innovation } : {}) };
      const rows = store.list(filter);
      if (rows.length === 0 && f.format === 'table') {
        console.log(`no runs in ${store.root}`);
        return 0;
      }
      // code: whether the current code reproduces each completed run (current / confirmed / stale)
      const checked = f.verify
        ? await checkRuns(store, filter, (m) => process.stderr.write(`[ceg] ${m}\n`))
        : new Map<string, CodeStatus>();
      const columns = f.columns.length
        ? f.columns
        : f.all
          ? [...RUN_COLUMNS, 'code']
          : [...DEFAULT_RUN_COLUMNS, 'code'];
      const shown = f.all || f.format !== 'table' ? rows : rows.slice(0, RUNS_ROW_LIMIT);
      const cells = shown.map((r) => ({
        ...r,
        code: codeStatusLabel(checked.get(r.id)),
        aliases: r.aliases.map(formatRunRef),
        bestValLoss: f.format === 'table' && r.bestValLoss !== null ? r.bestValLoss.toFixed(4) : r.bestValLoss,
      }));
      let text = formatRows(cells, columns, f.format as OutputFormat);
      if (shown.length < rows.length) text += `(${rows.length - shown.length} more; --all shows every run)\n`;
      emit(text, f.out);
      const stale = [...checked.values()].filter((c) => c.state === 'stale').length;
      if (stale)
        (f.format === 'table' ? console.log : console.error)(
          `${stale} stale run(s): the current code does not reproduce them; tables leave them out and \`ceg sweep\`/\`ceg train\` retrain them`,
        );
      return 0;
    }
    case 'prepare': {
      const f = parsed.flags;
      for (const corpus of (f.corpus.length ? f.corpus : BUNDLED_CORPORA) as BundledCorpus[]) {
        for (const tokenizer of (f.tokenizer.length ? f.tokenizer : TOKENIZER_NAMES) as TokenizerName[]) {
          const cacheDir = f.cacheDir ?? defaultCacheDir();
          if (f.force) fs.rmSync(path.join(cacheDir, `${corpus}-${tokenizer}`, 'meta.json'), { force: true });
          const t0 = performance.now();
          const p = prepareCorpus({ corpus, tokenizer, cacheDir, onProgress: (m) => console.error(`[ceg] ${m}`) });
          const s = ((performance.now() - t0) / 1000).toFixed(2);
          console.log(
            `${corpus}/${tokenizer}: ${p.meta.tokens.train} train + ${p.meta.tokens.val} val tokens in ${p.dir}${p.cached ? ' (cached)' : ''}, ${s} s`,
          );
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
      const executor = executorOf(f);
      console.error(
        `[ceg] study ${plan.name} on ${backend}, ${executor ? `executor ${executor.name}` : `--jobs ${f.jobs}`}; run store ${store.root}`,
      );
      const ran = await runStudy(plan, {
        store,
        backend,
        jobs: f.jobs,
        signal: interruptSignal(),
        allowSmallCorpus: f.allowSmallCorpus,
        allowStale: f.allowStale,
        executor,
      });
      if (ran.detached) {
        console.log(ran.detached); // --no-wait: later stages need this one's results
        return 0;
      }
      const d = studyData(plan, store, backend, { currentFingerprint: await runningFingerprint(backend) });
      console.log(formatStudyReport(d, analyzeStudyData(d)));
      return 0;
    }
    case 'config': {
      const f = parsed.flags;
      console.log(
        JSON.stringify(
          describeConfig(runSpec(f.innovation, f.scale, 1, backendOf(f.backend), specOptions(f))),
          null,
          2,
        ),
      );
      return 0;
    }
    case 'report': {
      const f = parsed.flags;
      const backend = backendOf(f.backend);
      const store = storeOf(f.runs);
      if (f.figures !== undefined && f.study === undefined)
        throw new UsageError('--figures needs --study NAME (the ladder and sweep figures: npm run figures)');
      if (f.study !== undefined) {
        const d = studyData(getPlan(f.study), store, backend, {
          currentFingerprint: await runningFingerprint(backend),
        });
        if (d.done === 0) {
          console.error(
            `no completed runs of study "${f.study}" on ${backend} in ${store.root}; run: ceg study --plan ${f.study}`,
          );
          return 1;
        }
        if (f.format !== 'table' || f.out !== undefined || f.figures !== undefined) {
          await reportStudy(d, { format: f.format as OutputFormat, out: f.out, figures: f.figures });
          return 0;
        }
        console.log(formatStudyReport(d, analyzeStudyData(d)));
        return 0;
      }
      if (
        !scaleNames().includes(f.scale) &&
        !ladderRungNames().includes(f.scale) &&
        store.list({ scale: f.scale }).length === 0
      )
        throw new UsageError(
          `unknown scale "${f.scale}": not a named scale (${scaleNames().join(', ')}) nor the label of stored runs in ${store.root}`,
        );
      const ladderScales = f.scale in LADDERS ? ladderOf(f.scale).map((r) => r.name) : [];
      const stale = await staleRuns(store, [f.scale, ...ladderScales], backend);
      const notes: string[] = [];
      const records = storedRecords(store, f.scale, backend, notes, { stale });
      if (!records.some((r) => r.innovation === 'baseline')) {
        printStale(records, notes);
        printDiverged(storedDiverged(store, f.scale, backend));
        throw new CegError(
          `no "baseline" run at scale "${f.scale}" (completed${stale.size ? ', current' : ''}, on ${backend}) in ${store.root}; train it with: ceg sweep --scale ${f.scale}`,
        );
      }
      if (f.format !== 'table') {
        emit(formatFrame(cegFrame(cegTable(records, { scale: f.scale })), f.format as OutputFormat), f.out);
        return 0;
      }
      const lines: string[] = [];
      const log = f.out ? (s: string) => void lines.push(s) : console.log;
      printReport(records, f.scale, log);
      if (!records.every((r) => r.imported)) {
        await printTiming(records, store, f.scale, backend, log);
        printVerdicts(store, f.scale, backend, stale, notes, log);
      }
      printStale(records, notes);
      printDiverged(storedDiverged(store, f.scale, backend));
      const damaged = damagedNote(store);
      if (damaged) console.error(damaged);
      if (f.out) emit(lines.join('\n') + '\n', f.out);
      return 0;
    }
    case 'import': {
      const f = parsed.flags;
      const store = storeOf(f.runs);
      const done = importCommand(parsed.positionals, f, store);
      console.log(
        alignColumns(
          ['Run', 'Stored as', 'Evaluations', 'Axes', 'Id', 'File'],
          done.map((d) => [d.name, d.innovation, String(d.points), d.axes.join(',') || '-', d.id, d.file]),
        ),
      );
      for (const d of done) if (d.note) console.log(`${d.name}: ${d.note}`);
      if (!done.some((d) => d.innovation === 'baseline'))
        console.log(
          '(no run marked as baseline: pass --baseline NAME, or import the baseline run under the same --scale)',
        );
      console.log(
        `\nstored in ${store.root}; CEG table: ceg report --scale ${f.scale}${f.runs ? ` --runs ${f.runs}` : ''}`,
      );
      return 0;
    }
    case 'export': {
      const f = parsed.flags;
      const store = storeOf(f.runs);
      const r = await exportRun(store, resolveRunArg(store, f.run), f.out);
      console.log(`run ${f.run} (step ${r.step}): ${r.tensors} tensors, ${r.parameters} parameters -> ${f.out}`);
      return 0;
    }
    case 'sample': {
      const f = parsed.flags;
      const store = storeOf(f.runs);
      const texts = await sampleRun(store, resolveRunArg(store, f.run), {
        prompt: f.prompt,
        tokens: f.tokens,
        samples: f.samples,
        temperature: f.temperature,
        topK: f.topK,
        seed: f.seed,
        backend: f.backend as BackendName | undefined,
      });
      for (const t of texts) console.log(`${t}\n---------------`);
      return 0;
    }
  }
  return 0;
}

const isEntry = process.argv[1] && /main\.ts$|ceg(\.js)?$/.test(process.argv[1]);
if (isEntry || readEnv('CEG_CLI_MAIN') === '1') {
  setLogLevel('info'); // the command's notices are part of its output, also under node --test
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      if (e instanceof UsageError) process.exit(reportUsageError(e));
      if (
        e instanceof ConfigError ||
        e instanceof EngineError ||
        e instanceof DataError ||
        e instanceof ImportError ||
        e instanceof StoredModelError
      ) {
        process.stderr.write(`ceg: ${e.message}\n`);
        process.exit(2);
      }
      if (e instanceof SlurmDetached) {
        console.log(e.message);
        process.exit(0);
      }
      if (e instanceof SlurmUnavailableError) {
        process.stderr.write(`ceg: ${e.message}\n`);
        process.exit(e.exitCode);
      }
      if (e instanceof ClaimLostError) {
        // another writer took the run over (this one's heartbeat had stalled): stopped without writing
        process.stderr.write(`ceg: ${e.message}\n`);
        process.exit(1);
      }
      if (e instanceof InterruptedError) {
        const again = ['ceg', ...process.argv.slice(2)].join(' ');
        process.stderr.write(`ceg: ${e.message}\nceg: to resume: ${again}\n`);
        process.exit(e.exitCode);
      }
      const handled = describeError(e);
      if (handled) {
        process.stderr.write(`ceg: ${handled.message}\n`);
        process.exit(handled.exitCode);
      }
      process.stderr.write(`ceg: ${(e as Error)?.stack ?? e}\n`);
      process.exit(1);
    },
  );
}
void CORPORA;
