/**
 * usage.monthly_summary: once per org and local month, after the month has ended in the org's time
 * zone, what a host app needs to send its customer a monthly statement: the month's totals (failed
 * calls and error rate among them), its top features and models, the monthly limit in force against
 * its spend, and the path of the month's PDF report. The figures are read through the usage pages'
 * own services (the `last_month` range), so they are the pages' to the last unit; provider cost is
 * left out, as org keys never see it. The job may run often and in several processes: the dedupe
 * key (`usage.monthly_summary:<YYYY-MM>`) makes it one message per org and month. Orgs with no usage
 * that month, and BYOK orgs (untracked), get none.
 */
import { dateIn } from '../../domain/calendar.ts';
import { calendarMonth } from '../../domain/periods.ts';
import type { Ctx } from '../context.ts';
import { trackedOrgPages } from '../orgs/shape.ts';
import { getMonthlyUsage } from '../usage/getMonthlyUsage.ts';
import { getUsageBreakdown } from '../usage/getUsageBreakdown.ts';
import { getUsageSummary } from '../usage/getUsageSummary.ts';
import { emitWebhookEvent } from './emitWebhookEvent.ts';

const TOP = 5;

/** The org's last whole local month: its start and end, and its name (YYYY-MM). */
export function lastMonthOf(zone: string, now: Date): { month: string; start: Date; end: Date } {
  const last = calendarMonth(zone, new Date(calendarMonth(zone, now).start.getTime() - 1));
  return { month: dateIn(zone, last.start).slice(0, 7), start: last.start, end: last.end };
}

/**
 * Sends the summaries due. With `budgetMs`, no org is started after that long (the job's lease is
 * short; the next run goes on where this one stopped, as the sent ones are skipped).
 */
export async function sendMonthlySummaries(
  ctx: Ctx,
  now = new Date(),
  options: { budgetMs?: number } = {},
): Promise<{ sent: number; done: boolean }> {
  const stopAt = performance.now() + (options.budgetMs ?? Number.POSITIVE_INFINITY);
  let sent = 0;
  for await (const orgs of trackedOrgPages(ctx.db)) {
    const months = new Map(orgs.map((o) => [o.id, lastMonthOf(o.timezone, now)]));
    const wanted = [...months].map(([org_id, m]) => ({
      org_id,
      start: m.start.toISOString(),
      end: m.end.toISOString(),
      dedupe_key: `usage.monthly_summary:${m.month}`,
    }));
    // Orgs summarised already, or with no usage that month, cost this one query per run.
    const due = await ctx.db.query<{ org_id: string }>(
      `SELECT x.org_id
         FROM jsonb_to_recordset($1::jsonb) AS x(org_id text, start timestamptz, "end" timestamptz, dedupe_key text)
        WHERE NOT EXISTS (SELECT 1 FROM webhook_messages m WHERE m.org_id = x.org_id AND m.dedupe_key = x.dedupe_key)
          AND EXISTS (SELECT 1 FROM usage_hourly_total u
                       WHERE u.org_id = x.org_id AND u.bucket >= x.start AND u.bucket < x."end" AND u.calls > 0)`,
      [JSON.stringify(wanted)],
    );
    for (const { org_id } of due) {
      if (performance.now() > stopAt) return { sent, done: false };
      const month = months.get(org_id)!;
      const data = await monthlySummary(ctx, org_id, month.month, now);
      const id = await ctx.db.transaction((tx) =>
        emitWebhookEvent(tx, org_id, 'usage.monthly_summary', data, {
          dedupeKey: `usage.monthly_summary:${month.month}`,
          at: now,
        }),
      );
      if (id) sent++;
    }
  }
  return { sent, done: true };
}

async function monthlySummary(ctx: Ctx, orgId: string, month: string, now: Date) {
  const range = { range: 'last_month' as const };
  const summary = await getUsageSummary(ctx, orgId, range, now);
  const top = async (by: 'feature' | 'model') =>
    (await getUsageBreakdown(ctx, orgId, { ...range, by, limit: TOP }, now)).data.map((row) => ({
      key: row.key,
      label: row.label,
      calls: row.calls,
      credits: row.credits,
      cost: row.cost,
      share: row.share,
    }));
  const year = await getMonthlyUsage(ctx, orgId, { year: Number(month.slice(0, 4)) }, now);
  return {
    org_id: orgId,
    month,
    timezone: year.timezone,
    start: summary.range.start,
    end: summary.range.end,
    unit: summary.unit,
    currency: summary.currency,
    calls: summary.calls,
    failed_calls: summary.failed_calls,
    error_rate: summary.error_rate,
    active_members: summary.active_members,
    credits: summary.credits,
    cost: summary.cost,
    tokens: summary.tokens,
    top_features: await top('feature'),
    top_models: await top('model'),
    limit: year.data.find((row) => row.month === month)?.limit ?? null,
    // The month's own dates, so the path names the same month whenever it is read.
    report_path: `/v1/orgs/${orgId}/usage/export?${new URLSearchParams({
      format: 'pdf',
      range: 'custom',
      from: summary.range.start,
      to: summary.range.end,
    })}`,
  };
}
