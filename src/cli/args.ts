// One declaration per command (its options with meaning, default, type and what file each names) serves
// argument parsing, `--help`, typo suggestions and the file checks that run before any backend starts.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

/** What a path argument must be, checked before the command starts anything heavy. */
export type PathCheck =
  | 'file' // an existing file
  | 'dir' // an existing folder
  | 'model-dir' // a Hugging Face model folder: config.json + model.safetensors (or shards + index)
  | 'model' // a model folder, or one .safetensors file (merge inputs, uploads)
  | 'adapter-dir' // a PEFT adapter folder: adapter_config.json + adapter_model.safetensors
  | 'new-path' // an output folder: may exist as a folder, must not be a file; its parent must exist
  | 'new-file'; // an output file: may exist as a file (replaced), must not be a folder; its parent must exist

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** Placeholder in usage lines: DIR, FILE, N. */
  value?: string;
  description: string;
  /** Shown in --help; the command (or what it calls) applies it. */
  default?: string;
  required?: boolean;
  choices?: readonly string[];
  number?: { integer?: boolean; min?: number; max?: number };
  path?: PathCheck;
}

export interface PositionalSpec {
  name: string;
  description: string;
  path?: PathCheck;
  optional?: boolean;
  choices?: readonly string[];
}

export interface CommandSpec {
  /** As typed after `lorafuse`, e.g. "finetune" or "client upload". */
  command: string;
  summary: string;
  positionals?: PositionalSpec[];
  options: Record<string, OptionSpec>;
  /** Extra paragraphs after the options (environment variables, examples). */
  notes?: string;
}

/** A wrong invocation: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type ParsedValues = Record<string, string | boolean | undefined>;

export interface ParsedCommand {
  values: ParsedValues;
  positionals: string[];
  help: boolean;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

/** The closest candidate to a mistyped word, or null when none is close enough to be a typo. */
export function nearest(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = candidate.startsWith(word) && word.length >= 3 ? 0.5 : editDistance(word, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best !== null && bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : null;
}

function usageLine(spec: CommandSpec): string {
  const parts = [`lorafuse ${spec.command}`];
  for (const p of spec.positionals ?? []) parts.push(p.optional ? `[${p.name}]` : p.name);
  for (const [name, option] of Object.entries(spec.options)) {
    if (option.required) parts.push(`--${name}${option.value ? ` ${option.value}` : ''}`);
  }
  if (Object.values(spec.options).some((o) => !o.required)) parts.push('[options]');
  return `usage: ${parts.join(' ')}`;
}

/** The --help text: usage, summary, then every positional and option with its meaning and default. */
export function formatHelp(spec: CommandSpec): string {
  const rows: Array<[string, string]> = [];
  for (const p of spec.positionals ?? []) rows.push([p.name, p.description]);
  for (const [name, option] of Object.entries(spec.options)) {
    const flag = `${option.short ? `-${option.short}, ` : '    '}--${name}${option.value ? ` ${option.value}` : ''}`;
    let text = option.description;
    if (option.choices) text += ` (${option.choices.join(' | ')})`;
    if (option.required) text += ' [required]';
    else if (option.default !== undefined) text += ` [default: ${option.default}]`;
    rows.push([flag, text]);
  }
  rows.push(['-h, --help', 'print this help']);
  const width = Math.min(30, Math.max(...rows.map(([flag]) => flag.length)) + 2);
  const lines = rows.map(([flag, text]) =>
    flag.length + 2 > width ? `  ${flag}\n  ${' '.repeat(width)}${text}` : `  ${flag.padEnd(width)}${text}`,
  );
  return `${usageLine(spec)}\n\n${spec.summary}\n\n${lines.join('\n')}\n${spec.notes ? `\n${spec.notes.trimEnd()}\n` : ''}`;
}

function unknownOption(spec: CommandSpec, message: string): UsageError {
  const typed = /Unknown option '(-{1,2}[^'=]+)/.exec(message)?.[1] ?? '';
  const names = [...Object.keys(spec.options), 'help'];
  const guess = typed.startsWith('--') ? nearest(typed.slice(2), names) : null;
  const hint = guess
    ? `; did you mean --${guess}?`
    : Object.keys(spec.options).length === 0
      ? `; lorafuse ${spec.command} takes no options (its settings are environment variables: --help)`
      : '';
  return new UsageError(`unknown option ${typed || '(unreadable)'}${hint}`);
}

function checkNumber(name: string, text: string, rule: NonNullable<OptionSpec['number']>): void {
  const value = Number(text);
  const what = rule.integer ? 'a whole number' : 'a number';
  const range =
    rule.min !== undefined && rule.max !== undefined
      ? ` from ${rule.min} to ${rule.max}`
      : rule.min !== undefined
        ? ` ≥ ${rule.min}`
        : rule.max !== undefined
          ? ` ≤ ${rule.max}`
          : '';
  if (
    text.trim() === '' ||
    !Number.isFinite(value) ||
    (rule.integer && !Number.isInteger(value)) ||
    (rule.min !== undefined && value < rule.min) ||
    (rule.max !== undefined && value > rule.max)
  ) {
    throw new UsageError(`--${name} must be ${what}${range}, got "${text}"`);
  }
}

/**
 * Parses argv against the declaration: unknown options (with the nearest known one suggested), missing
 * required ones, choices, numbers and positional counts are UsageErrors. Files are checked by checkPaths.
 */
