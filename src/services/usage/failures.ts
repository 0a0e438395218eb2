/**
 * Failed calls: an event whose metadata names its error (`error`: a non-empty string, its code) or
 * says it failed (`error: true`). Read from raw events through the partial index events_failed
 * (migration 0032), which holds only events with an error key, so ingest pays nothing for the rest.
 */
import { Ratio } from '../../domain/money.ts';
import type { Queryable } from '../../store/db.ts';
import { type UsageFilters, whereOf } from './scope.ts';

/**
 * Whether a call failed. The `metadata ? 'error'` condition lets the partial index events_failed
 * (migration 0032) find them.
 */
export const failedSql = (metadata: string) =>
  `(${metadata} ? 'error' AND (${metadata} -> 'error' = 'true'::jsonb
     OR (jsonb_typeof(${metadata} -> 'error') = 'string' AND ${metadata} ->> 'error' <> '')))`;

/** A failed call's error code: the string it gave, or 'error' for `error: true`. */
export const errorCodeSql = (metadata: string) =>
  `CASE WHEN jsonb_typeof(${metadata} -> 'error') = 'string' THEN left(${metadata} ->> 'error', 200) ELSE 'error' END`;

/**
 * A group's failed calls (metadata.error) as counted now, at most its calls (a later page ranks the
 * usage of its first page, while failures are read as they stand), and their share of its calls.
 */
export function failuresView(failed: bigint, calls: bigint, topError: string | null) {
  const counted = failed < calls ? failed : calls;
  return {
    failed_calls: Number(counted),
    error_rate: calls > 0n ? Ratio.of(counted * 100n, calls).toDecimal(1) : '0',
    top_error: counted > 0n ? topError : null,
  };
}

/** The failed calls of `orgId` in [start, end) under the usage filters. */
export async function countFailedCalls(
  db: Queryable,
  orgId: string,
  bounds: { start: Date; end: Date },
  filters: UsageFilters,
): Promise<bigint> {
  const params: unknown[] = [];
  const where = whereOf('events', orgId, bounds, filters, params);
  const [row] = await db.query<{ failed: string }>(
    `SELECT count(*)::text AS failed FROM events e WHERE ${where} AND ${failedSql('e.metadata')}`,
    params,
  );
  return BigInt(row!.failed);
}
