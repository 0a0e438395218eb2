/**
 * Where each org's raw events may already be gone: the later of its retention cutoff in force and
 * how far the purge job has gone. An event id is recognised as a duplicate only while its raw row is
 * kept, so a trusted history import must not record events from before this instant: they could
 * be ones already counted (their totals live on in the rollups) and would be counted twice.
 */
import type { Queryable } from '../../store/db.ts';
import { retentionCutoff } from './purgeExpiredEvents.ts';
import { readDefaultRetention } from './retentionSettings.ts';

/** Per org, the first instant whose raw events are all kept; an org missing from the map keeps all. */
export async function rawEventsKeptFrom(
  q: Queryable,
  orgs: readonly { id: string; timezone: string }[],
  now: Date,
): Promise<Map<string, Date>> {
  const fallback = await readDefaultRetention(q);
  const rows = await q.query<{
    org_id: string;
    own: boolean;
    months: number | null;
    purged_before: Date | null;
  }>(
    `SELECT o.id AS org_id, r.org_id IS NOT NULL AS own, r.raw_event_months AS months, p.purged_before
       FROM orgs o
       LEFT JOIN org_retention r ON r.org_id = o.id
       LEFT JOIN raw_event_purges p ON p.org_id = o.id
      WHERE o.id = ANY($1::text[])`,
    [orgs.map((o) => o.id)],
  );
  const zones = new Map(orgs.map((o) => [o.id, o.timezone]));
  const keptFrom = new Map<string, Date>();
  for (const row of rows) {
    const months = row.own ? row.months : fallback;
    const cutoff = months === null ? null : retentionCutoff(zones.get(row.org_id)!, months, now);
    const from = [cutoff, row.purged_before].filter((d): d is Date => d !== null);
    if (from.length > 0) keptFrom.set(row.org_id, new Date(Math.max(...from.map((d) => d.getTime()))));
  }
  return keptFrom;
}