export function parseCommand(spec: CommandSpec, argv: string[]): ParsedCommand {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, option] of Object.entries(spec.options)) {
    options[name] = option.short ? { type: option.type, short: option.short } : { type: option.type };
  }
  let parsed: { values: ParsedValues; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw unknownOption(spec, (error as Error).message);
    if (code?.startsWith('ERR_PARSE_ARGS')) {
      throw new UsageError((error as Error).message.replace(/^Option '(-\w, )?/, "option '"));
    }
    throw error;
  }
  const { values, positionals } = parsed;
  if (values.help) return { values, positionals, help: true };

  const declared = spec.positionals ?? [];
  const most = declared.length;
  const least = declared.filter((p) => !p.optional).length;
  if (positionals.length > most) {
    const extra = positionals[most];
    const hint = extra.startsWith('-') ? '' : ' (an option needs -- before its name)';
    throw new UsageError(`unexpected argument "${extra}"${most === 0 ? hint : ''}`);
  }
  if (positionals.length < least) throw new UsageError(`${declared[positionals.length].name} is required`);
  declared.forEach((p, i) => {
    const given = positionals[i];
    if (given !== undefined && p.choices && !p.choices.includes(given)) {
      const guess = nearest(given, p.choices);
      throw new UsageError(
        `${p.name} must be one of ${p.choices.join(', ')}, got "${given}"${guess ? `; did you mean ${guess}?` : ''}`,
      );
    }
  });
  for (const [name, option] of Object.entries(spec.options)) {
    const value = values[name];
    if (value === undefined || value === '') {
      if (option.required) throw new UsageError(`--${name} is required`);
      continue;
    }
    if (typeof value !== 'string') continue;
    if (option.choices && !option.choices.includes(value)) {
      const guess = nearest(value, option.choices);
      throw new UsageError(
        `--${name} must be one of ${option.choices.join(', ')}, got "${value}"${guess ? `; did you mean ${guess}?` : ''}`,
      );
    }
    if (option.number) checkNumber(name, value, option.number);
  }
  return { values, positionals, help: false };
}

function isFile(target: string): boolean {
  return existsSync(target) && statSync(target).isFile();
}

/** Null when `target` is what `check` asks for, else a plain sentence saying what is wrong. */
export function pathProblem(target: string, check: PathCheck): string | null {
  const shown = path.resolve(target);
  if (check === 'new-path' || check === 'new-file') {
    if (check === 'new-path' && isFile(target))
      return `${shown} is a file; expected a folder (new or existing)`;
    if (check === 'new-file' && existsSync(target) && !isFile(target))
      return `${shown} is a folder; expected a file`;
    const parent = path.dirname(shown);
    return existsSync(parent)
      ? null
      : `the folder ${parent} (where ${path.basename(shown)} would go) does not exist`;
  }
  if (!existsSync(target)) return `${shown} does not exist`;
  const folder = statSync(target).isDirectory();
  if (check === 'file') return folder ? `${shown} is a folder; expected a file` : null;
  if (check === 'model' && !folder)
    return target.endsWith('.safetensors') ? null : `${shown} is not a .safetensors file or a model folder`;
  if (!folder) return `${shown} is a file; expected a folder`;
  if (check === 'dir') return null;
  const has = (name: string) => isFile(path.join(target, name));
  if (check === 'adapter-dir') {
    if (!has('adapter_config.json')) return `${shown} has no adapter_config.json: not a PEFT adapter folder`;
    if (!has('adapter_model.safetensors'))
      return `${shown} has no adapter_model.safetensors: not a PEFT adapter folder`;
    return null;
  }
  const weights = has('model.safetensors') || has('model.safetensors.index.json');
  if (check === 'model-dir' && !has('config.json')) {
    return `${shown} has no config.json: a model that is run needs a Hugging Face model folder (config.json + model.safetensors)`;
  }
  if (!weights) return `${shown} has no model.safetensors (nor model.safetensors.index.json)`;
  return null;
}

/** Checks every path option and positional that is given; throws one UsageError listing each problem. */
export function checkPaths(spec: CommandSpec, parsed: ParsedCommand): void {
  const problems: string[] = [];
  for (const [name, option] of Object.entries(spec.options)) {
    const value = parsed.values[name];
    if (option.path && typeof value === 'string') {
      const problem = pathProblem(value, option.path);
      if (problem) problems.push(`--${name}: ${problem}`);
    }
  }
  (spec.positionals ?? []).forEach((p, i) => {
    const value = parsed.positionals[i];
    if (p.path && value !== undefined) {
      const problem = pathProblem(value, p.path);
      if (problem) problems.push(`${p.name}: ${problem}`);
    }
  });
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
}

/** Where a command prints (tests capture it). */
export interface CommandOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

export const processOutput: CommandOutput = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/**
 * Parses and checks argv; prints help (returns 0) or the usage error (returns 2); else hands the parsed
 * arguments back. Commands call this before they import or start anything heavy.
 */
export function prepareCommand(
  spec: CommandSpec,
  argv: string[],
  io: CommandOutput = processOutput,
): ParsedCommand | number {
  try {
    const parsed = parseCommand(spec, argv);
    if (parsed.help) {
      io.stdout(formatHelp(spec));
      return 0;
    }
    checkPaths(spec, parsed);
    return parsed;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    const lines = error.message.split('\n').map((line) => `lorafuse ${spec.command}: ${line}\n`);
    io.stderr(`${lines.join('')}${usageLine(spec)}\n(lorafuse ${spec.command} --help for every option)\n`);
    return 2;
  }
}
