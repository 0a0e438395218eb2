/**
 * usage.daily_summary: once per org and local day, a summary of yesterday (midnight to midnight in
 * the org's time zone) read from the hourly rollup. The job may run often and in several processes:
 * the message's dedupe key (`usage.daily_summary:<date>`) makes it one per org and day. Orgs with no
 * usage that day get no message. Provider cost is left out: it is the operator's view only, and an
 * org's own endpoints get these messages. Zones whose offset is not a whole hour (e.g. UTC+05:30) are
 * summed by whole UTC hours starting within the local day, as the rollup keeps no finer buckets.
 */
import { formatCredits, Ratio } from '../../domain/money.ts';
import { localDate, startOfLocalDay } from '../../domain/periods.ts';
import type { Db } from '../../store/db.ts';
import { trackedOrgPages } from '../orgs/shape.ts';
import { emitWebhookEvent } from './emitWebhookEvent.ts';

const TOP_FEATURES = 5;

export function yesterdayOf(zone: string, now: Date): { date: string; start: Date; end: Date } {
  const today = localDate(zone, now);
  const y = new Date(Date.UTC(today.year, today.month - 1, today.day - 1));
  return {
    date: y.toISOString().slice(0, 10),
    start: startOfLocalDay(zone, y.getUTCFullYear(), y.getUTCMonth() + 1, y.getUTCDate()),
    end: startOfLocalDay(zone, today.year, today.month, today.day),
  };
}

interface DayTotals {
  org_id: string;
  calls: string;
  credits: string;
  cost: string;
  input_tokens: string;
  output_tokens: string;
  active_members: string;
}

export async function sendDailySummaries(db: Db, now = new Date()): Promise<{ sent: number }> {
  let sent = 0;
  for await (const orgs of trackedOrgPages(db)) {
    const days = new Map(orgs.map((o) => [o.id, yesterdayOf(o.timezone, now)]));
    const wanted = [...days].map(([org_id, d]) => ({
      org_id,
      day_start: d.start.toISOString(),
      day_end: d.end.toISOString(),
      dedupe_key: `usage.daily_summary:${d.date}`,
    }));
    // Orgs already summarised for that day are left out here, so a repeated run costs one query.
    const totals = await db.query<DayTotals>(
      `SELECT x.org_id, sum(u.calls)::text AS calls, sum(u.credits)::text AS credits, sum(u.cost)::text AS cost,
              sum(u.input_tokens)::text AS input_tokens,
              sum(u.output_tokens)::text AS output_tokens,
              count(DISTINCT u.member_id) FILTER (WHERE u.member_id <> '')::text AS active_members
         FROM jsonb_to_recordset($1::jsonb) AS x(org_id text, day_start timestamptz, day_end timestamptz, dedupe_key text)
         JOIN usage_hourly u ON u.org_id = x.org_id AND u.bucket >= x.day_start AND u.bucket < x.day_end
        WHERE NOT EXISTS (SELECT 1 FROM webhook_messages m WHERE m.org_id = x.org_id AND m.dedupe_key = x.dedupe_key)
        GROUP BY x.org_id
       HAVING sum(u.calls) > 0`,
      [JSON.stringify(wanted)],
    );
    if (totals.length === 0) continue;
    const features = await db.query<{
      org_id: string;
      feature: string;
      calls: string;
      credits: string;
      cost: string;
    }>(
      `SELECT org_id, feature, calls, credits, cost FROM (
         SELECT x.org_id, u.feature, sum(u.calls)::text AS calls, sum(u.credits)::text AS credits,
                sum(u.cost)::text AS cost,
                row_number() OVER (PARTITION BY x.org_id ORDER BY sum(u.cost) DESC, u.feature) AS rank
           FROM jsonb_to_recordset($1::jsonb) AS x(org_id text, day_start timestamptz, day_end timestamptz)
           JOIN usage_hourly u ON u.org_id = x.org_id AND u.bucket >= x.day_start AND u.bucket < x.day_end
          GROUP BY x.org_id, u.feature) ranked
        WHERE rank <= ${TOP_FEATURES} ORDER BY org_id, rank`,
      [JSON.stringify(wanted.filter((w) => totals.some((t) => t.org_id === w.org_id)))],
    );
    const byId = new Map(orgs.map((o) => [o.id, o]));
    for (const t of totals) {
      const org = byId.get(t.org_id)!;
      const day = days.get(t.org_id)!;
      const money = (text: string) => Ratio.parse(text).toDecimal(12);
      const data = {
        org_id: org.id,
        date: day.date,
        timezone: org.timezone,
        start: day.start.toISOString(),
        end: day.end.toISOString(),
        currency: org.billing_mode === 'byom' ? 'USD' : org.currency,
        calls: Number(t.calls),
        active_members: Number(t.active_members),
        credits: formatCredits(BigInt(t.credits)),
        cost: money(t.cost),
        input_tokens: Number(t.input_tokens),
        output_tokens: Number(t.output_tokens),
        top_features: features
          .filter((f) => f.org_id === org.id)
          .map((f) => ({
            feature: f.feature,
            calls: Number(f.calls),
            credits: formatCredits(BigInt(f.credits)),
            cost: money(f.cost),
          })),
      };
      const id = await db.transaction((tx) =>
        emitWebhookEvent(tx, org.id, 'usage.daily_summary', data, {
          dedupeKey: `usage.daily_summary:${day.date}`,
          at: now,
        }),
      );
      if (id) sent++;
    }
  }
  return { sent };
}
