/**
 * The one argument parser of the CLI and the scripts (bench/, scripts/): `<command> [--flag value]
 * [--flag=value] [--bool] [--no-bool] [-s value] [--] [positionals]`. Node's util.parseArgs
 * tokenises; the declarative flag tables below (defineCli / CommandSpec) give each flag its type,
 * choices, default and help, so every command and script gets typed values, `--help` and the
 * same error messages. Flags are declared per command with a type; anything else is a UsageError (exit code 2)
 * whose message names the bad value and the valid choices. Flag keys are camelCase in code
 * and kebab-case on the command line (`evalInterval` <-> `--eval-interval`).
 */
import { parseArgs } from 'node:util';
import { innovationIds } from '../innovations.js';
import { scaleNames } from '../scales.js';
import { BACKENDS } from '../engine/index.js';

export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(
    message: string,
    /** the usage text of the command concerned, for printing after the message */
    readonly usage?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

type Choices = readonly string[] | (() => readonly string[]);

interface FlagBase {
  help?: string;
  /** one-letter alias, e.g. 's' for -s */
  short?: string;
}
export interface StringFlag extends FlagBase {
  type: 'string';
  default?: string;
  required?: boolean;
}
export interface IntFlag extends FlagBase {
  type: 'int';
  default?: number;
  required?: boolean;
  min?: number;
  max?: number;
}
export interface FloatFlag extends FlagBase {
  type: 'float';
  default?: number;
  required?: boolean;
  min?: number;
  max?: number;
}
export interface BoolFlag extends FlagBase {
  type: 'bool';
  default?: boolean;
}
/** one of a set of strings; `noun` names the set in errors ("unknown innovation ...") */
export interface ChoiceFlag extends FlagBase {
  type: 'choice';
  choices: Choices;
  noun?: string;
  default?: string;
  required?: boolean;
}
/**
 * comma-separated and/or repeated values (`--seeds 1,2 --seeds 3`), each parsed as `of`
 * (default 'string'); with `choices` every item must be one of them. Default [].
 */
export interface ListFlag extends FlagBase {
  type: 'list';
  of?: 'string' | 'int' | 'float';
  choices?: Choices;
  noun?: string;
  default?: readonly (string | number)[];
  required?: boolean;
  min?: number;
  max?: number;
}
export type FlagSpec = StringFlag | IntFlag | FloatFlag | BoolFlag | ChoiceFlag | ListFlag;

export interface CommandSpec {
  summary?: string;
  flags: Record<string, FlagSpec>;
  /** names of positional arguments (all optional unless `minPositionals`); none allowed when absent */
  positionals?: readonly string[];
  minPositionals?: number;
  /** the last positional may repeat (`ceg import a.log b.csv ...`) */
  variadic?: boolean;
}
export type CliSpec = Record<string, CommandSpec>;

type Present<F> = F extends { default: unknown } ? true : F extends { required: true } ? true : false;
type Base<F> = F extends BoolFlag
  ? boolean
  : F extends IntFlag | FloatFlag
    ? number
    : F extends ListFlag
      ? F['of'] extends 'int' | 'float'
        ? number[]
        : string[]
      : string;
export type FlagValue<F> = F extends BoolFlag | ListFlag
  ? Base<F>
  : Present<F> extends true
    ? Base<F>
    : Base<F> | undefined;
export type FlagValues<Fs extends Record<string, FlagSpec>> = { [K in keyof Fs]: FlagValue<Fs[K]> };

export interface Parsed<C extends string = string, Fs extends Record<string, FlagSpec> = Record<string, FlagSpec>> {
  command: C;
  flags: FlagValues<Fs>;
  positionals: string[];
  /** --help / -h was given: print usage(spec, command) and exit 0 (other checks were skipped) */
  help: boolean;
}
/** `ceg help [command]`, `ceg --help`: print helpText(spec, parsed) and exit 0. */
export interface HelpParsed {
  command: 'help';
  flags: Record<string, never>;
  /** the command asked about, if any */
  positionals: string[];
  help: true;
}
export type ParsedCommand<S extends CliSpec> =
  | { [C in keyof S & string]: Parsed<C, S[C]['flags']> }[keyof S & string]
  | HelpParsed;

/** Identity with better inference: `const spec = defineCli({...})`. */
export function defineCli<const S extends CliSpec>(spec: S): S {
  return spec;
}

/** Marks a dash-led argument that is not a declared flag while Node's parseArgs tokenises (see parseFlags). */
const MARK = '\u0000';

/** `evalInterval` -> `eval-interval`; a capital that starts a key stays (`B` -> `B`, `Hkv` -> `Hkv`: bench shape flags) */
export function kebab(key: string): string {
  return key.replace(/(?<=[a-z0-9])[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/** Parse `argv` (without node and script: process.argv.slice(2)) against the command table. */
export function parseCommand<const S extends CliSpec>(argv: readonly string[], spec: S): ParsedCommand<S> {
  const names = Object.keys(spec);
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    if (command === undefined) throw new UsageError(`missing command; valid: ${names.join(', ')}`, usage(spec));
    const help: HelpParsed = {
      command: 'help',
      flags: {},
      positionals: rest.filter((a) => !a.startsWith('-')),
      help: true,
    };
    return help;
  }
  if (command.startsWith('-'))
    throw new UsageError(`expected a command before flags, got "${command}"; valid: ${names.join(', ')}`, usage(spec));
  const cmd = spec[command];
  if (!cmd)
    throw new UsageError(
      `unknown command "${command}"${suggest(command, names)}; valid: ${names.join(', ')}`,
      usage(spec),
    );
  const r = parseFlags(rest, cmd, command);
  return { command, ...r } as unknown as ParsedCommand<S>;
}

/** Parse the flags of one command (argv after the command name). */
export function parseFlags<const C extends CommandSpec>(
  argv: readonly string[],
  cmd: C,
  commandName = 'command',
): { flags: FlagValues<C['flags']>; positionals: string[]; help: boolean } {
  const flags = cmd.flags;
  const keyOf = new Map<string, string>(); // a name on the command line (kebab, camelCase or short) -> the flag's key
  const options: Record<string, { type: 'string' | 'boolean'; multiple: true; short?: string }> = {};
  for (const [k, f] of Object.entries(flags)) {
    const type = f.type === 'bool' ? 'boolean' : 'string';
    for (const n of new Set([kebab(k), k])) {
      options[n] = { type, multiple: true };
      keyOf.set(n, k);
    }
    if (f.short) options[kebab(k)].short = f.short;
  }
  if (!keyOf.has('help')) options.help = { type: 'boolean', multiple: true, short: 'h' };
  const shorts = new Set(Object.values(options).flatMap((o) => (o.short ? [`-${o.short}`] : [])));
  const cliNames = Object.keys(flags).map((k) => `--${kebab(k)}`);
  const usageText = () => commandUsage(commandName, cmd);
  const unknownFlag = (shown: string, name: string) =>
    new UsageError(
      `unknown flag "${shown}" for "${commandName}"${suggest(
        name,
        cliNames.map((c) => c.slice(2)),
        '--',
      )}; valid: ${cliNames.join(', ') || '(none)'}`,
      usageText(),
    );
  // Node's parseArgs tokenises (long and short flags, --flag=value, --); the tables above give
  // each flag its type, choices and defaults. A dash-led argument that is not a declared short
  // flag ("-1", "-x") is passed through as a value or positional (marked, then restored), as
  // negative numbers must be; left over as a positional it is an unknown flag (unless a number).
  const terminator = argv.indexOf('--');
  const marked = argv.map((a, i) =>
    (terminator < 0 || i < terminator) && /^-[^-]/.test(a) && !shorts.has(a) ? MARK + a : a,
  );
  const unmark = (v: string) => (v.startsWith(MARK) ? v.slice(MARK.length) : v);
  const { tokens } = parseArgs({ args: marked, options, strict: false, allowPositionals: true, tokens: true });
  const out: Record<string, unknown> = {};
  const lists: Record<string, (string | number)[]> = {};
  const positionals: string[] = [];
  let help = false;
  let afterTerminator = false;
  for (const t of tokens) {
    if (t.kind === 'option-terminator') {
      afterTerminator = true;
      continue;
    }
    if (t.kind === 'positional') {
      const v = unmark(t.value);
      if (!afterTerminator && t.value.startsWith(MARK) && !/^-\d/.test(v)) throw unknownFlag(v, v.slice(1));
      positionals.push(v);
      continue;
    }
    let name = t.name;
    if (name === 'help' && !keyOf.has('help')) {
      help = true;
      continue;
    }
    let key = keyOf.get(name);
    let negated = false;
    if (key === undefined && name.startsWith('no-')) {
      const k = keyOf.get(name.slice(3));
      if (k !== undefined && flags[k].type === 'bool') {
        key = k;
        negated = true;
        name = name.slice(3);
      }
    }
    if (key === undefined) throw unknownFlag(t.rawName.startsWith('--') ? `--${name}` : t.rawName, name);
    const f = flags[key];
    const shown = `--${kebab(key)}`;
    if (f.type === 'bool') {
      const inline = t.inlineValue ? t.value : undefined;
      if (inline !== undefined) {
        if (!['true', 'false', '1', '0'].includes(inline) || negated)
          throw new UsageError(
            `${shown} is a switch: got "${inline}"; valid: ${shown}, --no-${kebab(key)}, ${shown}=true, ${shown}=false`,
            usageText(),
          );
        out[key] = inline === 'true' || inline === '1';
      } else out[key] = !negated;
      continue;
    }
    // a value taken from the next argument must not be a flag
    if (
      t.value === undefined ||
      (!t.inlineValue && ((t.value.startsWith('--') && t.value !== '--') || t.value === '-h'))
    ) {
      throw new UsageError(`${shown} needs a value${describeExpected(f)}`, usageText());
    }
    const value = unmark(t.value);
    if (f.type === 'list') {
      const items = value
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== '');
      if (items.length === 0)
        throw new UsageError(`${shown} needs at least one value${describeExpected(f)}`, usageText());
      const k = key;
      (lists[k] ??= []).push(...items.map((x) => convert(x, f, k, usageText)));
    } else {
      out[key] = convert(value, f, key, usageText);
    }
  }
  for (const [k, v] of Object.entries(lists)) out[k] = v;
  for (const [k, f] of Object.entries(flags)) {
    if (out[k] !== undefined) continue;
    if (f.default !== undefined) out[k] = Array.isArray(f.default) ? [...f.default] : f.default;
    else if (f.type === 'bool') out[k] = false;
    else if (!help && 'required' in f && f.required)
      throw new UsageError(`missing required flag --${kebab(k)}${describeExpected(f)}`, usageText());
    else if (f.type === 'list') out[k] = [];
  }
  if (!help) {
    const allowed = cmd.positionals?.length ?? 0;
    if (positionals.length > allowed && !cmd.variadic)
      throw new UsageError(
        `unexpected argument "${positionals[allowed]}" for "${commandName}"${allowed ? ` (takes ${cmd.positionals!.join(', ')})` : ''}; flags: ${cliNames.join(', ') || '(none)'}`,
        usageText(),
      );
    if (positionals.length < (cmd.minPositionals ?? 0))
      throw new UsageError(
        `"${commandName}" needs ${cmd.positionals!.slice(positionals.length, cmd.minPositionals).join(', ')}`,
        usageText(),
      );
  }
  return { flags: out as FlagValues<C['flags']>, positionals, help };
}

function choicesOf(c: Choices | undefined): readonly string[] | undefined {
  return typeof c === 'function' ? c() : c;
}

function describeExpected(f: FlagSpec): string {
  if (f.type === 'choice') return `; valid: ${choicesOf(f.choices)!.join(', ')}`;
  if (f.type === 'list' && f.choices) return ` (comma-separated); valid: ${choicesOf(f.choices)!.join(', ')}`;
  if (f.type === 'list') return ` (comma-separated ${f.of ?? 'string'}s)`;
  if (f.type === 'int') return ' (an integer)';
  if (f.type === 'float') return ' (a number)';
  return '';
}

function convert(raw: string, f: FlagSpec, key: string, usageText: () => string): string | number {
  const shown = `--${kebab(key)}`;
  const kind = f.type === 'list' ? (f.of ?? 'string') : f.type;
  let v: string | number = raw;
  if (kind === 'int') {
    if (!/^[-+]?\d+$/.test(raw) || !Number.isSafeInteger(Number(raw)))
      throw new UsageError(`${shown}: "${raw}" is not an integer`, usageText());
    v = Number(raw);
  } else if (kind === 'float') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n))
      throw new UsageError(`${shown}: "${raw}" is not a number`, usageText());
    v = n;
  }
  if (typeof v === 'number' && (f.type === 'int' || f.type === 'float' || f.type === 'list')) {
    if (f.min !== undefined && v < f.min)
      throw new UsageError(`${shown}: ${v} is below the minimum ${f.min}`, usageText());
    if (f.max !== undefined && v > f.max)
      throw new UsageError(`${shown}: ${v} is above the maximum ${f.max}`, usageText());
  }
  if (f.type === 'choice' || (f.type === 'list' && f.choices)) {
    const valid = choicesOf(f.choices)!;
    if (!valid.includes(String(v))) {
      const noun = f.noun ?? kebab(key).replace(/-/g, ' ');
      throw new UsageError(
        `unknown ${noun} "${raw}"; valid: ${valid.join(', ')}${suggest(raw, valid, '', true)}`,
        usageText(),
      );
    }
  }
  return v;
}

