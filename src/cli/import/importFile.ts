/**
 * Reads an events file row by row and records it through the ingestion verb in batches of 1 000,
 * one batch sent while the next is read. After each committed batch the position is saved, so a
 * stopped import resumes there; rows Tally already counted come back as duplicates anyway.
 */
import type { UsageEventInput } from '../../domain/usageEvent.ts';
import type { Ctx } from '../../services/context.ts';
import { ServiceError } from '../../services/errors.ts';
import { ingestEvents } from '../../services/events/ingestEvents.ts';
import { CliError } from '../command.ts';
import {
  type Checkpoint,
  committedPrefix,
  type ImportCounts,
  rowsCounted,
  writeCheckpoint,
} from './checkpoint.ts';
import type { ImportFormat } from './columns.ts';
import { readLines } from './lines.ts';
import type { Progress } from './progress.ts';
import {
  CsvRecords,
  csvHeader,
  csvRecordToEvent,
  derivedEventId,
  jsonLineToEvent,
  type RowContext,
  type RowResult,
} from './rows.ts';

/** The API's ceiling for one batch, and the unit an import commits and resumes by. */
export const BATCH_SIZE = 1000;

export interface ImportJob {
  ctx: Ctx;
  path: string;
  /** The file's name as messages show it. */
  name: string;
  size: number;
  format: ImportFormat;
  rows: RowContext;
  statePath: string;
  resumed: Checkpoint | null;
  progress: Progress;
  /** Told about each bad row (unreadable, invalid, or rejected by Tally) with its line. */
  report: (line: number, message: string) => void;
  /** Once aborted, the import stops after the batch being sent. */
  interrupt?: AbortSignal;
}

export interface ImportOutcome {
  counts: ImportCounts;
  /** The last line imported when the import was interrupted, else null (it read the whole file). */
  interruptedAt: number | null;
}

/** Where a batch ends in the file, and how many invalid rows came before that point. */
type Position = Pick<Checkpoint, 'offset' | 'line'> & { invalid: number };
type Row = { event: UsageEventInput; line: number };

export async function importFile(job: ImportJob): Promise<ImportOutcome> {
  const counts: ImportCounts = job.resumed?.counts ?? { accepted: 0, duplicate: 0, rejected: 0, invalid: 0 };
  let columns = job.resumed?.columns ?? null;
  let batch: Row[] = [];
  // Batches commit (and are checkpointed) one after the other, in file order.
  let sending: Promise<void> = Promise.resolve();

  const send = async (rows: Row[], position: Position) => {
    let results: Awaited<ReturnType<typeof ingestEvents>>;
    try {
      results = await ingestEvents(
        job.ctx,
        rows.map((r) => r.event),
        { backfill: true },
      );
    } catch (error) {
      if (!(error instanceof ServiceError)) throw error;
      // A fault of the whole batch (an org that does not exist) names the event at fault.
      const index = /^events\[(\d+)\]/.exec(error.param ?? '')?.[1];
      const line = rows[index === undefined ? 0 : Number(index)]!.line;
      throw new CliError(`${job.name} line ${line}: ${error.message}`);
    }
    results.forEach((result, i) => {
      counts[result.status]++;
      if (result.status !== 'rejected') return;
      const { event, line } = rows[i]!;
      // Derived ids name the file by its base name only: another file of that name came first.
      const hint =
        result.error?.code === 'idempotency_conflict' && event.id === derivedEventId(job.rows.fileKey, line)
          ? ` (its id is derived from the file name ${job.rows.fileKey} and the line: a different file of that name was imported before; rename this one or give its rows an id column)`
          : '';
      job.report(line, `rejected: ${result.error?.message}${hint}`);
    });
    // Invalid rows read past this batch are not in the checkpoint: a resume reads them again.
    const { invalid, ...at } = position;
    writeCheckpoint(job.statePath, {
      ...at,
      size: job.size,
      fingerprint: committedPrefix(job.path, at.offset),
      columns,
      counts: { ...counts, invalid },
    });
  };
  const flush = async (position: Position) => {
    const rows = batch;
    batch = [];
    await sending;
    sending = send(rows, position);
    // Awaited at the next flush; a failure surfaces there, not as an unhandled rejection.
    sending.catch(() => {});
  };

  const csv = new CsvRecords();
  let rowsRead = rowsCounted(counts);
  for await (const line of readLines(job.path, job.resumed ?? undefined)) {
    let result: RowResult;
    let rowLine = line.number;
    if (job.format === 'csv') {
      const record = csv.push(line.text, line.number);
      if (!record) continue;
      rowLine = record.line;
      if (columns === null) {
        const header = csvHeader(record.fields);
        if ('error' in header) throw new CliError(`${job.name} line ${record.line}: ${header.error}`);
        columns = header.columns;
        continue;
      }
      if (record.fields.length === 1 && record.fields[0] === '') continue;
      result = csvRecordToEvent(columns, record.fields, rowLine, job.rows);
    } else {
      if (line.text.trim() === '') continue;
      result = jsonLineToEvent(line.text, rowLine, job.rows);
    }
    rowsRead++;
    if ('error' in result) {
      counts.invalid++;
      job.report(rowLine, result.error);
    } else {
      batch.push({ event: result.event, line: rowLine });
      if (batch.length === BATCH_SIZE) {
        await flush({ offset: line.end, line: line.number, invalid: counts.invalid });
        if (job.interrupt?.aborted) {
          await sending;
          job.progress.done();
          return { counts, interruptedAt: line.number };
        }
      }
    }
    job.progress.update(rowsRead, line.end);
  }
  const unclosed = csv.unterminatedLine;
  if (unclosed !== null) {
    counts.invalid++;
    job.report(unclosed, 'a quoted field is not closed before the end of the file');
  }
  if (batch.length > 0) await flush({ offset: job.size, line: 0, invalid: counts.invalid });
  await sending;
  job.progress.update(rowsRead, job.size, true);
  job.progress.done();
  return { counts, interruptedAt: null };
}
