import { test } from 'node:test';
import assert from 'node:assert/strict';
import { innovationIds } from '../src/innovations.js';
import {
  UsageError,
  backendFlag,
  defineCli,
  editDistance,
  helpText,
  innovationFlag,
  innovationsFlag,
  kebab,
  parseCommand,
  reportUsageError,
  scaleFlag,
  seedsFlag,
  usage,
} from '../src/cli/args.js';

const spec = defineCli({
  train: {
    summary: 'train one run',
    flags: {
      innovation: innovationFlag({ default: 'baseline' }),
      scale: scaleFlag({ required: true }),
      backend: backendFlag({ default: 'wasm' }),
      seed: { type: 'int', default: 1, min: 0 },
      steps: { type: 'int', min: 1 },
      lr: { type: 'float', min: 0 },
      evalInterval: { type: 'int', default: 20 },
      resume: { type: 'bool', short: 'r', help: 'continue an interrupted run' },
      out: { type: 'string' },
    },
  },
  sweep: {
    summary: 'train many runs',
    flags: {
      innovations: innovationsFlag({ default: ['baseline'] }),
      seeds: seedsFlag(),
      weights: { type: 'list', of: 'float' },
    },
  },
  show: { summary: 'show runs', flags: {}, positionals: ['id'], minPositionals: 1 },
});

/** Run parseCommand and return the UsageError it throws (failing if it does not). */
function usageError(argv: string[]): UsageError {
  try {
    parseCommand(argv, spec);
  } catch (e) {
    assert.ok(e instanceof UsageError, `expected UsageError, got ${e}`);
    assert.equal(e.exitCode, 2);
    return e;
  }
  assert.fail(`no error for ${argv.join(' ')}`);
}

test('flags of every type parse, with defaults filled in', () => {
  const p = parseCommand(
    ['train', '--scale', 'micro', '--seed=3', '--lr', '3e-4', '--eval-interval', '10', '-r', '--out', 'x.json'],
    spec,
  );
  assert.equal(p.command, 'train');
  assert.equal(p.help, false);
  if (p.command !== 'train') return;
  const f: { scale: string; seed: number; lr: number | undefined; steps: number | undefined; resume: boolean } =
    p.flags; // typed
  assert.deepEqual(p.flags, {
    scale: 'micro',
    seed: 3,
    lr: 3e-4,
    evalInterval: 10,
    resume: true,
    out: 'x.json',
    innovation: 'baseline',
    backend: 'wasm',
  });
  assert.equal(f.steps, undefined);
  assert.deepEqual(p.positionals, []);
  const train = (argv: string[]) => {
    const r = parseCommand(['train', ...argv], spec);
    assert.ok(r.command === 'train');
    return r.flags;
  };
  const q = train(['--scale=smoke', '--no-resume', '--lr', '0.5e-2']);
  assert.equal(q.resume, false);
  assert.equal(q.lr, 0.005);
  assert.equal(q.steps, undefined);
  assert.equal(train(['--scale', 'smoke', '--resume=false']).resume, false);
  assert.equal(train(['--scale', 'smoke', '--evalInterval', '7']).evalInterval, 7, 'the camelCase key is accepted too');
  // a negative number after a flag is its value, not a flag
  assert.equal(
    usageError(['train', '--scale', 'smoke', '--lr', '-1e-3']).message,
    '--lr: -0.001 is below the minimum 0',
  );
});

