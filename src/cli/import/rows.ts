/**
 * Rows of an import file as usage events: CSV (a header row naming the event fields and usage
 * counts) or JSON Lines (one event per line, as POST /v1/events takes it). Every row is checked
 * as the API checks an event (its JSON guard, then its event schema), and every problem names the
 * row's line number.
 */
import { createHash } from 'node:crypto';
import { findJsonFault } from '../../domain/jsonText.ts';
import { USAGE_KEYS } from '../../domain/pricing.ts';
import type { UsageEventInput } from '../../domain/usageEvent.ts';
import { paramOf } from '../../http/problem.ts';
import { EventSchema } from '../../http/routes/events.ts';
import { CSV_COLUMNS } from './columns.ts';

export interface RowContext {
  /** The org of rows without an org_id column/field. */
  orgId: string | undefined;
  /** Names the file in derived event ids: rows without an id get one from it and their line. */
  fileKey: string;
}

export type RowResult = { event: UsageEventInput } | { error: string };

const USAGE_COLUMNS = new Set<string>(USAGE_KEYS);

/** How deep a row's event sits in the API's body (`events[i]`), so it may nest no deeper than there. */
const EVENT_DEPTH_IN_BODY = 2;

/** The same file and line always give the same id, so importing a file again adds nothing. */
export function derivedEventId(fileKey: string, line: number): string {
  return `imp_${createHash('sha256').update(`${fileKey}\n${line}`).digest('base64url').slice(0, 32)}`;
}

/** Completes and checks one row's fields as an event. */
function toEvent(fields: Record<string, unknown>, line: number, context: RowContext): RowResult {
  const event = {
    ...fields,
    id: fields.id ?? derivedEventId(context.fileKey, line),
    ...(fields.org_id === undefined && context.orgId ? { org_id: context.orgId } : {}),
  };
  if (!event.org_id) return { error: 'no org_id in the row and no --org given' };
  // What Postgres cannot store would fail the row's whole batch, and every resume with it: refused
  // here as the API refuses it.
  const fault = findJsonFault(event, '', EVENT_DEPTH_IN_BODY);
  if (fault) return { error: `${fault.param} ${fault.message}` };
  const parsed = EventSchema.safeParse(event);
  if (parsed.success) return { event: parsed.data as UsageEventInput };
  const issue = parsed.error.issues[0]!;
  const param = issue.code === 'unrecognized_keys' ? issue.keys[0] : paramOf(issue.path);
  return {
    error: issue.code === 'unrecognized_keys' ? `unknown field "${param}"` : `${param}: ${issue.message}`,
  };
}

export function jsonLineToEvent(text: string, line: number, context: RowContext): RowResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { error: `not valid JSON (${(error as Error).message})` };
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return { error: 'expected a JSON object' };
  return toEvent(value as Record<string, unknown>, line, context);
}

/** Splits CSV lines into records (RFC 4180: quoted fields may hold commas, quotes and line breaks). */
export class CsvRecords {
  private fields: string[] = [];
  private field = '';
  private quoted = false;
  private startLine = 0;

  /** Feeds one line; answers the record once it is complete (a quoted field may span lines). */
  push(text: string, line: number): { fields: string[]; line: number } | null {
    if (!this.quoted) {
      this.startLine = line;
      this.fields = [];
      this.field = '';
    } else {
      this.field += '\n';
    }
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (this.quoted) {
        if (c !== '"') this.field += c;
        else if (text[i + 1] === '"') {
          this.field += '"';
          i++;
        } else this.quoted = false;
      } else if (c === '"' && this.field === '') this.quoted = true;
      else if (c === ',') {
        this.fields.push(this.field);
        this.field = '';
      } else this.field += c;
    }
    if (this.quoted) return null;
    this.fields.push(this.field);
    return { fields: this.fields, line: this.startLine };
  }

  /** The line a record left open at the end of the file started on, if any. */
  get unterminatedLine(): number | null {
    return this.quoted ? this.startLine : null;
  }
}

/** Checks a CSV header: every column must be an event field or a usage count. */
export function csvHeader(fields: string[]): { columns: string[] } | { error: string } {
  const columns = fields.map((f) => f.trim());
  const unknown = columns.find((c) => !CSV_COLUMNS.includes(c));
  if (unknown !== undefined) {
    return { error: `unknown column "${unknown}" (known: ${CSV_COLUMNS.join(', ')})` };
  }
  const repeated = columns.find((c, i) => columns.indexOf(c) !== i);
  if (repeated) return { error: `column "${repeated}" appears twice` };
  return { columns };
}

export function csvRecordToEvent(
  columns: string[],
  values: string[],
  line: number,
  context: RowContext,
): RowResult {
  if (values.length !== columns.length) {
    return { error: `expected ${columns.length} values (as the header has), found ${values.length}` };
  }
  const fields: Record<string, unknown> = {};
  const usage: Record<string, number> = {};
  for (let i = 0; i < columns.length; i++) {
    const column = columns[i]!;
    const value = values[i]!;
    if (value === '') continue;
    if (USAGE_COLUMNS.has(column)) {
      if (!/^\d+$/.test(value)) return { error: `${column}: must be a whole number, found "${value}"` };
      usage[column] = Number(value);
    } else if (column === 'metadata') {
      try {
        fields.metadata = JSON.parse(value);
      } catch {
        return { error: 'metadata: must be a JSON object' };
      }
    } else {
      fields[column] = value;
    }
  }
  return toEvent({ ...fields, usage }, line, context);
}