/** `; did you mean "rope"?` when a valid name is within edit distance 2 (or a prefix match). */
function suggest(bad: string, valid: readonly string[], prefix = '', trailing = false): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const v of valid) {
    const d = v.startsWith(bad) && bad.length >= 2 ? 0.5 : editDistance(bad.toLowerCase(), v.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = v;
    }
  }
  if (best === undefined || bestD > Math.min(2, Math.max(1, Math.floor(bad.length / 3)))) return '';
  return trailing ? `; did you mean "${prefix}${best}"?` : ` (did you mean "${prefix}${best}"?)`;
}

/** Edit distance with adjacent transpositions counted as one edit (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

// ------------------------------------------------------------------ common flags

/** --innovation: one id of src/innovations.ts */
export const innovationFlag = <const E extends Partial<ChoiceFlag> = {}>(extra: E = {} as E): ChoiceFlag & E => ({
  type: 'choice',
  choices: innovationIds,
  noun: 'innovation',
  help: 'innovation id',
  ...extra,
});
/** --innovations: comma-separated ids of src/innovations.ts */
export const innovationsFlag = <const E extends Partial<ListFlag> = {}>(extra: E = {} as E): ListFlag & E => ({
  type: 'list',
  choices: innovationIds,
  noun: 'innovation',
  help: 'comma-separated innovation ids',
  ...extra,
});
/** --scale: one of src/scales.ts */
export const scaleFlag = <const E extends Partial<ChoiceFlag> = {}>(extra: E = {} as E): ChoiceFlag & E => ({
  type: 'choice',
  choices: scaleNames,
  noun: 'scale',
  help: 'named scale',
  ...extra,
});
/** --backend: one of the engine's BACKENDS */
export const backendFlag = <const E extends Partial<ChoiceFlag> = {}>(extra: E = {} as E): ChoiceFlag & E => ({
  type: 'choice',
  choices: BACKENDS,
  noun: 'backend',
  help: 'tensor backend',
  ...extra,
});
/** --seeds 1,2,3 */
export const seedsFlag = <const E extends Partial<ListFlag> = {}>(extra: E = {} as E): ListFlag & E => ({
  type: 'list',
  of: 'int',
  min: 0,
  noun: 'seed',
  help: 'comma-separated seeds',
  ...extra,
});

