/**
 * `ceg import FILE... --baseline NAME [--scale LABEL] [--tokens-per-step N] [--flops-per-step F | --model-config FILE]`:
 * runs trained elsewhere (nanoGPT logs, W&B CSV exports, plain CSV/JSONL; src/runs/import.ts)
 * into the run store, so `ceg report --scale LABEL`, `ceg runs`, the figures and notebooks
 * work on them. Every file is read and checked before anything is written: a bad file ends
 * with one message naming file, line and column, exit 2, and an untouched store.
 */
import fs from 'node:fs';
import { UsageError } from './args.js';
import { parseModelConfig } from '../config.js';
import { stepFlops } from '../model/flops.js';
import { nanoGptModel } from '../model/nanogpt-config.js';
import {
  readImportFiles,
  toMetricRows,
  type ImportFormat,
  type ImportedRunSpec,
  type RunStore,
  type ImportedRow,
} from '../runs/index.js';

export interface ImportFlags {
  format?: string;
  baseline?: string;
  scale: string;
  seed: number;
  tokensPerStep?: number;
  flopsPerStep?: number;
  modelConfig?: string;
}

export interface ImportedSummary {
  id: string;
  name: string;
  innovation: string;
  points: number;
  axes: string[];
  file: string;
  /** how the FLOPs axis was made, or why there is none (a nanoGPT log whose config could not be counted) */
  note?: string;
}

/** What `ceg import` does, minus printing: returns one line per stored run. */
export function importCommand(files: readonly string[], f: ImportFlags, store: RunStore): ImportedSummary[] {
  if (files.length === 0) throw new UsageError('import needs at least one file (nanoGPT log, W&B CSV, CSV or JSONL)');
  if (f.flopsPerStep !== undefined && f.modelConfig !== undefined)
    throw new UsageError('give --flops-per-step or --model-config, not both');
  const parsed = readImportFiles(files, f.format as ImportFormat | undefined);
  const all = parsed.flatMap((p) => p.curves.map((c) => ({ p, c })));
  const names = all.map(({ c }) => c.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined)
    throw new UsageError(
      `two imported runs are named "${dup}" (files: ${all
        .filter(({ c }) => c.name === dup)
        .map(({ p }) => p.file)
        .join(', ')}); import them separately with different --scale or --seed`,
    );
  if (f.baseline !== undefined && !names.includes(f.baseline))
    throw new UsageError(`--baseline "${f.baseline}" is not a run of the imported file(s); runs: ${names.join(', ')}`);
  if (f.baseline !== undefined && f.baseline !== 'baseline' && names.includes('baseline'))
    throw new UsageError(`a run is named "baseline" but --baseline names "${f.baseline}"; rename one of them`);
  let modelFlopsPerToken: number | undefined;
  if (f.modelConfig !== undefined) {
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(f.modelConfig, 'utf8'));
    } catch (e) {
      throw new UsageError(`--model-config ${f.modelConfig}: ${(e as Error).message}`);
    }
    const cfg = parseModelConfig((raw as { model?: unknown })?.model ?? raw);
    modelFlopsPerToken = stepFlops(cfg, cfg.blockSize).total / cfg.blockSize;
  }
  const plans: { spec: ImportedRunSpec; rows: ImportedRow[]; name: string; file: string; note?: string }[] = all.map(
    ({ p, c }) => {
      let tokensPerStep = f.tokensPerStep ?? c.tokensPerStep;
      let flopsPerStep =
        f.flopsPerStep ??
        (modelFlopsPerToken !== undefined && tokensPerStep ? modelFlopsPerToken * tokensPerStep : undefined);
      let flopsFrom: 'flag' | 'model-config' | 'log' | undefined =
        f.flopsPerStep !== undefined ? 'flag' : flopsPerStep !== undefined ? 'model-config' : undefined;
      let note: string | undefined;
      if (flopsPerStep === undefined && c.format === 'nanogpt' && (c.config || c.reportedParams !== undefined)) {
        // a nanoGPT log's config printout: its model counted by src/model/flops.ts (checked against the parameters it reports)
        const d = nanoGptModel({
          config: c.config ?? {},
          configImports: c.configImports,
          vocabSize: c.vocabSize,
          tokensPerStep,
          reportedParams: c.reportedParams,
        });
        if (d.ok) {
          tokensPerStep ??= d.value.tokensPerStep;
          flopsPerStep = d.value.flopsPerStep;
          flopsFrom = 'log';
          const m = d.value.model;
          note =
            `FLOPs from the log's config: ${m.nLayer} layers, ${m.nHead} heads, width ${m.nEmbd}, context ${m.blockSize}, vocabulary ${m.vocabSize}, ` +
            `${(d.value.params / 1e6).toFixed(2)}M parameters; ${tokensPerStep} tokens and ${d.value.flopsPerStep.toExponential(3)} FLOPs per step`;
        } else note = `no FLOPs axis: ${d.reason}; give --flops-per-step or --model-config`;
      }
      const { rows, axes } = toMetricRows(c, { tokensPerStep, flopsPerStep });
      for (let i = 1; i < rows.length; i++)
        if (!(rows[i].step > rows[i - 1].step))
          throw new UsageError(
            `${p.file}: run "${c.name}": evaluations ${i} and ${i + 1} fall on the same step ${rows[i].step} at ${tokensPerStep} tokens per step`,
          );
      const innovation = c.name === f.baseline ? 'baseline' : c.name;
      return {
        name: c.name,
        file: p.file,
        rows,
        ...(note ? { note } : {}),
        spec: {
          imported: {
            format: p.format,
            file: p.file,
            sha256: p.sha256,
            run: c.name,
            tokensPerStep: tokensPerStep ?? null,
            flopsPerStep: flopsPerStep ?? null,
            axes,
            ...(c.config ? { config: c.config } : {}),
            ...(flopsFrom ? { flopsFrom } : {}),
          },
          innovation,
          scale: f.scale,
          seed: f.seed,
          backend: 'imported',
        },
      };
    },
  );
  // everything parsed and checked: now write
  return plans.map((pl) => {
    const run = store.importRun(pl.spec, pl.rows);
    return {
      id: run.id,
      name: pl.name,
      innovation: pl.spec.innovation,
      points: pl.rows.length,
      axes: pl.spec.imported.axes,
      file: pl.file,
      ...(pl.note ? { note: pl.note } : {}),
    };
  });
}