test('list flags: comma-separated and repeated, typed, validated per item', () => {
  const p = parseCommand(
    [
      'sweep',
      '--innovations',
      'rope,layernorm',
      '--innovations',
      'mqa',
      '--seeds',
      '1,2',
      '--seeds=3',
      '--weights',
      '0.5,-1',
    ],
    spec,
  );
  assert.deepEqual(p.flags, { innovations: ['rope', 'layernorm', 'mqa'], seeds: [1, 2, 3], weights: [0.5, -1] });
  assert.deepEqual(parseCommand(['sweep'], spec).flags, { innovations: ['baseline'], seeds: [], weights: [] });
  assert.equal(
    usageError(['sweep', '--innovations', 'rope,ropee']).message,
    `unknown innovation "ropee"; valid: ${innovationIds().join(', ')}; did you mean "rope"?`,
  );
  assert.match(usageError(['sweep', '--seeds', '1,x']).message, /--seeds: "x" is not an integer/);
  assert.match(usageError(['sweep', '--seeds', '1,-2']).message, /--seeds: -2 is below the minimum 0/);
  assert.match(usageError(['sweep', '--seeds', ',']).message, /--seeds needs at least one value/);
});

test('bad values name the value and the valid choices', () => {
  const e = usageError(['train', '--scale', 'micro', '--innovation', 'ropee']);
  // the valid ids come from the registry (no list here: a new innovation must not need a test edit)
  assert.equal(e.message, `unknown innovation "ropee"; valid: ${innovationIds().join(', ')}; did you mean "rope"?`);
  assert.match(e.usage ?? '', /usage: ceg train/);
  assert.equal(
    usageError(['train', '--scale', 'huge']).message,
    'unknown scale "huge"; valid: smoke, micro, compact, full',
  );
  assert.equal(
    usageError(['train', '--scale', 'micro', '--backend', 'cuda']).message,
    'unknown backend "cuda"; valid: wasm, webgpu, tensorflow, cpu',
  );
  assert.equal(usageError(['train', '--scale', 'micro', '--seed', '1.5']).message, '--seed: "1.5" is not an integer');
  assert.equal(usageError(['train', '--scale', 'micro', '--steps', '0']).message, '--steps: 0 is below the minimum 1');
  assert.equal(usageError(['train', '--scale', 'micro', '--lr', 'fast']).message, '--lr: "fast" is not a number');
  assert.equal(
    usageError(['train', '--scale', 'micro', '--resume=maybe']).message,
    '--resume is a switch: got "maybe"; valid: --resume, --no-resume, --resume=true, --resume=false',
  );
});

test('unknown flags, commands, missing values and stray arguments are errors', () => {
  assert.equal(
    usageError(['train', '--scale', 'micro', '--sede', '2']).message,
    'unknown flag "--sede" for "train" (did you mean "--seed"?); valid: --innovation, --scale, --backend, --seed, --steps, --lr, --eval-interval, --resume, --out',
  );
  assert.match(usageError(['train', '-x']).message, /^unknown flag "-x" for "train"/);
  assert.match(usageError(['train', '--no-scale', 'micro']).message, /^unknown flag "--no-scale"/);
  assert.match(usageError(['train', '--toString', 'x']).message, /^unknown flag "--toString"/);
  assert.equal(
    usageError(['trian']).message,
    'unknown command "trian" (did you mean "train"?); valid: train, sweep, show',
  );
  assert.equal(usageError([]).message, 'missing command; valid: train, sweep, show');
  assert.match(usageError(['--scale', 'micro']).message, /expected a command before flags, got "--scale"/);
  assert.equal(usageError(['train', '--scale']).message, '--scale needs a value; valid: smoke, micro, compact, full');
  assert.equal(usageError(['train', '--seed', '--scale', 'micro']).message, '--seed needs a value (an integer)');
  assert.equal(usageError(['train']).message, 'missing required flag --scale; valid: smoke, micro, compact, full');
  assert.match(
    usageError(['train', '--scale', 'micro', 'extra']).message,
    /^unexpected argument "extra" for "train"; flags: --innovation/,
  );
  assert.match(usageError(['show']).message, /"show" needs id/);
  assert.match(usageError(['show', 'a', 'b']).message, /unexpected argument "b" for "show" \(takes id\)/);
  assert.deepEqual(parseCommand(['show', 'abc'], spec).positionals, ['abc']);
  assert.deepEqual(parseCommand(['show', '--', '--weird'], spec).positionals, ['--weird']);
});

