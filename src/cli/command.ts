/** What every `tally` command is: its help, its options (parsed by node:util parseArgs) and its run. */
import { parseArgs } from 'node:util';
import type { Tally } from '../server.ts';

export interface Output {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** The outside world of one run: tests pass their own streams, environment and database. */
export interface CliIo {
  stdout: Output;
  stderr: Output;
  env: Record<string, string | undefined>;
  /**
   * Called by a command that can stop at a safe point: from then on an interrupt (Ctrl-C,
   * SIGTERM) aborts the signal instead of ending the process. Other commands end as usual.
   */
  interruptible?: () => AbortSignal;
  /** Opens Tally on the configured database; default per `env` (DATABASE_URL or TALLY_DATA_DIR). */
  openTally?: () => Promise<OpenedTally>;
}

export interface OpenedTally {
  tally: Tally;
  close(): Promise<void>;
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** The value's name in help, e.g. ORG for `--org ORG`. */
  value?: string;
  description: string;
}

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export interface Command {
  /** One or two words: `import`, `keys create`. */
  name: string;
  summary: string;
  /** The arguments after the name, e.g. `FILE [--org ORG]`. */
  usage: string;
  /** Longer explanation printed under the usage line. */
  details?: string;
  options: Record<string, OptionSpec>;
  /** How many positional arguments it takes. */
  positionals: { min: number; max: number };
  run(args: Parsed, io: CliIo): Promise<number>;
}

/** Wrong arguments: the message and a pointer to --help, exit code 2. */
export class UsageError extends Error {}

/** A failure the user can act on (a bad row, a missing org): the message alone, exit code 1. */
export class CliError extends Error {}

export function helpText(command: Command): string {
  const lines = [`Usage: tally ${command.name} ${command.usage}`.trimEnd(), '', command.summary];
  if (command.details) lines.push('', command.details);
  const help: OptionSpec = { type: 'boolean', short: 'h', description: 'Show this help' };
  const options = Object.entries({ ...command.options, help });
  const labels = options.map(([name, spec]) => {
    const short = spec.short ? `-${spec.short}, ` : '    ';
    return `${short}--${name}${spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : ''}`;
  });
  const width = Math.max(...labels.map((l) => l.length));
  lines.push('', 'Options:');
  options.forEach(([, spec], i) => {
    lines.push(`  ${labels[i]!.padEnd(width)}  ${spec.description}`);
  });
  return `${lines.join('\n')}\n`;
}

/** Parses a command's arguments; `--help` is answered by the caller. */
export function parseCommandArgs(command: Command, argv: string[]): Parsed & { help: boolean } {
  const options = Object.fromEntries(
    Object.entries(command.options).map(([name, spec]) => [
      name,
      { type: spec.type, ...(spec.short ? { short: spec.short } : {}) },
    ]),
  );
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) return { values, positionals: parsed.positionals, help: true };
  const count = parsed.positionals.length;
  if (count < command.positionals.min) throw new UsageError(`Missing argument: ${command.usage}`);
  if (count > command.positionals.max) {
    throw new UsageError(`Unexpected argument "${parsed.positionals[command.positionals.max]}"`);
  }
  return { values, positionals: parsed.positionals, help: false };
}

/** A required string option, or a usage error naming it. */
export function requiredOption(args: Parsed, name: string): string {
  const value = args.values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

export const stringOption = (args: Parsed, name: string): string | undefined => {
  const value = args.values[name];
  return typeof value === 'string' ? value : undefined;
};