// ------------------------------------------------------------------ usage text

function flagLine(key: string, f: FlagSpec): string {
  const name = `--${kebab(key)}${f.short ? `, -${f.short}` : ''}`;
  const valueHint =
    f.type === 'bool'
      ? ''
      : f.type === 'choice'
        ? ` <${choicesOf(f.choices)!.join('|')}>`
        : f.type === 'list'
          ? ` <${f.choices ? choicesOf(f.choices)!.join('|') : (f.of ?? 'string')},...>`
          : ` <${f.type}>`;
  const def =
    f.default !== undefined && f.type !== 'bool'
      ? ` (default ${Array.isArray(f.default) ? f.default.join(',') : f.default})`
      : '';
  const req = 'required' in f && f.required ? ' (required)' : '';
  return `  ${name}${valueHint}${f.help ? `  ${f.help}` : ''}${def}${req}`;
}

export function commandUsage(name: string, cmd: CommandSpec): string {
  const pos =
    (cmd.positionals ?? []).map((p, i) => (i < (cmd.minPositionals ?? 0) ? ` <${p}>` : ` [${p}]`)).join('') +
    (cmd.variadic ? '...' : '');
  // a ceg command is one word ("train"); a script passes its own invocation ("npm run figures --")
  const lines = [`usage: ${/\s/.test(name) ? name : `ceg ${name}`}${pos} [flags]`];
  if (cmd.summary) lines.push('', cmd.summary);
  const keys = Object.keys(cmd.flags);
  if (keys.length) lines.push('', 'flags:', ...keys.map((k) => flagLine(k, cmd.flags[k])));
  return lines.join('\n');
}