test('help: --help skips required-flag checks; help texts list commands and flags', () => {
  const h = parseCommand(['train', '--help'], spec);
  assert.equal(h.help, true);
  assert.equal(h.command, 'train');
  const text = helpText(spec, h);
  assert.match(text, /^usage: ceg train \[flags\]\n\ntrain one run\n\nflags:\n/);
  assert.match(text, /  --scale <smoke\|micro\|compact\|full>  named scale \(required\)/);
  assert.match(text, /  --resume, -r  continue an interrupted run/);
  assert.match(text, /  --seed <int> \(default 1\)/);
  const top = parseCommand(['help', 'sweep'], spec);
  assert.equal(top.command, 'help');
  assert.match(helpText(spec, top), /usage: ceg sweep \[flags\][\s\S]*--innovations <baseline\|layernorm/);
  assert.equal(helpText(spec, parseCommand(['--help'], spec)), usage(spec));
  assert.match(usage(spec), /commands:\n  train  train one run\n  sweep  train many runs\n  show   show runs\n/);
  assert.match(usage(spec, 'show'), /^usage: ceg show <id> \[flags\]/);
});

test('reportUsageError prints message and usage and returns 2; other errors pass through', () => {
  let out = '';
  const code = reportUsageError(usageError(['train', '--scale', 'x']), { write: (s: string) => (out += s) });
  assert.equal(code, 2);
  assert.match(out, /^ceg: unknown scale "x"; valid: smoke, micro, compact, full\n\nusage: ceg train/);
  assert.throws(() => reportUsageError(new Error('boom')), /boom/);
});

test('helpers: kebab case and edit distance', () => {
  assert.equal(kebab('evalInterval'), 'eval-interval');
  assert.equal(kebab('seed'), 'seed');
  assert.equal(editDistance('ropee', 'rope'), 1);
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('sede', 'seed'), 1, 'a transposition is one edit');
});

// ------------------------------------------------------------------ progress (src/cli/progress.ts)

import { createProgress, formatCount, formatDuration } from '../src/progress.js';

function fakeStream(isTTY = false, columns?: number) {
  const chunks: string[] = [];
  return { chunks, isTTY, columns, write: (s: string) => chunks.push(s), text: () => chunks.join('') };
}

test('progress, not a TTY: a line every 10%, at every evaluation and at the end, with ETA from elapsed time', () => {
  const s = fakeStream(false);
  let t = 0;
  const p = createProgress({ label: 'rope', total: 400, stream: s, now: () => t });
  for (let step = 1; step <= 400; step++) {
    t += 100; // 100 ms per step: 10 steps/s
    p.update(step, { loss: 3 - step / 1000, tokPerSec: 1234 });
    if (step === 50) p.update(step, { valLoss: 2.5 });
  }
  p.done('best val 2.500');
  p.update(400, { loss: 0 }); // ignored after done
  p.done(); // ignored
  const lines = s.text().split('\n').filter(Boolean);
  assert.equal(lines.length, 12, lines.join('\n')); // 10 deciles + 1 eval + done
  // step 40: 4 s elapsed, 360 steps left at 10 steps/s = 36 s
  assert.equal(lines[0], 'rope  10% step 40/400 loss 2.960 1.2k tok/s elapsed 4s ETA 36s');
  assert.equal(lines[1], 'rope  12% step 50/400 loss 2.950 val 2.500 1.2k tok/s elapsed 5s ETA 35s');
  assert.equal(lines[2], 'rope  20% step 80/400 loss 2.920 val 2.500 1.2k tok/s elapsed 8s ETA 32s');
  assert.equal(lines[7], 'rope  70% step 280/400 loss 2.720 val 2.500 1.2k tok/s elapsed 28s ETA 12s');
  assert.equal(lines[10], 'rope 100% step 400/400 loss 2.600 val 2.500 1.2k tok/s elapsed 40s');
  assert.equal(lines[11], 'rope done: step 400/400 in 40s; best val 2.500');
  assert.ok(!s.text().includes('\r'), 'no carriage returns in logs');
});

