/**
 * Progress of several runs at once (a sweep or a study with --jobs N): one line per active
 * run. On a TTY the block of active lines is redrawn in place (cursor up, rewrite, clear
 * below); a line fits 80 columns (fewer on a narrower terminal) and keeps its ETA, dropping
 * the bar-less fields (speed, then losses) and then shortening the label before the ETA goes;
 * a finished run's last line and any message are printed once above the block. Not on a TTY
 * every run line is a plain progress (src/cli/progress.ts plain mode: a line every 10%, at
 * each evaluation and at the end), so logs and CI read as before.
 *
 *   const board = createProgressBoard({ stream: process.stderr });
 *   const line = board.add('[3/14] rope micro seed 1', 400);   // a Progress
 *   line.update(180, { loss: 2.134, tokPerSec: 1200 }); line.done('final val loss 2.20');
 *
 * A sweep's child trainers do not draw: they send their progress events over the IPC
 * channel (progressOverIpc) and the parent feeds them to its board (ProgressEvent).
 */
import {
  createProgress,
  formatCount,
  formatDuration,
  TTY_MAX_COLUMNS,
  type Progress,
  type ProgressFields,
  type ProgressStream,
} from '../progress.js';

export interface ProgressBoardOptions {
  stream?: ProgressStream;
  /** force TTY / plain mode (default: stream.isTTY) */
  tty?: boolean;
  /** TTY: minimum milliseconds between redraws caused by updates (default 100) */
  minIntervalMs?: number;
  /** clock in milliseconds (default performance.now), for tests */
  now?: () => number;
}

export interface ProgressBoard {
  /** a new active run: its line, a Progress (update / log / done) */
  add(label: string, total: number, opts?: { start?: number; unit?: string }): Progress;
  /** a message above the live block */
  log(msg: string): void;
  /** active lines now (TTY mode; tests) */
  active(): number;
}

/** Cut a line to `width` columns keeping its end (the ETA): the label loses characters first. */
function fitLine(label: string, rest: string[], width: number): string {
  // rest: candidates of the part after the label, longest first; the last is the shortest (percent, count, ETA)
  for (const r of rest) if (label.length + 1 + r.length <= width) return `${label} ${r}`;
  const tail = rest[rest.length - 1];
  const room = width - 1 - tail.length;
  if (room >= 2) return `${label.slice(0, room - 1)}~ ${tail}`;
  return tail.slice(Math.max(0, tail.length - width));
}

