/**
 * Month-by-month totals of one year in the org's time zone, with the same month of the year
 * before beside each (year-over-year), from the rollups (see source.ts). Unfiltered, each month
 * up to the current one also shows the org's monthly limit in force at its end against the spend
 * that limit counted (budget against actual): the org's counter of the month, as GET .../limits
 * reads it. Its month is the exact local one, where the totals' months start on the UTC hour that
 * holds local midnight (domain/ranges.ts): in zones offset by a half or quarter hour, a call in the
 * last minutes of a month counts in the next month's totals but in its own month's limit.
 */
import { dateIn } from '../../domain/calendar.ts';
import { CREDIT_SCALE, Ratio } from '../../domain/money.ts';
import { startOfLocalDay } from '../../domain/periods.ts';
import { creditsToMoney } from '../../domain/pricing.ts';
import { floorHour } from '../../domain/ranges.ts';
import { addTotals, type Totals, zeroTotals } from '../../domain/usageTotals.ts';
import type { Queryable } from '../../store/db.ts';
import type { Ctx } from '../context.ts';
import { limitMoney, limitStatus, unitValue } from '../limits/getLimits.ts';
import type { OrgRow } from '../orgs/shape.ts';
import { figuresView, loadScope, SUM_COLUMNS, type SumRow, totalsOf, type UsageFilters } from './scope.ts';
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
  // The org's limit is org-wide: a filtered view has no budget to compare with.
  const filtered = Object.values(filters).some((v) => v !== undefined);
  const monthStarts = Array.from({ length: 13 }, (_, i) => startOfLocalDay(zone, year, i + 1, 1));
  const [changes, counted] = filtered
    ? [[], new Map<number, bigint>()]
    : await Promise.all([
        limitChanges(ctx.db.read, orgId, edges[24]!),
        monthCounters(ctx.db.read, orgId, monthStarts.slice(0, 12)),
      ]);
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
      limit:
        monthStarts[i]! > now
          ? null
          : monthLimit(
              scope.org,
              changes,
              monthStarts[i + 1]! < now ? monthStarts[i + 1]! : now,
              counted.get(monthStarts[i]!.getTime()) ?? 0n,
            ),
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

interface LimitChange {
  changed_at: Date;
  alert_threshold: string | null;
  allowed_limit: string | null;
}

/** The org's limits as they were set before `until`, oldest first. */
function limitChanges(q: Queryable, orgId: string, until: Date): Promise<LimitChange[]> {
  return q.query<LimitChange>(
    `SELECT changed_at, alert_threshold::text, allowed_limit::text FROM org_limit_changes
      WHERE org_id = $1 AND changed_at < $2 ORDER BY changed_at, id`,
    [orgId, until],
  );
}

/** The spend the org's monthly counters hold for the months starting at `starts`, by start. */
async function monthCounters(q: Queryable, orgId: string, starts: Date[]): Promise<Map<number, bigint>> {
  const rows = await q.query<{ period_start: Date; spent: string }>(
    `SELECT period_start, spent FROM spend_counters
      WHERE org_id = $1 AND scope = 'org' AND period_start = ANY($2::timestamptz[])`,
    [orgId, starts.map((s) => s.toISOString())],
  );
  return new Map(rows.map((r) => [r.period_start.getTime(), BigInt(r.spent)]));
}

/**
 * The limits in force at `at` (a month's end, or now in the current month) against the spend the
 * month's counter holds, on the limits' own basis (credits at the org's credit value, or provider
 * cost for BYOM), as GET .../limits shows it.
 */
function monthLimit(org: OrgRow, changes: LimitChange[], at: Date, counted: bigint) {
  const set = changes.findLast((c) => c.changed_at < at);
  if (!set || (set.alert_threshold === null && set.allowed_limit === null)) return null;
  const spent = Ratio.parse(creditsToMoney(counted, unitValue(org)));
  const allowed = set.allowed_limit === null ? null : Ratio.parse(set.allowed_limit);
  return {
    alert_threshold: limitMoney(set.alert_threshold),
    allowed_limit: limitMoney(set.allowed_limit),
    spent: spent.toDecimal(CREDIT_SCALE + 6),
    used_percent:
      allowed === null || allowed.isZero() ? null : spent.mul(Ratio.int(100)).div(allowed).toDecimal(1),
    status: limitStatus(spent, set.alert_threshold, set.allowed_limit),
  };
}
