/**
 * Progress reporting for long jobs (training runs, sweeps), no dependency.
 *  - on a TTY: one line redrawn in place with \r, at most every `minIntervalMs`:
 *      label [#########...........] 45% step 180/400 loss 2.134 1.2k tok/s ETA 1m12s
 *  - otherwise (CI, pipes, files): plain lines, one each time another `everyFraction` of the
 *    total is done (default every 10%), at every evaluation (an update carrying valLoss) and
 *    at the end, each with the elapsed time:
 *      label  45% step 180/400 loss 2.134 val 2.201 1.2k tok/s elapsed 52s ETA 1m12s
 * The ETA comes from the elapsed time and the progress made since creation (`start` excludes
 * steps done before a resume from the rate).
 */

export interface ProgressFields {
  /** training loss */
  loss?: number | null;
  /** validation loss: an update carrying it is an evaluation (always logged when not a TTY) */
  valLoss?: number | null;
  tokPerSec?: number;
  /** anything else is shown as `key value` */
  [k: string]: number | string | null | undefined;
}

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  label: string;
  /** units of work in all (e.g. optimizer steps) */
  total: number;
  stream?: ProgressStream;
  /** units already done when the job starts (a resumed run): the ETA rate counts from here */
  start?: number;
  /** name of the unit (default 'step') */
  unit?: string;
  /** force TTY / plain mode (default: stream.isTTY) */
  tty?: boolean;
  /** plain mode: log each time this fraction of the total is passed (default 0.1) */
  everyFraction?: number;
  /** TTY mode: minimum milliseconds between redraws (default 100) */
  minIntervalMs?: number;
  /** TTY mode: bar cells (default 20) */
  barWidth?: number;
  /** clock in milliseconds (default performance.now), for tests */
  now?: () => number;
}

export interface Progress {
  update(done: number, fields?: ProgressFields): void;
  /** a message that does not break the bar (on a TTY the bar is redrawn below it) */
  log(msg: string): void;
  /** finish: final line plus an optional summary; later calls are ignored */
  done(summary?: string): void;
}

/** A TTY progress line is cut to this many columns (or the terminal's width if narrower). */
export const TTY_MAX_COLUMNS = 80;

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const { label, total } = opts;
  if (!Number.isFinite(total) || total < 0)
    throw new Error(`progress total must be a finite number >= 0, got ${total}`);
  const now = opts.now ?? (() => performance.now());
  const tty = opts.tty ?? stream.isTTY === true;
  const unit = opts.unit ?? 'step';
  const every = opts.everyFraction ?? 0.1;
  if (!(every > 0 && every <= 1)) throw new Error(`everyFraction must be in (0, 1], got ${every}`);
  const minInterval = opts.minIntervalMs ?? 100;
  const barWidth = opts.barWidth ?? 20;
  const start = opts.start ?? 0;
  const t0 = now();
  let current = start;
  let fields: ProgressFields = {};
  let lastDraw = -Infinity;
  let lastBucket = Math.floor(fraction(start, total) / every + 1e-9);
  let drawn = false;
  let finished = false;

  const etaSeconds = (): number | undefined => {
    const elapsed = (now() - t0) / 1000;
    const made = current - start;
    if (made <= 0 || elapsed <= 0) return undefined;
    return ((total - current) * elapsed) / made;
  };

  const statusText = (): string => {
    // fixed order: loss, val, tok/s, then other fields in the order first given
    const parts = [`${unit} ${current}/${total}`];
    const { loss, valLoss, tokPerSec, ...rest } = fields;
    if (loss !== undefined && loss !== null) parts.push(`loss ${formatLoss(loss)}`);
    if (valLoss !== undefined && valLoss !== null) parts.push(`val ${formatLoss(valLoss)}`);
    if (tokPerSec !== undefined) parts.push(`${formatCount(tokPerSec)} tok/s`);
    for (const [k, v] of Object.entries(rest)) {
      if (v === undefined || v === null) continue;
      parts.push(`${k} ${typeof v === 'number' ? formatNumber(v) : v}`);
    }
    return parts.join(' ');
  };

  const percent = () => `${Math.floor(fraction(current, total) * 100)}%`.padStart(4);

  const ttyLine = (): string => {
    const filled = Math.round(fraction(current, total) * barWidth);
    const bar = '#'.repeat(filled) + '.'.repeat(barWidth - filled);
    const eta = etaSeconds();
    const etaText = eta !== undefined && current < total ? ` ETA ${formatDuration(eta)}` : '';
    // at most 80 columns (fewer on a narrower terminal); the ETA stays: drop the bar, then the
    // loss and speed fields, before cutting the line
    const width = Math.min(stream.columns ?? TTY_MAX_COLUMNS, TTY_MAX_COLUMNS) - 1;
    const pct = percent().trim();
    for (const line of [
      `${label} [${bar}] ${pct} ${statusText()}${etaText}`,
      `${label} ${pct} ${statusText()}${etaText}`,
      `${label} ${pct} ${unit} ${current}/${total}${etaText}`,
    ]) {
      if (line.length <= width) return line;
    }
    return `${label} ${pct} ${unit} ${current}/${total}${etaText}`.slice(0, width);
  };

  const plainLine = (): string => {
    const eta = etaSeconds();
    const elapsed = (now() - t0) / 1000;
    return (
      `${label} ${percent()} ${statusText()} elapsed ${formatDuration(elapsed)}` +
      (eta !== undefined && current < total ? ` ETA ${formatDuration(eta)}` : '')
    );
  };

  const draw = () => {
    stream.write(`\r${ttyLine()}\x1b[K`);
    drawn = true;
    lastDraw = now();
  };

  return {
    update(done, f = {}) {
      if (finished) return;
      current = Math.min(Math.max(done, 0), total);
      fields = { ...fields, ...f };
      const isEval = typeof f.valLoss === 'number';
      if (tty) {
        if (now() - lastDraw >= minInterval || current >= total || isEval) draw();
        return;
      }
      const bucket = Math.floor(fraction(current, total) / every + 1e-9);
      if (bucket > lastBucket || isEval || current >= total) {
        lastBucket = Math.max(bucket, lastBucket);
        stream.write(plainLine() + '\n');
      }
    },
    log(msg) {
      if (tty) {
        stream.write(`\r\x1b[K${msg}\n`);
        if (drawn && !finished) draw();
      } else {
        stream.write(msg + '\n');
      }
    },
    done(summary) {
      if (finished) return;
      const elapsed = (now() - t0) / 1000;
      const end = `${label} done: ${unit} ${current}/${total} in ${formatDuration(elapsed)}${summary ? `; ${summary}` : ''}`;
      if (tty) {
        draw();
        stream.write(`\n${end}\n`);
      } else {
        stream.write(end + '\n');
      }
      finished = true;
    },
  };
}

function fraction(done: number, total: number): number {
  return total <= 0 ? 1 : Math.min(1, Math.max(0, done / total));
}

/** 72 -> "1m12s", 9 -> "9s", 3725 -> "1h02m", 0.4 -> "0s" */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** 1234 -> "1.2k", 12.34 -> "12.3", 2.5e6 -> "2.5M", 999 -> "999" */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  if (a >= 100) return n.toFixed(0);
  return n.toFixed(1);
}

function formatLoss(v: number | string): string {
  return typeof v === 'number' ? (Number.isNaN(v) ? 'nan' : v.toFixed(3)) : v;
}

function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : String(Number(v.toPrecision(4)));
}
