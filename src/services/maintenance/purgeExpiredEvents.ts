/**
 * Deletes raw events older than each org's retention (retentionSettings.ts), in bounded batches.
 *
 * Only `events` rows go: the rollups (usage_hourly, usage_hourly_total, usage_daily_dim) were
 * written in the same transaction as each event, usage_daily_pair from them before they go, and
 * ledger entries, holds, payments and invoices refer to an event by its id only (no foreign key), so every total, balance and invoice stays as
 * it was. Each batch is its own short transaction, its rows taken with FOR UPDATE SKIP LOCKED, so
 * ingest and a second worker are never blocked; the job stops starting batches after `budgetMs`
 * and the next run goes on where it stopped.
 */
import { localDate, startOfLocalDay } from '../../domain/periods.ts';
import { MAX_EVENT_AGE_MS } from '../../domain/usageEvent.ts';
import type { Db } from '../../store/db.ts';
import { readDefaultRetention } from './retentionSettings.ts';

/**
 * The first instant kept: the start of the org-local month `months` months before the month of
 * `now` (so the current month and the `months` whole months before it stay), and never later than
 * the oldest instant ingest still accepts, so an event id that may still arrive again is always
 * there to be recognised as a duplicate.
 */
export function retentionCutoff(zone: string, months: number, now: Date): Date {
  const { year, month } = localDate(zone, now);
  const index = year * 12 + (month - 1) - months;
  const monthStart = startOfLocalDay(zone, Math.floor(index / 12), (index % 12) + 1, 1);
  return new Date(Math.min(monthStart.getTime(), now.getTime() - MAX_EVENT_AGE_MS));
}

export interface PurgeOptions {
  now?: Date;
  /** Events deleted per transaction. */
  batch?: number;
  /** No new batch starts after this long. */
  budgetMs?: number;
}

export async function purgeExpiredEvents(
  db: Db,
  options: PurgeOptions = {},
): Promise<{ orgs: number; purged: number; done: boolean }> {
  const now = options.now ?? new Date();
  const batch = options.batch ?? 5_000;
  const started = Date.now();
  const fallback = await readDefaultRetention(db);
  const orgs = await db.query<{ id: string; timezone: string; own: boolean; months: number | null }>(
    `SELECT o.id, o.timezone, r.org_id IS NOT NULL AS own, r.raw_event_months AS months
       FROM orgs o LEFT JOIN org_retention r ON r.org_id = o.id
      WHERE (r.org_id IS NOT NULL AND r.raw_event_months IS NOT NULL) OR (r.org_id IS NULL AND $1::int IS NOT NULL)
      ORDER BY o.id`,
    [fallback],
  );
  let purged = 0;
  let touched = 0;
  let complete = true;
  for (const org of orgs) {
    const months = org.own ? org.months! : fallback!;
    const cutoff = retentionCutoff(org.timezone, months, now).toISOString();
    let deleted = 0;
    let outOfTime = false;
    for (;;) {
      if (Date.now() - started > (options.budgetMs ?? 20_000)) {
        outOfTime = true;
        break;
      }
      const rows = await db.query(
        `DELETE FROM events WHERE org_id = $1 AND id IN (
           SELECT id FROM events WHERE org_id = $1 AND occurred_at < $2
            LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING 1`,
        [org.id, cutoff, batch],
      );
      deleted += rows.length;
      purged += rows.length;
      if (rows.length < batch) break;
    }
    if (deleted > 0) touched++;
    // Rows another transaction held were skipped: the next run takes them, and only then is the
    // org recorded as purged up to the cutoff, so `purged_before` never claims more than was done.
    const [left] = await db.query('SELECT 1 FROM events WHERE org_id = $1 AND occurred_at < $2 LIMIT 1', [
      org.id,
      cutoff,
    ]);
    if (left) complete = false;
    if (deleted === 0 && left) continue;
    await db.query(
      `INSERT INTO raw_event_purges (org_id, purged_before, purged_events) VALUES ($1, $2, $3)
       ON CONFLICT (org_id) DO UPDATE
         SET purged_before = GREATEST(raw_event_purges.purged_before, EXCLUDED.purged_before),
             purged_events = raw_event_purges.purged_events + EXCLUDED.purged_events,
             purged_at = CASE WHEN EXCLUDED.purged_events > 0 THEN now() ELSE raw_event_purges.purged_at END
         WHERE EXCLUDED.purged_events > 0
            OR raw_event_purges.purged_before IS DISTINCT FROM GREATEST(raw_event_purges.purged_before, EXCLUDED.purged_before)`,
      [org.id, left ? null : cutoff, deleted],
    );
    if (outOfTime) {
      complete = false;
      break;
    }
  }
  return { orgs: touched, purged, done: complete };
}
