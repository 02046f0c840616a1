/**
 * The one logger of the library layers (engine .. report): leveled lines on stderr.
 *
 *   log.info('[ceg] backend wasm');  log.warn('...');  log.error('...');  log.debug('...')
 *
 * Default level: `info` in a program, `warn` under `node --test` (NODE_TEST_CONTEXT) and in a
 * notebook kernel (tslab), so that tests and notebooks show only what needs attention. Entry
 * points that talk to a user (the `ceg` command line, a sweep's child trainer) call
 * setLogLevel('info'): their notices are part of their output wherever they run. Progress
 * bars are src/progress.ts (redrawn on a TTY, plain lines otherwise); results a command prints
 * (tables, JSON) go to stdout and never through this logger.
 */
export const LOG_LEVELS = ['silent', 'error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `warn` under node:test or in a tslab notebook kernel, else `info`. */
export function defaultLogLevel(
  env: NodeJS.ProcessEnv = process.env,
  entry: string | undefined = process.argv[1],
): LogLevel {
  if (env.NODE_TEST_CONTEXT) return 'warn';
  if (entry && /tslab/.test(entry)) return 'warn';
  return 'info';
}

let level: LogLevel = defaultLogLevel();
let sink: (line: string) => void = (line) => process.stderr.write(`${line}\n`);

export function setLogLevel(l: LogLevel): void {
  level = l;
}

export function logLevel(): LogLevel {
  return level;
}

/** Where lines go (default stderr); returns the previous sink, e.g. to restore it after a test. */
export function setLogSink(s: (line: string) => void): (line: string) => void {
  const old = sink;
  sink = s;
  return old;
}

/** Whether a message at `l` would be written. */
export function logs(l: Exclude<LogLevel, 'silent'>): boolean {
  return LOG_LEVELS.indexOf(l) <= LOG_LEVELS.indexOf(level);
}

const at =
  (l: Exclude<LogLevel, 'silent'>) =>
  (msg: string): void => {
    if (logs(l)) sink(msg);
  };

export const log = { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
