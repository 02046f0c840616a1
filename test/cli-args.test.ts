import { test } from 'node:test';
import assert from 'node:assert/strict';
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
    flags: { innovations: innovationsFlag({ default: ['baseline'] }), seeds: seedsFlag(), weights: { type: 'list', of: 'float' } },
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
  const p = parseCommand(['train', '--scale', 'micro', '--seed=3', '--lr', '3e-4', '--eval-interval', '10', '-r', '--out', 'x.json'], spec);
  assert.equal(p.command, 'train');
  assert.equal(p.help, false);
  if (p.command !== 'train') return;
  const f: { scale: string; seed: number; lr: number | undefined; steps: number | undefined; resume: boolean } = p.flags; // typed
  assert.deepEqual(p.flags, {
    scale: 'micro', seed: 3, lr: 3e-4, evalInterval: 10, resume: true, out: 'x.json', innovation: 'baseline', backend: 'wasm',
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
  assert.equal(usageError(['train', '--scale', 'smoke', '--lr', '-1e-3']).message, '--lr: -0.001 is below the minimum 0');
});

test('list flags: comma-separated and repeated, typed, validated per item', () => {
  const p = parseCommand(['sweep', '--innovations', 'rope,layernorm', '--innovations', 'mqa', '--seeds', '1,2', '--seeds=3', '--weights', '0.5,-1'], spec);
  assert.deepEqual(p.flags, { innovations: ['rope', 'layernorm', 'mqa'], seeds: [1, 2, 3], weights: [0.5, -1] });
  assert.deepEqual(parseCommand(['sweep'], spec).flags, { innovations: ['baseline'], seeds: [], weights: [] });
  assert.match(usageError(['sweep', '--innovations', 'rope,ropee']).message, /^unknown innovation "ropee"; valid: baseline, layernorm, rmsnorm, rope, .*; did you mean "rope"\?$/);
  assert.match(usageError(['sweep', '--seeds', '1,x']).message, /--seeds: "x" is not an integer/);
  assert.match(usageError(['sweep', '--seeds', '1,-2']).message, /--seeds: -2 is below the minimum 0/);
  assert.match(usageError(['sweep', '--seeds', ',']).message, /--seeds needs at least one value/);
});

test('bad values name the value and the valid choices', () => {
  const e = usageError(['train', '--scale', 'micro', '--innovation', 'ropee']);
  assert.match(e.message, /^unknown innovation "ropee"; valid: baseline, layernorm, rmsnorm, rope, fused, mqa, gqa, sparse, moe, swiglu, fa_rope_ln; did you mean "rope"\?$/);
  assert.match(e.usage ?? '', /usage: ceg train/);
  assert.equal(usageError(['train', '--scale', 'huge']).message, 'unknown scale "huge"; valid: smoke, micro, compact, full');
  assert.equal(usageError(['train', '--scale', 'micro', '--backend', 'cuda']).message, 'unknown backend "cuda"; valid: wasm, webgpu, tensorflow, cpu');
  assert.equal(usageError(['train', '--scale', 'micro', '--seed', '1.5']).message, '--seed: "1.5" is not an integer');
  assert.equal(usageError(['train', '--scale', 'micro', '--steps', '0']).message, '--steps: 0 is below the minimum 1');
  assert.equal(usageError(['train', '--scale', 'micro', '--lr', 'fast']).message, '--lr: "fast" is not a number');
  assert.equal(usageError(['train', '--scale', 'micro', '--resume=maybe']).message, '--resume is a switch: got "maybe"; valid: --resume, --no-resume, --resume=true, --resume=false');
});

test('unknown flags, commands, missing values and stray arguments are errors', () => {
  assert.equal(
    usageError(['train', '--scale', 'micro', '--sede', '2']).message,
    'unknown flag "--sede" for "train" (did you mean "--seed"?); valid: --innovation, --scale, --backend, --seed, --steps, --lr, --eval-interval, --resume, --out',
  );
  assert.match(usageError(['train', '-x']).message, /^unknown flag "-x" for "train"/);
  assert.match(usageError(['train', '--no-scale', 'micro']).message, /^unknown flag "--no-scale"/);
  assert.match(usageError(['train', '--toString', 'x']).message, /^unknown flag "--toString"/);
  assert.equal(usageError(['trian']).message, 'unknown command "trian" (did you mean "train"?); valid: train, sweep, show');
  assert.equal(usageError([]).message, 'missing command; valid: train, sweep, show');
  assert.match(usageError(['--scale', 'micro']).message, /expected a command before flags, got "--scale"/);
  assert.equal(usageError(['train', '--scale']).message, '--scale needs a value; valid: smoke, micro, compact, full');
  assert.equal(usageError(['train', '--seed', '--scale', 'micro']).message, '--seed needs a value (an integer)');
  assert.equal(usageError(['train']).message, 'missing required flag --scale; valid: smoke, micro, compact, full');
  assert.match(usageError(['train', '--scale', 'micro', 'extra']).message, /^unexpected argument "extra" for "train"; flags: --innovation/);
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
