/**
 * Runs trained elsewhere, read from their logs into loss curves for the run store (`ceg import`).
 *
 * Layer: runs. The parsers read files and produce the run store's own shape (metric rows of
 * imported runs); they need nothing above the run store, and the store is what they feed. They
 * are not data-layer code: the data layer is about token streams, not training logs.
 *
 * Formats:
 *  - 'nanogpt': nanoGPT's train.py console log (and the paper's fork, which prints the same
 *    lines): `step N: train loss X, val loss Y` per evaluation; `tokens per iteration will be:
 *    16,384` gives tokens per step; `iter N: loss X, time Tms, mfu M%` lines give wall-clock
 *    time (summed); `Overriding: key = value` lines are kept as the run's config printout.
 *    Other lines are ignored.
 *  - 'wandb': a Weights & Biases CSV export of a panel: a `Step` column and, per run, a column
 *    `<run name> - val/loss` (W&B adds `__MIN` / `__MAX` columns: ignored). Empty cells are
 *    steps where that run logged nothing. Several runs per file; the run name of
 *    `compact - no_features - val/loss` is `no_features` when every column shares the prefix.
 *  - 'csv': a plain CSV with a header: one x column (`step`, `tokens` or `flops`), a
 *    validation loss column (`val_loss`, `valLoss`, `val/loss` or `loss`), optionally
 *    `train_loss` and a `run` column naming the run of each row (else the file's stem).
 *  - 'jsonl': one JSON object per line with the same keys as the plain CSV.
 *
 * Errors (ImportError) name the file, line and column (1-based) of the first problem: a missing
 * column, a non-numeric cell, a non-monotonic step.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';

export const IMPORT_FORMATS = ['nanogpt', 'wandb', 'csv', 'jsonl'] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

/** The compute axes of a curve (the CEG layer's Axis, spelled here: runs is below ceg). */
export type CurveAxis = 'steps' | 'tokens' | 'flops' | 'seconds';

export class ImportError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    detail: string,
  ) {
    super(`${file}:${line}:${column}: ${detail}`);
    this.name = 'ImportError';
  }
}

/** One evaluation of an imported run, on whatever axes the source gave. */
export interface ImportedPoint {
  step?: number;
  tokens?: number;
  flops?: number;
  seconds?: number;
  valLoss: number;
  trainLoss?: number | null;
}

/** One run read from a file. */
export interface ImportedCurve {
  /** run name (from the file: W&B column, `run` column, or the file's stem) */
  name: string;
  format: ImportFormat;
  file: string;
  points: ImportedPoint[];
  /** tokens per optimizer step the file states (nanoGPT's "tokens per iteration") */
  tokensPerStep?: number;
  /**
   * config printout of the log (nanoGPT): `key = value` lines of the printed config file and
   * `Overriding: key = value` lines, later lines winning, values as printed (Python literals)
   */
  config?: Record<string, string>;
  /** modules the printed config file imports with `from M import *` (the paper's fork's base configs) */
  configImports?: string[];
  /** vocabulary size the log states (`found vocab_size = N`, `defaulting to vocab_size of GPT-2 to 50304`) */
  vocabSize?: number;
  /** parameters the log reports (`number of parameters: 10.65M`: nanoGPT's non-embedding count) */
  reportedParams?: number;
}

/** How to turn steps into tokens and FLOPs (from the user, or the log). */
export interface Conversion {
  tokensPerStep?: number;
  flopsPerStep?: number;
}

/** The format of a file from its name and first line. */
export function detectFormat(file: string, text: string): ImportFormat {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  if (ext === '.log' || ext === '.txt' || ext === '.out') return 'nanogpt';
  const first = text.split(/\r?\n/, 1)[0] ?? '';
  if (ext === '.csv') return /(^|,)"?Step"?(,|$)/.test(first) && / - /.test(first) ? 'wandb' : 'csv';
  if (first.trimStart().startsWith('{')) return 'jsonl';
  if (/^step \d+: /m.test(text)) return 'nanogpt';
  return 'csv';
}

/** Parse a file's text in `format` (default: detected). */
export function parseRuns(
  file: string,
  text: string,
  format: ImportFormat = detectFormat(file, text),
): ImportedCurve[] {
  switch (format) {
    case 'nanogpt':
      return [parseNanoGptLog(file, text)];
    case 'wandb':
      return parseWandbCsv(file, text);
    case 'csv':
      return parsePlainCsv(file, text);
    case 'jsonl':
      return parseJsonl(file, text);
  }
}

function stem(file: string): string {
  return path.basename(file).replace(/\.[^.]*$/, '');
}

