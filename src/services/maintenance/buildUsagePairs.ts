/**
 * Rolls busy closed days up by pairs of dimensions (usage_daily_pair, migration 0018), so a report
 * filtered on one dimension and grouped by another reads a few rows a day instead of one per event,
 * and into the lines of the daily detail page (usage_daily_items).
 *
 * A day is one stored usage_daily_dim day of the org (its exact [bucket, day_end)), closed an hour
 * ago at least, still within the age ingest accepts events for (older raw events may be purged),
 * with at least `minCalls` calls; it is (re)built when it has no pair rows yet or its 'all' row
 * changed since they were built (a late event). Each day is one transaction: its old pair rows go,
 * the new ones and the day's marker are written from one snapshot of its raw events, so the marker
 * counts exactly the events the rows hold. The job stops starting days after `budgetMs`; the next
 * run goes on where it stopped.
 */
import { MAX_EVENT_AGE_MS } from '../../domain/usageEvent.ts';
import { SUM_NAMES } from '../../domain/usageTotals.ts';
import type { Db, Queryable } from '../../store/db.ts';
import { ITEM_FROM, ITEM_GROUP, ITEM_SUMS } from '../usage/getDayItems.ts';
import { FILTERS } from '../usage/scope.ts';
import { buildWithin, CLOSED_FOR_MS, eventsOf } from './jobRollups.ts';

/**
 * Below this many calls a day's wide rows are few enough to read directly, and pairs would
 * outnumber them (the bench's varied traffic: about 10 pair rows per event at 1 000 calls a day).
 */
export const PAIR_MIN_CALLS = 5_000;

/** A model filter matches the model or provider/model (see scope.ts whereOf): it reads wide rows. */
export const PAIR_FILTERS = FILTERS.filter((f) => f !== 'model');

export interface BuildPairsOptions {
  now?: Date;
  minCalls?: number;
  /** No new day starts after this long. */
  budgetMs?: number;
}

export async function buildUsagePairs(
  db: Db,
  options: BuildPairsOptions = {},
): Promise<{ days: number; rows: number; done: boolean }> {
  const now = options.now ?? new Date();
  const due = await db.query<{ org_id: string; bucket: Date; day_end: Date }>(
    `SELECT d.org_id, d.bucket, d.day_end
       FROM usage_daily_dim d
       LEFT JOIN usage_pair_days p ON p.org_id = d.org_id AND p.bucket = d.bucket AND p.day_end = d.day_end
      WHERE d.dimension = 'all' AND d.key = '' AND d.calls >= $1 AND d.day_end <= $2 AND d.bucket >= $3
        AND (p.org_id IS NULL OR p.day_calls <> d.calls)
      ORDER BY d.bucket DESC, d.org_id`,
    [
      options.minCalls ?? PAIR_MIN_CALLS,
      new Date(now.getTime() - CLOSED_FOR_MS).toISOString(),
      new Date(now.getTime() - MAX_EVENT_AGE_MS).toISOString(),
    ],
  );
  const built = await buildWithin(
    db,
    due,
    options.budgetMs ?? 20_000,
    ['usage_daily_pair', 'usage_pair_days', 'usage_daily_items'],
    (tx, day) => buildDay(tx, day.org_id, new Date(day.bucket), new Date(day.day_end)),
  );
  return { days: built.periods, rows: built.rows, done: built.done };
}

async function buildDay(tx: Queryable, orgId: string, bucket: Date, dayEnd: Date): Promise<number> {
  const day = [orgId, bucket.toISOString(), dayEnd.toISOString()];
  await tx.query('DELETE FROM usage_daily_pair WHERE org_id = $1 AND bucket = $2 AND day_end = $3', day);
  await tx.query('DELETE FROM usage_daily_items WHERE org_id = $1 AND bucket = $2 AND day_end = $3', day);
  const params: unknown[] = [...day];
  const { w, keyed, sums } = eventsOf(orgId, bucket, dayEnd, params);
  const filterDims = PAIR_FILTERS.map((f) => `'${f}'`).join(', ');
  // One statement: the events, their pair rows, item lines and the marker all come from one snapshot.
  const [result] = await tx.query<{ rows: string }>(
    `WITH w AS MATERIALIZED ${w},
     pairs AS (
       INSERT INTO usage_daily_pair (org_id, bucket, day_end, filter_dim, filter_key, dimension, key, ${SUM_NAMES})
       SELECT $1, $2, $3, f.dim, f.key, g.dim, g.key, ${sums}
         FROM w
        CROSS JOIN LATERAL ${keyed} AS f (dim, key)
        CROSS JOIN LATERAL ${keyed} AS g (dim, key)
        WHERE f.dim IN (${filterDims}) AND g.dim <> f.dim
        GROUP BY f.dim, f.key, g.dim, g.key
       RETURNING 1
     ),
     items AS (
       INSERT INTO usage_daily_items (org_id, bucket, day_end, category, provider, model, component, quantity, calls,
         credits, valued_cost, unvalued_credits, provider_cost_usd)
       SELECT $1, $2, $3, ${ITEM_GROUP}, ${ITEM_SUMS} FROM ${ITEM_FROM}
        WHERE e.org_id = $1 AND e.occurred_at >= $2 AND e.occurred_at < $3
        GROUP BY 4, 5, 6, 7
       RETURNING 1
     ),
     marker AS (
       INSERT INTO usage_pair_days (org_id, bucket, day_end, calls, day_calls)
       SELECT $1, $2, $3, (SELECT count(*) FROM w),
              coalesce((SELECT calls FROM usage_daily_dim
                         WHERE org_id = $1 AND dimension = 'all' AND bucket = $2 AND day_end = $3 AND key = ''), 0)
       ON CONFLICT (org_id, bucket, day_end) DO UPDATE
          SET calls = EXCLUDED.calls, day_calls = EXCLUDED.day_calls, built_at = now()
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM pairs) AS rows, (SELECT count(*) FROM items) AS items,
            (SELECT count(*) FROM marker) AS marked`,
    params,
  );
  return Number(result?.rows ?? 0);
}
