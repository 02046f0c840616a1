/**
 * The logger (src/log.ts): levels filter, the default is quiet under node:test and in a tslab
 * kernel, and a sweep's default progress stream follows the level.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultLogLevel, log, logLevel, logs, setLogLevel, setLogSink } from '../src/log.js';
import { progressStream } from '../src/train/sweep.js';

test('default level: warn under node:test or in a tslab kernel, info in a program', () => {
  assert.equal(defaultLogLevel({ NODE_TEST_CONTEXT: 'child-v8' }, '/x/src/cli/main.ts'), 'warn');
  assert.equal(defaultLogLevel({}, '/usr/lib/node_modules/tslab/bin/tslab'), 'warn');
  assert.equal(defaultLogLevel({}, '/x/src/cli/main.ts'), 'info');
  assert.equal(defaultLogLevel({}, undefined), 'info');
  // this very process runs under node --test
  assert.equal(logLevel(), 'warn');
});

test('levels: a message is written when its level is at or above the logger level', () => {
  const lines: string[] = [];
  const old = setLogSink((l) => lines.push(l));
  const before = logLevel();
  try {
    for (const level of ['silent', 'error', 'warn', 'info', 'debug'] as const) {
      setLogLevel(level);
      log.error(`${level}:e`);
      log.warn(`${level}:w`);
      log.info(`${level}:i`);
      log.debug(`${level}:d`);
    }
  } finally {
    setLogSink(old);
    setLogLevel(before);
  }
  assert.deepEqual(lines, [
    'error:e',
    'warn:e',
    'warn:w',
    'info:e',
    'info:w',
    'info:i',
    'debug:e',
    'debug:w',
    'debug:i',
    'debug:d',
  ]);
});

test("a sweep's progress: the given stream, else stderr only where info is shown", () => {
  const before = logLevel();
  const mine = { write: () => true };
  try {
    setLogLevel('warn');
    assert.equal(progressStream({}), null);
    assert.equal(progressStream({ stream: mine }), mine);
    assert.equal(progressStream({ stream: null }), null);
    setLogLevel('info');
    assert.equal(progressStream({}), process.stderr);
    assert.equal(logs('info'), true);
    assert.equal(logs('debug'), false);
  } finally {
    setLogLevel(before);
  }
});
