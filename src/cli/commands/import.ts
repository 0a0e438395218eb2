import { statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import type { UsageEventInput } from '../../domain/usageEvent.ts';
import { ServiceError } from '../../services/errors.ts';
import { ingestEvents } from '../../services/events/ingestEvents.ts';
import { CliError, type Command, type Parsed, stringOption, UsageError } from '../command.ts';
import {
  type Checkpoint,
  clearCheckpoint,
  type ImportCounts,
  readCheckpoint,
  writeCheckpoint,
} from '../import/checkpoint.ts';
import { readLines } from '../import/lines.ts';
import { Progress, rowsPerSecond } from '../import/progress.ts';
import {
  CSV_COLUMNS,
  CsvRecords,
  csvHeader,
  csvRecordToEvent,
  type ImportFormat,
  jsonLineToEvent,
  type RowContext,
  type RowResult,
} from '../import/rows.ts';
import { operatorCtx, withTally } from '../runtime.ts';

/** The API's ceiling for one batch, and the unit an import commits and resumes by. */
const BATCH_SIZE = 1000;
/** The exit code of a command stopped by a signal (128 + SIGINT). */
const INTERRUPTED = 130;
/** Bad rows printed one by one; past this only their count is. */
const MAX_PRINTED_ERRORS = 50;

/** Where a batch ends in the file, and how many invalid rows came before that point. */
type Position = Pick<Checkpoint, 'offset' | 'line'> & { invalid: number };

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
    'Event ids come from the id column; rows without one get an id derived from the file name and',
    'the line number, so importing the same file again adds nothing (rows come back duplicate).',
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
    const resumed = args.values.restart ? null : readCheckpoint(statePath, size);
    const context: RowContext = { orgId: stringOption(args, 'org'), fileKey: basename(path) };
    const name = basename(path);
    const counts: ImportCounts = resumed?.counts ?? { accepted: 0, duplicate: 0, rejected: 0, invalid: 0 };
    const startedWith = counts.accepted + counts.duplicate + counts.rejected + counts.invalid;
    const progress = new Progress(io.stderr, size);
    let printed = 0;
    const report = (line: number, message: string) => {
      if (printed++ < MAX_PRINTED_ERRORS) progress.message(`${name} line ${line}: ${message}`);
    };
    if (resumed) io.stderr.write(`Resuming ${name} after line ${resumed.line} (saved in ${statePath}).\n`);

    const started = performance.now();
    let interruptedAt: number | null = null;
    const interrupt = io.interruptible?.();
    await withTally(io, async (opened) => {
      const ctx = operatorCtx(opened, 'cli-import');
      let columns = resumed?.columns ?? null;
      let batch: { event: UsageEventInput; line: number }[] = [];
      // One batch is sent while the next is read; they commit (and checkpoint) in file order.
      let sending: Promise<void> = Promise.resolve();

      const send = async (rows: typeof batch, position: Position) => {
        let results: Awaited<ReturnType<typeof ingestEvents>>;
        try {
          results = await ingestEvents(
            ctx,
            rows.map((r) => r.event),
            { backfill: true },
          );
        } catch (error) {
          if (!(error instanceof ServiceError)) throw error;
          const index = /^events\[(\d+)\]/.exec(error.param ?? '')?.[1];
          const line = index === undefined ? rows[0]!.line : rows[Number(index)]!.line;
          throw new CliError(`${name} line ${line}: ${error.message}`);
        }
        results.forEach((result, i) => {
          counts[result.status]++;
          if (result.status === 'rejected') report(rows[i]!.line, `rejected: ${result.error?.message}`);
        });
        // Rows read past this batch are not in the checkpoint: a resume reads them again.
        const { invalid, ...at } = position;
        writeCheckpoint(statePath, { ...at, size, columns, counts: { ...counts, invalid } });
      };
      const flush = async (position: Position) => {
        const rows = batch;
        batch = [];
        await sending;
        sending = send(rows, position);
        // Surface a failure now rather than after the whole file is read.
        sending.catch(() => {});
      };

      const csv = new CsvRecords();
      let rowsRead = startedWith;
      for await (const line of readLines(path, resumed ?? undefined)) {
        let result: RowResult;
        let rowLine = line.number;
        if (format === 'csv') {
          const record = csv.push(line.text, line.number);
          if (!record) continue;
          rowLine = record.line;
          if (columns === null) {
            const header = csvHeader(record.fields);
            if ('error' in header) throw new CliError(`${name} line ${record.line}: ${header.error}`);
            columns = header.columns;
            continue;
          }
          if (record.fields.length === 1 && record.fields[0] === '') continue;
          result = csvRecordToEvent(columns, record.fields, rowLine, context);
        } else {
          if (line.text.trim() === '') continue;
          result = jsonLineToEvent(line.text, rowLine, context);
        }
        rowsRead++;
        if ('error' in result) {
          counts.invalid++;
          report(rowLine, result.error);
        } else {
          batch.push({ event: result.event, line: rowLine });
          if (batch.length === BATCH_SIZE) {
            await flush({ offset: line.end, line: line.number, invalid: counts.invalid });
            if (interrupt?.aborted) {
              interruptedAt = line.number;
              break;
            }
          }
        }
        progress.update(rowsRead, line.end);
      }
      if (interruptedAt !== null) {
        await sending;
        progress.done();
        return;
      }
      const open = csv.unterminatedLine;
      if (open !== null) {
        counts.invalid++;
        report(open, 'a quoted field is not closed before the end of the file');
      }
      if (batch.length > 0) await flush({ offset: size, line: 0, invalid: counts.invalid });
      await sending;
      progress.update(rowsRead, size, true);
      progress.done();
    });
    if (interruptedAt !== null) {
      io.stderr.write(
        `Interrupted: rows up to line ${interruptedAt} are imported and saved in ${statePath}; run the same command again to resume.\n`,
      );
      return INTERRUPTED;
    }
    clearCheckpoint(statePath);

    const rows = counts.accepted + counts.duplicate + counts.rejected + counts.invalid;
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
