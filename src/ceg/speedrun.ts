/**
 * Algorithmic progress in the wild (issue #15): the modded-nanogpt speedrun records (track 1:
 * reach 3.28 FineWeb validation loss on 8xH100, data/anchors/modded-nanogpt-track1-records.csv)
 * as a CEG view. Every record reaches the same target loss, so a record's gain over an earlier
 * one on TOKENS is a CEG at equal loss on training tokens (a proxy for compute at a fixed model
 * family), and its wall-clock gain splits exactly into
 *
 *   time gain = token gain × per-token speed gain        (minutes = tokens × minutes/token)
 *
 * A record that needs fewer tokens changed the algorithm (what the model learns per token: the
 * paper's compute-equivalent gains); a record with the same tokens and less time only made the
 * system faster (kernels, communication, compilers: no CEG on FLOPs at all). Pure functions: the
 * caller reads the file.
 */
import { csvRows } from '../runs/import.js';
import { CegError } from './types.js';

export interface SpeedrunRecord {
  /** record number in the README's table (record 21 appears three times: two are re-timings) */
  record: number;
  /** MM/DD/YY as in the README */
  date: string;
  /** wall-clock minutes to the target on 8xH100 */
  minutes: number;
  /** optimizer steps from the record's log, null when the log gives none */
  finalStep: number | null;
  tokensPerStep: number | null;
  /** training tokens to the target, null when the log does not give them (no log, a log folder, a batch-size schedule) */
  trainTokens: number | null;
  finalValLoss: number | null;
  description: string;
  /** 'retiming only' rows re-time an earlier record; '' otherwise */
  note: string;
}

const COLUMNS = [
  'record',
  'date',
  'minutes',
  'final_step',
  'tokens_per_step',
  'train_tokens',
  'final_val_loss',
  'description',
  'note',
] as const;

/** Parse the records CSV (header row with the columns above; blank cells are null). */
export function parseSpeedrunCsv(text: string, file = 'modded-nanogpt-track1-records.csv'): SpeedrunRecord[] {
  const rows = csvRows(text);
  if (rows.length === 0) throw new CegError(`${file}: empty`);
  const header = rows[0].cells;
  const col = (name: string) => {
    const i = header.indexOf(name);
    if (i < 0) throw new CegError(`${file}: no column "${name}" (columns: ${header.join(', ')})`);
    return i;
  };
  const idx = Object.fromEntries(COLUMNS.map((c) => [c, col(c)])) as Record<(typeof COLUMNS)[number], number>;
  const num = (cells: string[], c: (typeof COLUMNS)[number], line: number, required: boolean): number | null => {
    const s = (cells[idx[c]] ?? '').trim();
    if (s === '') {
      if (required) throw new CegError(`${file}:${line}: ${c} is empty`);
      return null;
    }
    const v = Number(s);
    if (!Number.isFinite(v)) throw new CegError(`${file}:${line}: ${c} "${s}" is not a number`);
    return v;
  };
  return rows.slice(1).map(({ line, cells }) => ({
    record: num(cells, 'record', line, true)!,
    date: cells[idx.date] ?? '',
    minutes: num(cells, 'minutes', line, true)!,
    finalStep: num(cells, 'final_step', line, false),
    tokensPerStep: num(cells, 'tokens_per_step', line, false),
    trainTokens: num(cells, 'train_tokens', line, false),
    finalValLoss: num(cells, 'final_val_loss', line, false),
    description: cells[idx.description] ?? '',
    note: cells[idx.note] ?? '',
  }));
}

/**
 * How a record moved the frontier, against the previous record:
 * - 'algorithm': fewer tokens to the target (beyond the tolerance): a compute-equivalent gain;
 * - 'system': the same tokens (within the tolerance), less time: only the system got faster;
 * - 'more-tokens': more tokens, yet less time: a faster system paid for a costlier recipe;
 * - 'unknown-tokens': this record's or the previous record's tokens are not in its log;
 * - 'first': the first record (nothing to compare with);
 * - 'retiming': a re-timing of an earlier record, not a record (excluded from every chain).
 */
export type SpeedrunKind = 'algorithm' | 'system' | 'more-tokens' | 'unknown-tokens' | 'first' | 'retiming';

export interface SpeedrunStep {
  record: number;
  date: string;
  description: string;
  minutes: number;
  trainTokens: number | null;
  kind: SpeedrunKind;
  /** previous record's minutes / this record's (null for the first and re-timings) */
  timeGain: number | null;
  /** previous record's tokens / this record's: CEG on tokens at equal loss (null when either is unknown) */
  tokenGain: number | null;
  /** timeGain / tokenGain: how much faster each token was processed (null when tokenGain is) */
  speedGain: number | null;
  /** first record's minutes / this record's */
  cumulativeTimeGain: number | null;
  /** first record's tokens / this record's (null when unknown) */
  cumulativeTokenGain: number | null;
}

