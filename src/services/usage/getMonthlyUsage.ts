/**
 * Month-by-month totals of one year in the org's time zone, with the same month of the year
 * before beside each (year-over-year), from the rollups (see source.ts).
 */
import { dateIn } from '../../domain/calendar.ts';
import { startOfLocalDay } from '../../domain/periods.ts';
import { floorHour } from '../../domain/ranges.ts';
import type { Ctx } from '../context.ts';
import {
  addTotals,
  figuresView,
  loadScope,
  SUM_COLUMNS,
  type SumRow,
  type Totals,
  totalsOf,
  type UsageFilters,
  zeroTotals,
} from './scope.ts';
import { planOf, sourceSql } from './source.ts';

export interface MonthlyQuery extends UsageFilters {
  /** The org's current year when absent. */
  year?: number | undefined;
}

export async function getMonthlyUsage(ctx: Ctx, orgId: string, query: MonthlyQuery, now = new Date()) {
  const scope = await loadScope(ctx, orgId, { range: '1d' }, now);
  const zone = scope.org.timezone;
  const year = query.year ?? Number(dateIn(zone, now).slice(0, 4));
  const { year: _, ...filters } = query;
  // Month edges in the org zone, on whole UTC hours (as domain/ranges.ts floors local midnights).
  const edges = Array.from({ length: 25 }, (_, i) =>
    floorHour(startOfLocalDay(zone, year - 1 + Math.floor(i / 12), (i % 12) + 1, 1)),
  );
  const params: unknown[] = [];
  const src = await sourceSql(ctx.db.read, planOf(null, filters), orgId, null, edges, filters, params);
  params.push(zone);
  const rows = await ctx.db.read.query<SumRow & { month: string }>(
    `SELECT to_char(date_trunc('month', (bucket + interval '1 hour' - interval '1 microsecond') AT TIME ZONE $${params.length}),
                    'YYYY-MM') AS month, ${SUM_COLUMNS}
       FROM ${src} AS u GROUP BY 1`,
    params,
  );
  const byMonth = new Map(rows.map((r) => [r.month, totalsOf(r)]));
  const total = zeroTotals();
  const previousTotal = zeroTotals();
  const figures = (t: Totals) => {
    const v = figuresView(t, scope.operator);
    return { credits: v.credits, cost: v.cost, provider_cost_usd: v.provider_cost_usd, calls: v.calls };
  };
  const data = Array.from({ length: 12 }, (_, i) => {
    const mm = String(i + 1).padStart(2, '0');
    const t = byMonth.get(`${year}-${mm}`) ?? zeroTotals();
    const p = byMonth.get(`${year - 1}-${mm}`) ?? zeroTotals();
    addTotals(total, t);
    addTotals(previousTotal, p);
    return {
      month: `${year}-${mm}`,
      ...figures(t),
      previous_year: { month: `${year - 1}-${mm}`, ...figures(p) },
    };
  });
  return {
    object: 'usage_monthly' as const,
    org_id: orgId,
    year,
    timezone: zone,
    unit: scope.unit,
    currency: scope.currency,
    total: figures(total),
    previous_year_total: figures(previousTotal),
    data,
  };
}
