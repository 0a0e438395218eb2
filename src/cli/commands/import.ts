import { statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { CliError, type Command, type Parsed, stringOption, UsageError } from '../command.ts';
import { clearCheckpoint, readCheckpoint, rowsCounted } from '../import/checkpoint.ts';
import { CSV_COLUMNS, type ImportFormat } from '../import/columns.ts';
import { Progress, rowsPerSecond } from '../import/progress.ts';
import { operatorCtx, withTally } from '../runtime.ts';

/** The exit code of a command stopped by a signal (128 + SIGINT). */
const INTERRUPTED = 130;
/** Bad rows printed one by one; past this only their count is. */
const MAX_PRINTED_ERRORS = 50;

function wrap(text: string, width: number): string[] {
  const lines = [''];
  for (const word of text.split(' ')) {
    if (lines.at(-1)!.length + word.length > width) lines.push('');
    lines[lines.length - 1] += `${lines.at(-1) ? ' ' : ''}${word}`;
  }
  return lines;
}

function formatOf(args: Parsed, path: string): ImportFormat {
  const given = stringOption(args, 'format');
  if (given === 'csv' || given === 'jsonl') return given;
  if (given !== undefined) throw new UsageError('--format must be csv or jsonl');
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  throw new UsageError(
    `Cannot tell the format of "${path}" from its extension: say --format csv or --format jsonl`,
  );
}

export const importCommand: Command = {
  name: 'import',
  summary: 'Import usage events from a CSV or JSON Lines file, idempotently and resumably.',
  usage: 'FILE [--org ORG] [--format FORMAT] [--state FILE] [--restart]',
  details: [
    'CSV: a header row naming the columns, any of',
    ...wrap(CSV_COLUMNS.join(', '), 96).map((line) => `  ${line}`),
    'JSON Lines: one event per line, as POST /v1/events takes it (usage as an object).',
    '',
    'Each row is priced and counted like an API event (history older than 35 days included).',
    'Event ids come from the id column; rows without one get an id derived from the file name (not',
    'its folder) and the line number, so importing the same file again adds nothing (rows come back',
    'duplicate), and rows of another file of the same name are refused as conflicts.',
    'Rows go in batches of 1 000; after each, the position is saved in the state file, and an',
    'interrupted import started again resumes after the last saved batch. Ctrl-C stops after the',
    'batch being sent (exit code 130).',
    'Bad rows are reported with their line number and skipped; the exit code is then 1.',
  ].join('\n'),
  options: {
    org: { type: 'string', value: 'ORG', description: 'The organization of rows without an org_id' },
    format: { type: 'string', value: 'FORMAT', description: 'csv or jsonl (default: from the extension)' },
    state: {
      type: 'string',
      value: 'FILE',
      description: 'Where the resume position is kept (default FILE.tally-import)',
    },
    restart: { type: 'boolean', description: 'Ignore a saved position and read the file from the start' },
  },
  positionals: { min: 1, max: 1 },
  async run(args, io) {
    const path = args.positionals[0]!;
    const format = formatOf(args, path);
    let size: number;
    try {
      size = statSync(path).size;
    } catch (error) {
      throw new CliError(`Cannot read ${path}: ${(error as Error).message}`);
    }
    const statePath = stringOption(args, 'state') ?? `${path}.tally-import`;
    const resumed = args.values.restart ? null : readCheckpoint(statePath, path, size);
    const name = basename(path);
    const progress = new Progress(io.stderr, size);
    let printed = 0;
    const report = (line: number, message: string) => {
      if (printed++ < MAX_PRINTED_ERRORS) progress.message(`${name} line ${line}: ${message}`);
    };
    if (resumed) io.stderr.write(`Resuming ${name} after line ${resumed.line} (saved in ${statePath}).\n`);
    const startedWith = resumed ? rowsCounted(resumed.counts) : 0;

    const started = performance.now();
    const interrupt = io.interruptible?.();
    const { importFile } = await import('../import/importFile.ts');
    const { counts, interruptedAt } = await withTally(io, (opened) =>
      importFile({
        ctx: operatorCtx(opened, 'cli-import'),
        path,
        name,
        size,
        format,
        rows: { orgId: stringOption(args, 'org'), fileKey: name },
        statePath,
        resumed,
        progress,
        report,
        ...(interrupt ? { interrupt } : {}),
      }),
    );
    if (interruptedAt !== null) {
      io.stderr.write(
        `Interrupted: rows up to line ${interruptedAt} are imported and saved in ${statePath}; run the same command again to resume.\n`,
      );
      return INTERRUPTED;
    }
    clearCheckpoint(statePath);

    const rows = rowsCounted(counts);
    const seconds = (performance.now() - started) / 1000;
    if (printed > MAX_PRINTED_ERRORS)
      io.stderr.write(`... and ${printed - MAX_PRINTED_ERRORS} more bad rows.\n`);
    io.stdout.write(
      `Imported ${name}: ${rows} rows, ${counts.accepted} accepted, ${counts.duplicate} duplicate (already counted), ` +
        `${counts.rejected} rejected, ${counts.invalid} invalid in ${seconds.toFixed(1)} s ` +
        `(${rowsPerSecond(rows - startedWith, seconds * 1000)} rows/s).\n`,
    );
    return counts.rejected + counts.invalid > 0 ? 1 : 0;
  },
};
