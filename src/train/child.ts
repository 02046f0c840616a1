/**
 * One run trained in a process of its own: the entry point of a sweep's child trainers
 * (./sweep.ts, `--jobs N`), and the stop handling and result line that `ceg train` shares
 * (src/cli/main.ts imports interruptSignal and printTrained from here).
 *
 *   node --import tsx src/train/child.ts SPEC.json STORE_DIR [--allow-small-corpus] [--allow-stale]
 *
 * SPEC.json is the run spec exactly as the parent validated it (a private temporary file); the
 * child claims the run before it writes (src/runs/claim.ts), so it is the run's only writer.
 * Exit codes are those of `ceg train`: 0 done, 3 diverged, 2 bad input or a full/read-only
 * disk, 130/143 stopped by a signal (or by its parent going away), 1 anything else.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config.js';
import { EngineError } from '../engine/index.js';
import { DataError } from '../data/index.js';
import { CheckpointCorruptError, ClaimLostError, RunStore, validateRunSpec, type RunSpec } from '../runs/index.js';
import { describeIoError } from '../io-errors.js';
import { log, setLogLevel } from '../log.js';
import { InterruptedError, divergenceMessage } from './trainer.js';
import { ensureSpecs, EXIT_DIVERGED } from './sweep.js';
import type { RunRecord } from '../runs/index.js';

/**
 * SIGINT / SIGTERM: the first stops at the next step boundary with a checkpoint (a sweep
 * passes it on to its children and waits for them); a second exits at once (a sweep's
 * children are killed with it). A trainer started by a sweep (an IPC channel) also stops
 * when that channel closes, i.e. when its parent is gone, even after a kill -9 (issue 18).
 * The abort reason is the signal's name, which picks the exit code (130 / 143).
 */
export function interruptSignal(): AbortSignal {
  const ac = new AbortController();
  const on = (sig: 'SIGINT' | 'SIGTERM') => () => {
    if (ac.signal.aborted) process.exit(sig === 'SIGTERM' ? 143 : 130);
    log.warn(
      `\n[ceg] ${sig}: checkpointing at the next step boundary (${sig === 'SIGINT' ? 'Ctrl-C' : 'the signal'} again to quit at once)`,
    );
    ac.abort(sig);
  };
  process.on('SIGINT', on('SIGINT'));
  process.on('SIGTERM', on('SIGTERM'));
  if (process.channel) {
    process.channel.unref(); // the channel alone never keeps this process alive
    process.on('disconnect', () => {
      if (ac.signal.aborted) return;
      log.warn('\n[ceg] the parent process is gone: checkpointing at the next step boundary and stopping');
      ac.abort('disconnect');
    });
  }
  return ac.signal;
}

/** One trained (or cached) run's result line; a diverged run is a message on stderr and exit 3. */
export function printTrained(r: RunRecord): number {
  if (r.diverged) {
    log.error(
      `ceg: ${r.innovation} ${r.scale} seed ${r.seed}: run ${r.id} ${divergenceMessage(r.diverged)}${r.cached ? ' (stored result)' : ''}`,
    );
    return EXIT_DIVERGED;
  }
  const last = r.metrics[r.metrics.length - 1];
  // the command's result (stdout), not a log line
  console.log(
    `${r.innovation} ${r.scale} seed ${r.seed}: run ${r.id}, final val loss ${last?.valLoss?.toFixed(4)}${r.cached ? (r.stale ? ' (cached, STALE)' : ' (cached)') : ''}`,
  );
  return 0;
}

/** Errors whose message is the whole story in a child (bad input, or a state to act on): exit 2. */
const USER_ERRORS = [ConfigError, EngineError, DataError, CheckpointCorruptError] as const;

async function childMain(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { 'allow-small-corpus': { type: 'boolean' }, 'allow-stale': { type: 'boolean' } },
  });
  if (positionals.length !== 2)
    throw new ConfigError(
      'usage: node --import tsx src/train/child.ts SPEC.json STORE_DIR [--allow-small-corpus] [--allow-stale]',
    );
  const [specFile, storeRoot] = positionals as [string, string];
  const spec = JSON.parse(fs.readFileSync(specFile, 'utf8')) as RunSpec;
  validateRunSpec(spec);
  const [r] = await ensureSpecs([spec], {
    store: new RunStore(storeRoot),
    signal: interruptSignal(),
    allowSmallCorpus: values['allow-small-corpus'] === true,
    allowStale: values['allow-stale'] === true,
  });
  return printTrained(r!);
}

function exitCodeOf(e: unknown): number {
  if (e instanceof InterruptedError) {
    log.error(`ceg: ${e.message}`);
    return e.exitCode;
  }
  if (USER_ERRORS.some((C) => e instanceof C) || e instanceof ClaimLostError) {
    log.error(`ceg: ${(e as Error).message}`);
    return e instanceof ClaimLostError ? 1 : 2;
  }
  const io = describeIoError(e);
  if (io) {
    log.error(`ceg: ${io.message}`);
    return io.exitCode;
  }
  log.error(`ceg: ${(e as Error)?.stack ?? e}`);
  return 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  setLogLevel('info'); // a trainer's notices are part of its output, also under node --test
  childMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => process.exit(exitCodeOf(e)),
  );
}