export function createProgressBoard(o: ProgressBoardOptions = {}): ProgressBoard {
  const stream = o.stream ?? process.stderr;
  const tty = o.tty ?? stream.isTTY === true;
  const now = o.now ?? (() => performance.now());
  const minInterval = o.minIntervalMs ?? 100;
  interface Line {
    label: string;
    total: number;
    start: number;
    unit: string;
    current: number;
    fields: ProgressFields;
    t0: number;
  }
  const lines: Line[] = [];
  let drawn = 0;
  let lastDraw = -Infinity;
  // a terminal of unknown size (columns 0 or undefined, e.g. under `script`) counts as 80 wide
  const width = () => Math.min(stream.columns || TTY_MAX_COLUMNS, TTY_MAX_COLUMNS) - 1;

  const text = (l: Line): string => {
    const frac = l.total <= 0 ? 1 : Math.min(1, Math.max(0, l.current / l.total));
    const pct = `${Math.floor(frac * 100)}%`;
    const made = l.current - l.start;
    const elapsed = (now() - l.t0) / 1000;
    const eta =
      made > 0 && elapsed > 0 && l.current < l.total
        ? ` ETA ${formatDuration(((l.total - l.current) * elapsed) / made)}`
        : '';
    const count = `${pct} ${l.unit} ${l.current}/${l.total}`;
    const { loss, valLoss, tokPerSec } = l.fields;
    const losses = [
      ...(typeof loss === 'number' ? [`loss ${loss.toFixed(3)}`] : []),
      ...(typeof valLoss === 'number' ? [`val ${valLoss.toFixed(3)}`] : []),
    ].join(' ');
    const speed = tokPerSec !== undefined && tokPerSec !== null ? `${formatCount(Number(tokPerSec))} tok/s` : '';
    const join = (...p: string[]) => p.filter(Boolean).join(' ');
    return fitLine(l.label, [join(count, losses, speed) + eta, join(count, losses) + eta, count + eta], width());
  };

  /** redraw the block; `above`: lines printed once above it */
  const draw = (above: string[] = []) => {
    let out = drawn > 0 ? `\x1b[${drawn}A\r` : '\r';
    for (const a of above) out += `\x1b[K${a}\n`;
    for (const l of lines) out += `\x1b[K${text(l)}\n`;
    out += '\x1b[J';
    stream.write(out);
    drawn = lines.length;
    lastDraw = now();
  };

  return {
    add(label, total, opts = {}) {
      if (!tty)
        return createProgress({
          label,
          total,
          stream,
          tty: false,
          now,
          ...(opts.start !== undefined ? { start: opts.start } : {}),
          ...(opts.unit ? { unit: opts.unit } : {}),
        });
      const l: Line = {
        label,
        total,
        start: opts.start ?? 0,
        unit: opts.unit ?? 'step',
        current: opts.start ?? 0,
        fields: {},
        t0: now(),
      };
      lines.push(l);
      draw();
      let finished = false;
      return {
        update(done, f = {}) {
          if (finished) return;
          l.current = Math.min(Math.max(done, 0), l.total);
          l.fields = { ...l.fields, ...f };
          if (now() - lastDraw >= minInterval || typeof f.valLoss === 'number') draw();
        },
        log(msg) {
          draw([msg]);
        },
        done(summary) {
          if (finished) return;
          finished = true;
          const elapsed = (now() - l.t0) / 1000;
          lines.splice(lines.indexOf(l), 1);
          draw([
            `${l.label} done: ${l.unit} ${l.current}/${l.total} in ${formatDuration(elapsed)}${summary ? `; ${summary}` : ''}`,
          ]);
        },
      };
    },
    log(msg) {
      if (tty) draw([msg]);
      else stream.write(msg + '\n');
    },
    active: () => lines.length,
  };
}

/** What a child trainer sends its parent instead of drawing (one message per Progress call). */
export type ProgressEvent =
  | { ceg: 'progress'; kind: 'start'; label: string; total: number }
  | { ceg: 'progress'; kind: 'update'; done: number; fields: ProgressFields }
  | { ceg: 'progress'; kind: 'log'; msg: string }
  | { ceg: 'progress'; kind: 'done'; summary?: string };

export function isProgressEvent(m: unknown): m is ProgressEvent {
  return typeof m === 'object' && m !== null && (m as { ceg?: unknown }).ceg === 'progress';
}

/** A Progress that sends its calls to the parent process (`send`: process.send). */
export function progressOverIpc(label: string, total: number, send: (m: ProgressEvent) => void): Progress {
  send({ ceg: 'progress', kind: 'start', label, total });
  return {
    update: (done, fields = {}) => send({ ceg: 'progress', kind: 'update', done, fields }),
    log: (msg) => send({ ceg: 'progress', kind: 'log', msg }),
    done: (summary) => send({ ceg: 'progress', kind: 'done', ...(summary !== undefined ? { summary } : {}) }),
  };
}

/**
 * The parent's side: feed one child's events to a board. Returns a function to call when the
 * child has exited (a line the child left open is closed without a summary).
 */
export function boardFeed(board: ProgressBoard): {
  onMessage: (m: unknown) => void;
  onExit: (code: number | null) => void;
} {
  let line: Progress | undefined;
  return {
    onMessage(m) {
      if (!isProgressEvent(m)) return;
      if (m.kind === 'start') line = board.add(m.label, m.total);
      else if (m.kind === 'log') line ? line.log(m.msg) : board.log(m.msg);
      else if (m.kind === 'update') line?.update(m.done, m.fields);
      else if (m.kind === 'done') {
        line?.done(m.summary);
        line = undefined;
      }
    },
    onExit(code) {
      line?.done(code === 0 ? undefined : `stopped (exit ${code})`);
      line = undefined;
    },
  };
}