export interface SpeedrunSplit {
  /** records in the file, re-timings included */
  rows: number;
  /** distinct records (re-timings excluded) */
  records: number;
  retimings: number;
  /** records whose log gives no tokens */
  unknownTokens: number;
  /** of those, records whose log gives steps but no tokens (a batch-size schedule) */
  stepsWithoutTokens: number;
  byKind: Record<SpeedrunKind, number>;
  /** over consecutive pairs with tokens known on both sides: products of the gains */
  chained: { pairs: number; timeGain: number; tokenGain: number; speedGain: number; algorithmShare: number };
  /** first record to the last record with tokens: tokens ratio and minutes ratio */
  lastWithTokens: { record: number; tokenGain: number; timeGain: number; algorithmShare: number } | null;
  /** first to last record: wall-clock gain */
  totalTimeGain: number;
}

export interface SpeedrunAnalysis {
  steps: SpeedrunStep[];
  split: SpeedrunSplit;
  /** relative tolerance within which two token counts are "the same" */
  tolerance: number;
}

/**
 * The CEG view of the records. `tolerance` (default 0.005): token counts within ±0.5% are the
 * same (a record that shaves 10 of 1770 steps, 0.6%, counts as fewer tokens).
 */
export function analyzeSpeedrun(
  records: readonly SpeedrunRecord[],
  opts: { tolerance?: number } = {},
): SpeedrunAnalysis {
  const tol = opts.tolerance ?? 0.005;
  if (!(tol >= 0 && tol < 1)) throw new CegError(`analyzeSpeedrun: tolerance must be in [0, 1), got ${tol}`);
  const steps: SpeedrunStep[] = [];
  let prev: SpeedrunRecord | null = null;
  let first: SpeedrunRecord | null = null;
  const chain = { pairs: 0, logTime: 0, logTokens: 0 };
  for (const r of records) {
    if (r.note.trim().toLowerCase().startsWith('retiming')) {
      steps.push({
        record: r.record,
        date: r.date,
        description: r.description,
        minutes: r.minutes,
        trainTokens: r.trainTokens,
        kind: 'retiming',
        timeGain: null,
        tokenGain: null,
        speedGain: null,
        cumulativeTimeGain: null,
        cumulativeTokenGain: null,
      });
      continue;
    }
    if (!(r.minutes > 0)) throw new CegError(`analyzeSpeedrun: record ${r.record} has minutes ${r.minutes}`);
    if (r.trainTokens !== null && !(r.trainTokens > 0))
      throw new CegError(`analyzeSpeedrun: record ${r.record} has train tokens ${r.trainTokens}`);
    first ??= r;
    let kind: SpeedrunKind;
    let timeGain: number | null = null;
    let tokenGain: number | null = null;
    let speedGain: number | null = null;
    if (!prev) kind = 'first';
    else {
      timeGain = prev.minutes / r.minutes;
      if (prev.trainTokens !== null && r.trainTokens !== null) {
        tokenGain = prev.trainTokens / r.trainTokens;
        speedGain = timeGain / tokenGain;
        kind = tokenGain > 1 + tol ? 'algorithm' : tokenGain < 1 / (1 + tol) ? 'more-tokens' : 'system';
        chain.pairs += 1;
        chain.logTime += Math.log(timeGain);
        chain.logTokens += Math.log(tokenGain);
      } else kind = 'unknown-tokens';
    }
    steps.push({
      record: r.record,
      date: r.date,
      description: r.description,
      minutes: r.minutes,
      trainTokens: r.trainTokens,
      kind,
      timeGain,
      tokenGain,
      speedGain,
      cumulativeTimeGain: first.minutes / r.minutes,
      cumulativeTokenGain:
        first.trainTokens !== null && r.trainTokens !== null ? first.trainTokens / r.trainTokens : null,
    });
    prev = r;
  }
  if (!first || !prev) throw new CegError('analyzeSpeedrun: no records');
  const kept = records.filter((r) => !r.note.trim().toLowerCase().startsWith('retiming'));
  const byKind = { algorithm: 0, system: 0, 'more-tokens': 0, 'unknown-tokens': 0, first: 0, retiming: 0 } as Record<
    SpeedrunKind,
    number
  >;
  for (const s of steps) byKind[s.kind] += 1;
  const lastTok = [...steps]
    .reverse()
    .find((s) => s.kind !== 'retiming' && s.cumulativeTokenGain !== null && s.record !== first!.record);
  const share = (logTok: number, logTime: number) => (logTime === 0 ? 0 : logTok / logTime);
  return {
    tolerance: tol,
    steps,
    split: {
      rows: records.length,
      records: kept.length,
      retimings: records.length - kept.length,
      unknownTokens: kept.filter((r) => r.trainTokens === null).length,
      stepsWithoutTokens: kept.filter((r) => r.trainTokens === null && r.finalStep !== null).length,
      byKind,
      chained: {
        pairs: chain.pairs,
        timeGain: Math.exp(chain.logTime),
        tokenGain: Math.exp(chain.logTokens),
        speedGain: Math.exp(chain.logTime - chain.logTokens),
        algorithmShare: share(chain.logTokens, chain.logTime),
      },
      lastWithTokens: lastTok
        ? {
            record: lastTok.record,
            tokenGain: lastTok.cumulativeTokenGain!,
            timeGain: lastTok.cumulativeTimeGain!,
            algorithmShare: share(Math.log(lastTok.cumulativeTokenGain!), Math.log(lastTok.cumulativeTimeGain!)),
          }
        : null,
      totalTimeGain: first.minutes / prev.minutes,
    },
  };
}