function lines(text: string): string[] {
  return text.replace(/^\uFEFF/, '').split(/\r?\n/);
}

// ------------------------------------------------------------------ nanoGPT log

const NUM = String.raw`[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf`;
const STEP_RE = new RegExp(String.raw`^step (\d+): train loss (${NUM}), val loss (\S+)`);
const ITER_RE = new RegExp(String.raw`^iter (\d+): loss (?:${NUM}), time (${NUM})ms`);
const TOKENS_RE = /^tokens per iteration will be: ([\d,]+)/;
const OVERRIDE_RE = /^Overriding: (\w+) = (.*)$/;
/** the config file train.py prints after `Overriding config with FILE:` */
const CONFIG_FILE_RE = /^Overriding config with (.+):$/;
const ASSIGN_RE = /^([A-Za-z_]\w*) = (.+)$/;
const IMPORT_RE = /^from ([\w.]+) import \*/;
const VOCAB_RE = /^(?:found vocab_size = (\d+)|defaulting to vocab_size of GPT-2 to (\d+))/;
const PARAMS_RE = /^number of parameters: ([\d.]+)M$/;

/** A Python literal as printed, without a trailing comment (`256 # context` -> `256`, `'a # b'` kept). */
function pyLiteral(v: string): string {
  const t = v.trim();
  const q = /^(['"]).*?\1/.exec(t);
  return q ? q[0] : t.replace(/\s+#.*$/, '').trim();
}

export function parseNanoGptLog(file: string, text: string): ImportedCurve {
  const points: ImportedPoint[] = [];
  const config: Record<string, string> = {};
  let tokensPerStep: number | undefined;
  let ms = 0;
  let lastIter = -1;
  let timed = false;
  let inConfigFile = false;
  const configImports: string[] = [];
  let vocabSize: number | undefined;
  let reportedParams: number | undefined;
  lines(text).forEach((raw, i) => {
    const line = raw.trim();
    const lineNo = i + 1;
    let m: RegExpExecArray | null;
    if (CONFIG_FILE_RE.test(line)) inConfigFile = true;
    else if ((m = TOKENS_RE.exec(line))) {
      tokensPerStep = Number(m[1].replace(/,/g, ''));
      inConfigFile = false;
    } else if ((m = OVERRIDE_RE.exec(line))) {
      config[m[1]] = pyLiteral(m[2]);
      inConfigFile = false;
    } else if (inConfigFile && (m = IMPORT_RE.exec(line))) {
      if (!configImports.includes(m[1])) configImports.push(m[1]);
    } else if (inConfigFile && (m = ASSIGN_RE.exec(line))) config[m[1]] = pyLiteral(m[2]);
    else if ((m = VOCAB_RE.exec(line))) vocabSize = Number(m[1] ?? m[2]);
    else if ((m = PARAMS_RE.exec(line))) reportedParams = Math.round(Number(m[1]) * 1e6);
    else if ((m = ITER_RE.exec(line))) {
      const it = Number(m[1]);
      const t = Number(m[2]);
      // iter 0 includes compilation (and nanoGPT's first timing covers the eval): left out
      if (it > 0 && Number.isFinite(t)) {
        ms += t * Math.max(1, it - Math.max(lastIter, 0));
        timed = true;
      }
      lastIter = it;
    } else if ((m = STEP_RE.exec(line))) {
      const step = Number(m[1]);
      const valText = m[3].replace(/,$/, '');
      const val = Number(valText);
      if (valText === '' || (Number.isNaN(val) && valText !== 'nan'))
        throw new ImportError(file, lineNo, raw.indexOf(m[3]) + 1, `val loss "${valText}" is not a number`);
      const prev = points.at(-1);
      if (prev && !(step > (prev.step as number)))
        throw new ImportError(
          file,
          lineNo,
          raw.indexOf(m[1]) + 1,
          `step ${step} does not increase (previous step ${prev.step})`,
        );
      points.push({ step, valLoss: val, trainLoss: Number(m[2]), ...(timed ? { seconds: ms / 1000 } : {}) });
    }
  });
  if (points.length === 0)
    throw new ImportError(file, 1, 1, 'no "step N: train loss X, val loss Y" line (is this a nanoGPT train.py log?)');
  // seconds only when every evaluation after step 0 has a time
  if (points.slice(1).some((p) => p.seconds === undefined)) for (const p of points) delete p.seconds;
  else if (points[0].seconds === undefined) points[0].seconds = 0;
  return {
    name: stem(file),
    format: 'nanogpt',
    file,
    points,
    ...(tokensPerStep ? { tokensPerStep } : {}),
    ...(Object.keys(config).length ? { config } : {}),
    ...(configImports.length ? { configImports } : {}),
    ...(vocabSize ? { vocabSize } : {}),
    ...(reportedParams ? { reportedParams } : {}),
  };
}

// ------------------------------------------------------------------ CSV

/** Split CSV text into rows of cells (RFC 4180 quotes), with the 1-based column of each cell. */
export function csvRows(text: string): { line: number; cells: string[]; cols: number[] }[] {
  const out: { line: number; cells: string[]; cols: number[] }[] = [];
  lines(text).forEach((raw, i) => {
    if (raw.trim() === '') return;
    const cells: string[] = [];
    const cols: number[] = [];
    let cur = '';
    let start = 1;
    let q = false;
    for (let j = 0; j < raw.length; j++) {
      const c = raw[j];
      if (q) {
        if (c === '"' && raw[j + 1] === '"') {
          cur += '"';
          j++;
        } else if (c === '"') q = false;
        else cur += c;
      } else if (c === '"') q = true;
      else if (c === ',') {
        cells.push(cur);
        cols.push(start);
        cur = '';
        start = j + 2;
      } else cur += c;
    }
    cells.push(cur);
    cols.push(start);
    out.push({ line: i + 1, cells: cells.map((s) => s.trim()), cols });
  });
  return out;
}

function numberCell(file: string, line: number, col: number, cell: string, what: string): number {
  const v = cell.trim().toLowerCase() === 'nan' ? NaN : Number(cell);
  if (cell.trim() === '' || (Number.isNaN(v) && cell.trim().toLowerCase() !== 'nan'))
    throw new ImportError(file, line, col, `${what} "${cell}" is not a number`);
  return v;
}

const X_COLUMNS = { step: 'step', steps: 'step', iter: 'step', tokens: 'tokens', flops: 'flops' } as const;
const VAL_COLUMNS = ['val_loss', 'valloss', 'val/loss', 'val loss', 'loss'];
const TRAIN_COLUMNS = ['train_loss', 'trainloss', 'train/loss', 'train loss'];

export function parseWandbCsv(file: string, text: string): ImportedCurve[] {
  const rows = csvRows(text);
  if (rows.length === 0) throw new ImportError(file, 1, 1, 'empty file');
  const [head, ...body] = rows;
  const stepAt = head.cells.findIndex((c) => c === 'Step' || c.toLowerCase() === 'step' || c === '_step');
  if (stepAt < 0) throw new ImportError(file, head.line, 1, `no "Step" column; columns: ${head.cells.join(', ')}`);
  const runCols = head.cells.map((c, j) => ({ c, j })).filter(({ c }) => / - val\/loss$/.test(c));
  if (runCols.length === 0)
    throw new ImportError(
      file,
      head.line,
      1,
      `no "<run> - val/loss" column (W&B export of the val/loss panel); columns: ${head.cells.join(', ')}`,
    );
  const names = runCols.map(({ c }) => c.replace(/ - val\/loss$/, ''));
  const parts = names.map((n) => n.split(' - '));
  const shared = parts.every((p) => p.length > 1 && p[0] === parts[0][0]);
  const curves: ImportedCurve[] = runCols.map((_, k) => ({
    name: shared ? parts[k].slice(1).join(' - ') : names[k],
    format: 'wandb',
    file,
    points: [],
  }));
  let prevStep = -Infinity;
  for (const r of body) {
    const cell = r.cells[stepAt] ?? '';
    const step = numberCell(file, r.line, r.cols[stepAt] ?? 1, cell, 'Step');
    if (!Number.isInteger(step) || step < 0)
      throw new ImportError(file, r.line, r.cols[stepAt], `Step "${cell}" is not a non-negative integer`);
    if (!(step > prevStep))
      throw new ImportError(file, r.line, r.cols[stepAt], `Step ${step} does not increase (previous ${prevStep})`);
    prevStep = step;
    runCols.forEach(({ j }, k) => {
      const v = r.cells[j] ?? '';
      if (v === '') return;
      curves[k].points.push({ step, valLoss: numberCell(file, r.line, r.cols[j] ?? 1, v, `${head.cells[j]}`) });
    });
  }
  const empty = curves.findIndex((c) => c.points.length === 0);
  if (empty >= 0)
    throw new ImportError(
      file,
      head.line,
      head.cols[runCols[empty].j],
      `column "${head.cells[runCols[empty].j]}" has no value`,
    );
  return curves;
}

interface Record_ {
  line: number;
  col: (key: string) => number;
  get: (key: string) => unknown;
}

/** Plain rows (CSV or JSONL) -> curves, grouped by the run column. */
function plainCurves(
  file: string,
  format: ImportFormat,
  keys: string[],
  records: Record_[],
  headLine: number,
  keyCol: (k: string) => number,
): ImportedCurve[] {
  const lower = new Map(keys.map((k) => [k.toLowerCase(), k]));
  const xKey = Object.keys(X_COLUMNS)
    .map((k) => lower.get(k))
    .find((k) => k !== undefined);
  const valKey = VAL_COLUMNS.map((k) => lower.get(k)).find((k) => k !== undefined);
  const trainKey = TRAIN_COLUMNS.map((k) => lower.get(k)).find((k) => k !== undefined);
  const runKey = lower.get('run') ?? lower.get('name');
  if (!xKey) throw new ImportError(file, headLine, 1, `no step, tokens or flops column; columns: ${keys.join(', ')}`);
  if (!valKey)
    throw new ImportError(
      file,
      headLine,
      1,
      `no validation loss column (val_loss, valLoss, val/loss or loss); columns: ${keys.join(', ')}`,
    );
  const axis = X_COLUMNS[xKey.toLowerCase() as keyof typeof X_COLUMNS];
  const byRun = new Map<string, ImportedCurve>();
  const num = (r: Record_, k: string, what: string): number => {
    const v = r.get(k);
    if (typeof v === 'number') return v;
    if (typeof v === 'string') return numberCell(file, r.line, r.col(k), v, what);
    throw new ImportError(
      file,
      r.line,
      r.col(k),
      `${what} ${v === undefined ? 'is missing' : `${JSON.stringify(v)} is not a number`}`,
    );
  };
  for (const r of records) {
    const name = runKey ? String(r.get(runKey) ?? '') || stem(file) : stem(file);
    let c = byRun.get(name);
    if (!c) byRun.set(name, (c = { name, format, file, points: [] }));
    const x = num(r, xKey, xKey);
    if (!Number.isFinite(x) || x < 0 || (axis === 'step' && !Number.isInteger(x)))
      throw new ImportError(
        file,
        r.line,
        r.col(xKey),
        `${xKey} ${x} must be a ${axis === 'step' ? 'non-negative integer' : 'finite number >= 0'}`,
      );
    const prev = c.points.at(-1);
    if (prev && !(x > (prev[axis] as number)))
      throw new ImportError(
        file,
        r.line,
        r.col(xKey),
        `${xKey} ${x} does not increase for run "${name}" (previous ${prev[axis]})`,
      );
    const p: ImportedPoint = { valLoss: num(r, valKey, valKey), [axis]: x };
    if (trainKey && r.get(trainKey) !== undefined && r.get(trainKey) !== '' && r.get(trainKey) !== null)
      p.trainLoss = num(r, trainKey, trainKey);
    c.points.push(p);
  }
  if (byRun.size === 0) throw new ImportError(file, headLine, keyCol(xKey), 'no data rows');
  return [...byRun.values()];
}

export function parsePlainCsv(file: string, text: string): ImportedCurve[] {
  const rows = csvRows(text);
  if (rows.length === 0) throw new ImportError(file, 1, 1, 'empty file');
  const [head, ...body] = rows;
  const idx = new Map(head.cells.map((c, j) => [c, j]));
  const records: Record_[] = body.map((r) => ({
    line: r.line,
    col: (k) => r.cols[idx.get(k)!] ?? (r.cols.at(-1) ?? 1) + 1,
    get: (k) => r.cells[idx.get(k)!],
  }));
  return plainCurves(file, 'csv', head.cells, records, head.line, (k) => head.cols[idx.get(k)!] ?? 1);
}

export function parseJsonl(file: string, text: string): ImportedCurve[] {
  const records: Record_[] = [];
  const keys = new Set<string>();
  lines(text).forEach((raw, i) => {
    if (raw.trim() === '') return;
    let o: unknown;
    try {
      o = JSON.parse(raw);
    } catch (e) {
      throw new ImportError(file, i + 1, 1, `not valid JSON (${(e as Error).message})`);
    }
    if (o === null || typeof o !== 'object' || Array.isArray(o))
      throw new ImportError(file, i + 1, 1, 'expected a JSON object per line');
    const obj = o as Record<string, unknown>;
    Object.keys(obj).forEach((k) => keys.add(k));
    records.push({
      line: i + 1,
      col: (k) => {
        // the column of the value of key k (of the key when the value cannot be found)
        const at = raw.indexOf(JSON.stringify(k));
        if (at < 0) return 1;
        const m = /^\s*:\s*/.exec(raw.slice(at + JSON.stringify(k).length));
        return m ? at + JSON.stringify(k).length + m[0].length + 1 : at + 1;
      },
      get: (k) => obj[k],
    });
  });
  if (records.length === 0) throw new ImportError(file, 1, 1, 'empty file');
  return plainCurves(file, 'jsonl', [...keys], records, records[0].line, () => 1);
}

// ------------------------------------------------------------------ to metric rows

/** An imported run's metric row: compute the source does not give is NaN (unknown). */
export interface ImportedRow {
  step: number;
  tokens: number;
  flops: number;
  seconds: number;
  trainLoss: number | null;
  valLoss: number;
  lr: number;
  [k: string]: unknown;
}

/**
 * Points -> metric rows with every axis the source and the conversion allow: step from
 * tokens (or FLOPs) when only those are given and a per-step rate is known, tokens and FLOPs
 * from steps by the rates. `axes` lists the axes the rows really carry; the others hold NaN
 * (a curve given in tokens without a tokens-per-step rate has step = evaluation index, and
 * 'steps' is not among its axes).
 */
export function toMetricRows(curve: ImportedCurve, conv: Conversion): { rows: ImportedRow[]; axes: CurveAxis[] } {
  const tps = conv.tokensPerStep ?? curve.tokensPerStep;
  const fps = conv.flopsPerStep;
  const p0 = curve.points[0];
  let hasStep = p0.step !== undefined;
  const stepOf = (p: ImportedPoint, i: number): number => {
    if (p.step !== undefined) return p.step;
    if (p.tokens !== undefined && tps) return p.tokens / tps;
    if (p.flops !== undefined && fps) return p.flops / fps;
    return i;
  };
  if (!hasStep) hasStep = (p0.tokens !== undefined && !!tps) || (p0.flops !== undefined && !!fps);
  const rows = curve.points.map((p, i) => {
    const s = stepOf(p, i);
    const step = Math.round(s);
    return {
      step,
      tokens: p.tokens ?? (hasStep && tps ? s * tps : NaN),
      flops: p.flops ?? (hasStep && fps ? s * fps : NaN),
      seconds: p.seconds ?? NaN,
      trainLoss: p.trainLoss ?? null,
      valLoss: p.valLoss,
      lr: NaN,
    };
  });
  const axes: CurveAxis[] = [];
  if (hasStep) axes.push('steps');
  if (rows.every((r) => Number.isFinite(r.tokens))) axes.push('tokens');
  if (rows.every((r) => Number.isFinite(r.flops))) axes.push('flops');
  if (rows.every((r) => Number.isFinite(r.seconds))) axes.push('seconds');
  return { rows, axes };
}

// ------------------------------------------------------------------ stored spec

/** Where an imported run came from: stored in its spec.json instead of model/train/data. */
export interface ImportSource {
  format: ImportFormat;
  /** the file as given on the command line (descriptive; not hashed) */
  file: string;
  /** sha256 of the file's bytes */
  sha256: string;
  /** the run's name in the file */
  run: string;
  tokensPerStep: number | null;
  flopsPerStep: number | null;
  /** axes the stored rows carry (others are NaN) */
  axes: CurveAxis[];
  /** config printout of the log, if any */
  config?: Record<string, string>;
  /** where flopsPerStep came from: --flops-per-step, --model-config, or the log's config printout (src/model/nanogpt-config.ts) */
  flopsFrom?: 'flag' | 'model-config' | 'log';
}

/** The spec of an imported run: labels as for a trained run, the source instead of configs. */
export interface ImportedRunSpec {
  imported: ImportSource;
  innovation: string;
  scale: string;
  seed: number;
  backend: 'imported';
}

export function isImportedSpec(spec: unknown): spec is ImportedRunSpec {
  return (
    typeof spec === 'object' &&
    spec !== null &&
    'imported' in spec &&
    typeof (spec as ImportedRunSpec).imported === 'object'
  );
}

// ------------------------------------------------------------------ files

/** A file read for import: its runs and the sha256 of its bytes. */
export interface ImportFile {
  file: string;
  format: ImportFormat;
  sha256: string;
  curves: ImportedCurve[];
}

/**
 * Read and parse every file (nothing is written): a missing file or a bad one is an
 * ImportError naming it. `format` forces the format of all files (default: detected per file).
 */
export function readImportFiles(files: readonly string[], format?: ImportFormat): ImportFile[] {
  return files.map((file) => {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(file);
    } catch (e) {
      throw new ImportError(file, 0, 0, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const text = bytes.toString('utf8');
    const f = format ?? detectFormat(file, text);
    return {
      file,
      format: f,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      curves: parseRuns(file, text, f),
    };
  });
}