/** The usage text a help request asks for: the command's, or the whole CLI's. */
export function helpText(spec: CliSpec, parsed: { command: string; positionals: string[] }): string {
  return usage(spec, parsed.command === 'help' && !spec.help ? parsed.positionals[0] : parsed.command);
}

/** Usage of the whole CLI, or of one command. */
export function usage(spec: CliSpec, command?: string): string {
  if (command && spec[command]) return commandUsage(command, spec[command]);
  const w = Math.max(...Object.keys(spec).map((n) => n.length));
  return [
    'usage: ceg <command> [flags]',
    '',
    'commands:',
    ...Object.entries(spec).map(([n, c]) => `  ${n.padEnd(w)}  ${c.summary ?? ''}`.trimEnd()),
    '',
    'ceg <command> --help shows the flags of a command.',
  ].join('\n');
}

/**
 * The argument handling of a script (bench/, scripts/): parse `argv` against `cmd`; `--help`
 * prints the usage under the script's invocation (e.g. "npm run figures --") and exits 0 before
 * anything runs; bad input prints the message and the usage and exits 2.
 */
export function parseScriptArgs<const C extends CommandSpec>(
  invocation: string,
  cmd: C,
  argv: readonly string[] = process.argv.slice(2),
): { flags: FlagValues<C['flags']>; positionals: string[] } {
  let r: ReturnType<typeof parseFlags<C>>;
  try {
    r = parseFlags(argv, cmd, invocation);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${invocation.replace(/ --$/, '')}: ${e.message}\n`);
    if (e.usage) process.stderr.write(`\n${e.usage}\n`);
    process.exit(e.exitCode);
  }
  if (r.help) {
    process.stdout.write(`${commandUsage(invocation, cmd)}\n`);
    process.exit(0);
  }
  return { flags: r.flags, positionals: r.positionals };
}

/**
 * For main(): print a UsageError (message, then usage) and return its exit code 2; other
 * errors are rethrown.
 */
export function reportUsageError(e: unknown, stream: { write(s: string): unknown } = process.stderr): number {
  if (!(e instanceof UsageError)) throw e;
  stream.write(`ceg: ${e.message}\n`);
  if (e.usage) stream.write(`\n${e.usage}\n`);
  return e.exitCode;
}
