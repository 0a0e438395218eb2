/**
 * Daily totals for one month in the org's time zone (the monthly overview's table): one row per
 * day, days without usage included, adding up to the month's total.
 */
import { dateIn } from '../../domain/calendar.ts';
import type { Ctx } from '../context.ts';
import { getUsageTimeseries } from './getUsageTimeseries.ts';
import { loadScope, type UsageFilters } from './scope.ts';

export interface DailyQuery extends UsageFilters {
  /** YYYY-MM; the current month of the org when absent. */
  month?: string | undefined;
}

const HOUR_MS = 3_600_000;

export async function getDailyUsage(ctx: Ctx, orgId: string, query: DailyQuery, now = new Date()) {
  const { org } = await loadScope(ctx, orgId, { range: '1d' }, now);
  const month = query.month ?? dateIn(org.timezone, now).slice(0, 7);
  const [y, m] = month.split('-').map(Number) as [number, number];
  const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
  const { month: _, ...filters } = query;
  const series = await getUsageTimeseries(
    ctx,
    orgId,
    {
      ...filters,
      range: 'custom',
      from: `${month}-01`,
      to: `${month}-${String(last).padStart(2, '0')}`,
      granularity: 'day',
      split_limit: 0,
      cumulative: false,
    },
    now,
  );
  return {
    object: 'usage_daily' as const,
    org_id: orgId,
    month,
    timezone: org.timezone,
    unit: series.unit,
    currency: series.currency,
    total: series.total,
    data: series.data.map((b) => ({
      // A day's first UTC hour may start before local midnight (half-hour zones): name the day
      // by the end of that hour.
      date: dateIn(org.timezone, new Date(new Date(b.start).getTime() + HOUR_MS - 1)),
      start: b.start,
      end: b.end,
      credits: b.credits,
      cost: b.cost,
      provider_cost_usd: b.provider_cost_usd,
      calls: b.calls,
      tokens: b.tokens,
    })),
  };
}
