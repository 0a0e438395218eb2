/**
 * Usage patterns (the "daily patterns" and "weekly trends" views): spend and calls per hour of the
 * day and per weekday in the org's time zone over a range (default 30 days), the busiest of each,
 * week-over-week change of the weeks in the range, and the range's last 7 days against the 7 before.
 *
 * Hours and weekdays come from the hourly org total (`usage_hourly_total`), or the wide rollup when
 * filters are given (raw events under a tool filter); shares are fractions of the total with 4 decimals, rounded down; a UTC hour counts for the local hour and weekday it starts in (in zones with
 * a half-hour offset, 18:00 UTC is 23:30 local: hour 23). Weeks are those of the time series
 * (Monday to Sunday, local), with the trend of each against the week before. All sums exact.
 */
import { decimalUnits, formatUnits } from '../../domain/money.ts';
import { trendOf } from '../../domain/ranges.ts';
import { addTotals, COST_SCALE, type Totals, zeroTotals } from '../../domain/usageTotals.ts';
import type { Ctx } from '../context.ts';
import { getUsageTimeseries } from './getUsageTimeseries.ts';
import {
  figuresView,
  loadScope,
  rangeView,
  SUM_COLUMNS,
  type SumRow,
  totalsOf,
  type UsageQuery,
  weightOf,
  whereOf,
} from './scope.ts';
import { planOf, wideRows } from './source.ts';

const WEEK_MS = 7 * 86_400_000;
export const WEEKDAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];

export async function getUsagePatterns(ctx: Ctx, orgId: string, query: UsageQuery, now = new Date()) {
  const scope = await loadScope(ctx, orgId, query, now);
  const { range, unit } = scope;
  const zone = scope.org.timezone;
  const params: unknown[] = [];
  const plan = planOf(null, query);
  const totalsOnly = plan.table === 'narrow' && plan.dimension === 'all';
  // The org's hourly total, or the wide hourly rows under the filters (raw events for a tool).
  const hourly = (bounds: { start: Date; end: Date }, p: unknown[]) =>
    totalsOnly
      ? `usage_hourly_total WHERE ${whereOf('rollup', orgId, bounds, {}, p)}`
      : `${wideRows(orgId, bounds, query, p, query.tool !== undefined)} AS w`;
  const from = hourly(range, params);
  params.push(zone);
  const cells = await ctx.db.read.query<SumRow & { hour: number; weekday: number; hours: string }>(
    `SELECT extract(hour FROM bucket AT TIME ZONE $${params.length})::int AS hour,
            extract(isodow FROM bucket AT TIME ZONE $${params.length})::int AS weekday, ${SUM_COLUMNS}
       FROM ${from} GROUP BY 1, 2`,
    params,
  );
  const byHour = Array.from({ length: 24 }, () => zeroTotals());
  const byDay = Array.from({ length: 7 }, () => zeroTotals());
  const all = zeroTotals();
  for (const c of cells) {
    const t = totalsOf(c);
    addTotals(byHour[c.hour]!, t);
    addTotals(byDay[c.weekday - 1]!, t);
    addTotals(all, t);
  }
  const dayCount = new Map<number, number>();
  const dows = await ctx.db.read.query<{ dow: number; n: number }>(
    `SELECT extract(isodow FROM d)::int AS dow, count(*)::int AS n
       FROM generate_series(date_trunc('day', ($1::timestamptz + interval '1 hour' - interval '1 microsecond') AT TIME ZONE $3),
                            date_trunc('day', ($2::timestamptz - interval '1 microsecond') AT TIME ZONE $3),
                            interval '1 day') AS d
      GROUP BY 1`,
    [range.start.toISOString(), range.end.toISOString(), zone],
  );
  for (const r of dows) dayCount.set(r.dow, r.n);
  const weight = (t: Totals) => weightOf(t, unit);
  const total = weight(all);
  // Fractions of the total with 4 decimals, rounded down.
  const share = (t: Totals) => formatUnits(total > 0n ? (weight(t) * 10_000n) / total : 0n, 4);
  const view = (t: Totals) => {
    const v = figuresView(t, scope.operator);
    return { credits: v.credits, cost: v.cost, calls: v.calls, tokens: v.tokens.total };
  };
  const busiest = (list: Totals[]) =>
    list.reduce((best, t, i) => (weight(t) > weight(list[best]!) ? i : best), 0);
  const hours = byHour.map((t, hour) => ({ hour, ...view(t), share: share(t) }));
  const weekdays = byDay.map((t, i) => ({
    weekday: i + 1,
    name: WEEKDAYS[i]!,
    days: dayCount.get(i + 1) ?? 0,
    ...view(t),
    share: share(t),
  }));

  const series = await getUsageTimeseries(
    ctx,
    orgId,
    { ...query, granularity: 'week', split_limit: 1, cumulative: false },
    now,
  );
  const units = (x: { credits: string; cost: string; tokens: { total: number } }) =>
    unit === 'credits'
      ? decimalUnits(x.credits, 6)
      : unit === 'usd'
        ? decimalUnits(x.cost, COST_SCALE)
        : BigInt(x.tokens.total);
  const weeks = series.data.map((w, i) => {
    const prev = series.data[i - 1];
    return {
      start: w.start,
      end: w.end,
      credits: w.credits,
      cost: w.cost,
      calls: w.calls,
      change: prev ? trendOf(units(w), units(prev)) : null,
    };
  });
  // The last 7 days of the range against the 7 before them.
  const sevenDays = async (end: Date) => {
    const p: unknown[] = [];
    const w = hourly({ start: new Date(end.getTime() - WEEK_MS), end }, p);
    const [row] = await ctx.db.read.query<SumRow>(`SELECT ${SUM_COLUMNS} FROM ${w}`, p);
    return totalsOf(row!);
  };
  const lastWeek = await sevenDays(range.end);
  const weekBefore = await sevenDays(new Date(range.end.getTime() - WEEK_MS));
  return {
    object: 'usage_patterns' as const,
    org_id: orgId,
    range: rangeView(range),
    timezone: zone,
    unit,
    currency: scope.currency,
    total: view(all),
    busiest_hour: total > 0n ? busiest(byHour) : null,
    busiest_weekday: total > 0n ? busiest(byDay) + 1 : null,
    hours,
    weekdays,
    weeks,
    week_over_week: {
      current: view(lastWeek),
      previous: view(weekBefore),
      trend: trendOf(weight(lastWeek), weight(weekBefore)),
    },
  };
}
export type UsagePatterns = Awaited<ReturnType<typeof getUsagePatterns>>;
