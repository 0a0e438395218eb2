/**
 * Rolls busy closed hours up by one dimension at a time (usage_hourly_dim, migration 0018), so an
 * hourly chart, or the hours of a range that no whole stored day covers, reads a few rows per key
 * instead of every wide row (about one per event in varied traffic).
 *
 * An hour is built once it ended an hour ago, while ingest still accepts events for it (older raw
 * events may be purged), when its usage_hourly_total row counts at least `minCalls` calls and it
 * has no rows yet or that count changed since (a late event). Each hour is one transaction from
 * one snapshot of its raw events; the job stops starting hours after `budgetMs`.
 */
import { MAX_EVENT_AGE_MS } from '../../domain/usageEvent.ts';
import { SUM_NAMES } from '../../domain/usageTotals.ts';
import type { Db, Queryable } from '../../store/db.ts';
import { buildWithin, CLOSED_FOR_MS, eventsOf } from './jobRollups.ts';

/**
 * Below this many calls an hour's wide rows are about as few as its rows by dimension would be
 * (the bench's varied traffic: about 350 keys over all dimensions in an hour of 1 400 calls).
 */
export const HOUR_MIN_CALLS = 1_000;
const HOUR_MS = 3_600_000;

export interface BuildHoursOptions {
  now?: Date;
  minCalls?: number;
  /** No new hour starts after this long. */
  budgetMs?: number;
}

export async function buildHourlyDims(
  db: Db,
  options: BuildHoursOptions = {},
): Promise<{ hours: number; rows: number; done: boolean }> {
  const now = options.now ?? new Date();
  const due = await db.query<{ org_id: string; bucket: Date }>(
    `SELECT t.org_id, t.bucket
       FROM usage_hourly_total t
       LEFT JOIN usage_hour_dims m ON m.org_id = t.org_id AND m.bucket = t.bucket
      WHERE t.calls >= $1 AND t.bucket <= $2 AND t.bucket >= $3
        AND (m.org_id IS NULL OR m.hour_calls <> t.calls)
      ORDER BY t.bucket DESC, t.org_id`,
    [
      options.minCalls ?? HOUR_MIN_CALLS,
      new Date(now.getTime() - CLOSED_FOR_MS - HOUR_MS).toISOString(),
      new Date(now.getTime() - MAX_EVENT_AGE_MS).toISOString(),
    ],
  );
  const built = await buildWithin(
    db,
    due,
    options.budgetMs ?? 20_000,
    ['usage_hourly_dim', 'usage_hour_dims'],
    (tx, hour) => buildHour(tx, hour.org_id, new Date(hour.bucket)),
  );
  return { hours: built.periods, rows: built.rows, done: built.done };
}

async function buildHour(tx: Queryable, orgId: string, bucket: Date): Promise<number> {
  const hour = [orgId, bucket.toISOString()];
  await tx.query('DELETE FROM usage_hourly_dim WHERE org_id = $1 AND bucket = $2', hour);
  const params: unknown[] = [...hour];
  const { w, keyed, sums } = eventsOf(orgId, bucket, new Date(bucket.getTime() + HOUR_MS), params);
  // One statement: the events, their rows and the marker all come from one snapshot.
  const [result] = await tx.query<{ rows: string }>(
    `WITH w AS MATERIALIZED ${w},
     dims AS (
       INSERT INTO usage_hourly_dim (org_id, bucket, dimension, key, ${SUM_NAMES})
       SELECT $1, $2, d.dim, d.key, ${sums}
         FROM w CROSS JOIN LATERAL ${keyed} AS d (dim, key)
        GROUP BY d.dim, d.key
       RETURNING 1
     ),
     marker AS (
       INSERT INTO usage_hour_dims (org_id, bucket, calls, hour_calls)
       SELECT $1, $2, (SELECT count(*) FROM w),
              coalesce((SELECT calls FROM usage_hourly_total WHERE org_id = $1 AND bucket = $2), 0)
       ON CONFLICT (org_id, bucket) DO UPDATE
          SET calls = EXCLUDED.calls, hour_calls = EXCLUDED.hour_calls, built_at = now()
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM dims) AS rows, (SELECT count(*) FROM marker) AS marked`,
    params,
  );
  return Number(result?.rows ?? 0);
}