test('progress after a resume: the rate counts only the steps done since start; log() lines pass through', () => {
  const s = fakeStream(false);
  let t = 0;
  const p = createProgress({ label: 'mqa', total: 1000, start: 600, stream: s, now: () => t, everyFraction: 0.25 });
  t = 30_000;
  p.update(700, { lr: 0.0003, note: 'x' }); // 100 steps in 30 s; 300 left -> 90 s; 70% is not past the 75% mark
  p.log('checkpoint saved');
  t = 45_000;
  p.update(750); // passes 75%: 150 steps in 45 s, 250 left -> 75 s
  assert.deepEqual(s.text().split('\n').filter(Boolean), [
    'checkpoint saved',
    'mqa  75% step 750/1000 lr 3.00e-4 note x elapsed 45s ETA 1m15s',
  ]);
});

test('progress on a TTY: one redrawn bar, throttled, log() keeps it, done() ends the line', () => {
  const s = fakeStream(true, 200);
  let t = 0;
  const p = createProgress({ label: 'base', total: 400, stream: s, now: () => t, barWidth: 10 });
  t = 1000;
  p.update(180, { loss: 2.1344, tokPerSec: 1200 });
  assert.equal(s.chunks.length, 1);
  // 180 steps in 1 s; 220 left -> 1.2 s -> "1s"
  assert.equal(s.chunks[0], '\rbase [#####.....] 45% step 180/400 loss 2.134 1.2k tok/s ETA 1s\x1b[K');
  t += 10;
  p.update(181); // within 100 ms: no redraw
  assert.equal(s.chunks.length, 1);
  p.log('eval at 181');
  assert.equal(s.chunks[1], '\r\x1b[Keval at 181\n');
  assert.match(s.chunks[2], /^\rbase \[#####\.\.\.\.\.\] 45% step 181\/400/);
  t += 200;
  p.update(400);
  p.done();
  assert.match(
    s.text(),
    /\rbase \[##########\] 100% step 400\/400 loss 2\.134 1\.2k tok\/s\x1b\[K\n?\rbase \[##########\] 100%.*\x1b\[K\nbase done: step 400\/400 in 1s\n$/,
  );
  // narrow terminals: the line is cut to fit
  const narrow = fakeStream(true, 30);
  createProgress({ label: 'x', total: 10, stream: narrow, now: () => 0 }).update(5, { loss: 1 });
  const nline = narrow.chunks[0].replace('\r', '').replace('\x1b[K', '');
  assert.ok(nline.length <= 29, nline);
  assert.match(nline, /^x 50% step 5\/10/, 'the bar goes first');
  // a wide terminal: still at most 80 columns, and the ETA stays visible (bar and fields go first)
  const wide = fakeStream(true, 200);
  let tWide = 0;
  const pWide = createProgress({
    label: '[12/24] fa_rope_ln micro-r3 seed 3',
    total: 10000,
    stream: wide,
    now: () => tWide,
  });
  tWide = 1000;
  pWide.update(5000, { loss: 2.123456, valLoss: 2.3456, tokPerSec: 12345.6, lr: 0.000123 });
  const wline = wide.chunks.at(-1)!.replace('\r', '').replace('\x1b[K', '');
  assert.ok(wline.length <= 79, `${wline.length}: ${wline}`);
  assert.match(wline, / ETA 1s$/);
});

test('progress formats: durations and counts', () => {
  assert.equal(formatDuration(0.4), '0s');
  assert.equal(formatDuration(59.6), '1m00s');
  assert.equal(formatDuration(72), '1m12s');
  assert.equal(formatDuration(3725), '1h02m');
  assert.equal(formatCount(1234), '1.2k');
  assert.equal(formatCount(12.34), '12.3');
  assert.equal(formatCount(999), '999');
  assert.equal(formatCount(2.5e6), '2.5M');
  assert.throws(() => createProgress({ label: 'x', total: -1 }), /total must be a finite number >= 0, got -1/);
});
