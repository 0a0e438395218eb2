/**
 * Usage export: every event of a range and its filters, oldest first, as CSV, JSON Lines or one JSON
 * array, streamed. Rows are read in batches on a keyset cursor (occurred_at, seq), each batch a
 * short query of its own, and written out before the next is read: memory stays flat however many
 * rows the range holds. Amounts are exact decimal strings. Events that arrive while an export runs
 * may be missed if they are older than the export's position (re-export to include them).
 *
 * Columns (in this order; the CSV header names them):
 * occurred_at, event_id, member_id, member_external_id, member_name, feature, provider, model, surface,
 * workspace, workspace_group, project, api_key_id, conversation_id, error (a failed call's metadata.error),
 * input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, images, seconds, requests,
 * web_searches, credits, cost, currency, provider_cost_usd (operator keys only).
 * With `columns=focus` the rows carry the FOCUS column set instead (focusColumns.ts).
 */
import { dateIn } from '../../domain/calendar.ts';
import { decimalUnits, formatCredits, formatUnits } from '../../domain/money.ts';
import { UNIT_COUNTS } from '../../domain/pricing.ts';
import { COST_SCALE, PCOST_SCALE } from '../../domain/usageTotals.ts';
import type { Ctx } from '../context.ts';
import { type EventRow, readEventRows } from './eventRows.ts';
import { FOCUS_COLUMNS, FOCUS_TEXT_COLUMNS, focusRow, type TallyRow } from './focusColumns.ts';
import { loadScope, memberView, type UsageQuery, whereOf } from './scope.ts';

export const EXPORT_FORMATS = ['csv', 'jsonl', 'json'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
export const EXPORT_COLUMN_SETS = ['tally', 'focus'] as const;
export type ExportColumnSet = (typeof EXPORT_COLUMN_SETS)[number];

export const EXPORT_COLUMNS = [
  'occurred_at',
  'event_id',
  'member_id',
  'member_external_id',
  'member_name',
  'feature',
  'provider',
  'model',
  'surface',
  'workspace',
  'workspace_group',
  'project',
  'api_key_id',
  'conversation_id',
  'error',
  'input_tokens',
  'output_tokens',
  'cache_read_tokens',
  'cache_write_tokens',
  ...UNIT_COUNTS,
  'credits',
  'cost',
  'currency',
  'provider_cost_usd',
] as const;
type Column = (typeof EXPORT_COLUMNS)[number];

/** The event's counts of what is not tokens (images, seconds, requests, web searches), 0 when it has none. */
const unitCounts = (r: EventRow) =>
  Object.fromEntries(UNIT_COUNTS.map((kind) => [kind, String(r.usage[kind] ?? 0)])) as Record<
    (typeof UNIT_COUNTS)[number],
    string
  >;
type ExportRow = Record<Column, string | null>;

/** The columns of numbers, written as they are. */
const NUMBER_COLUMNS: ReadonlySet<Column> = new Set<Column>([
  'input_tokens',
  'output_tokens',
  'cache_read_tokens',
  'cache_write_tokens',
  ...UNIT_COUNTS,
  'credits',
  'cost',
  'provider_cost_usd',
]);
/**
 * Every other column is text a spreadsheet could read as a formula when it starts like one: it is
 * prefixed with a quote (CSV only). Listed by what it is not, so a new text column (or one that was
 * thought safe, as the provider once was) is never left out.
 */
const TEXT_COLUMNS: ReadonlySet<string> = new Set(EXPORT_COLUMNS.filter((c) => !NUMBER_COLUMNS.has(c)));

function csvCell(guarded: ReadonlySet<string>, column: string, value: string | null): string {
  if (value === null) return '';
  let text = value;
  if (guarded.has(column) && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export interface ExportOptions {
  batchSize?: number;
  now?: Date;
  columns?: ExportColumnSet;
}

/** Checks access and the range now (so errors answer as problems), then returns the stream. */
export async function exportUsage(
  ctx: Ctx,
  orgId: string,
  query: UsageQuery,
  format: ExportFormat,
  options: ExportOptions = {},
) {
  const scope = await loadScope(ctx, orgId, query, options.now ?? new Date());
  const batch = options.batchSize ?? 2000;
  const params: unknown[] = [];
  const where = whereOf('events', orgId, scope.range, query, params);

  const shape = (r: EventRow): ExportRow => {
    const active = r.m_status === 'active';
    return {
      occurred_at: `${r.at.slice(0, 23)}Z`,
      event_id: r.id,
      member_id: r.member_id,
      member_external_id: active ? r.m_external_id : null,
      member_name: r.member_id === null ? null : memberView(r).label,
      feature: r.feature,
      provider: r.provider,
      model: r.model,
      surface: r.surface || null,
      workspace: r.workspace || null,
      workspace_group: r.workspace_group || null,
      project: r.project || null,
      api_key_id: r.api_key_id,
      conversation_id: r.conversation_id,
      error: r.error,
      input_tokens: r.input_tokens,
      output_tokens: r.output_tokens,
      cache_read_tokens: r.cache_read_tokens,
      cache_write_tokens: r.cache_write_tokens,
      ...unitCounts(r),
      credits: formatCredits(BigInt(r.credits)),
      cost: formatUnits(decimalUnits(r.cost, COST_SCALE), COST_SCALE),
      currency: r.currency,
      provider_cost_usd: scope.operator
        ? formatUnits(decimalUnits(r.provider_cost_usd, PCOST_SCALE), PCOST_SCALE)
        : null,
    };
  };
  const focus = options.columns === 'focus';
  const columns: readonly string[] = focus ? FOCUS_COLUMNS : EXPORT_COLUMNS;
  const textColumns = focus ? FOCUS_TEXT_COLUMNS : TEXT_COLUMNS;
  const encode = (tallyRow: ExportRow, first: boolean): string => {
    const row: Record<string, string | null> = focus ? focusRow(scope.org, tallyRow as TallyRow) : tallyRow;
    if (format === 'csv') return `${columns.map((c) => csvCell(textColumns, c, row[c]!)).join(',')}\r\n`;
    if (format === 'jsonl') return `${JSON.stringify(row)}\n`;
    return `${first ? '' : ',\n'}${JSON.stringify(row)}`;
  };

  const encoder = new TextEncoder();
  let after: [string, string] | null = null;
  let first = true;
  let finished = false;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      if (format === 'csv') controller.enqueue(encoder.encode(`${columns.join(',')}\r\n`));
      if (format === 'json') controller.enqueue(encoder.encode('[\n'));
    },
    async pull(controller) {
      if (finished) return;
      try {
        const rows = await readEventRows(ctx.db.read, where, params, after, 'oldest', batch);
        let text = '';
        for (const r of rows) {
          text += encode(shape(r), first);
          first = false;
        }
        if (rows.length > 0) {
          const last = rows[rows.length - 1]!;
          after = [last.at, last.seq];
        }
        if (rows.length < batch) {
          finished = true;
          if (format === 'json') text += first ? ']\n' : '\n]\n';
          if (text) controller.enqueue(encoder.encode(text));
          controller.close();
          return;
        }
        controller.enqueue(encoder.encode(text));
      } catch (error) {
        controller.error(error);
      }
    },
  });
  // Named by the org's own calendar dates, its last day included.
  const start = dateIn(scope.org.timezone, scope.range.start);
  const end = dateIn(scope.org.timezone, new Date(scope.range.end.getTime() - 1));
  return {
    stream,
    contentType:
      format === 'csv'
        ? 'text/csv; charset=utf-8'
        : format === 'jsonl'
          ? 'application/x-ndjson'
          : 'application/json',
    filename: `usage-${focus ? 'focus-' : ''}${orgId}-${start}-${end}.${format}`,
  };
}
