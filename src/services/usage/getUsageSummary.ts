/**
 * The summary tile: credits and their currency equivalent, provider cost (operator view), calls,
 * active members, unique features and model tiers, tokens by kind, and the trend against the
 * previous period ("+N %", "-N %", "flat"), from the narrow rollups when no filter is given (see
 * source.ts), or a lone tool filter, else from the wide hourly rollup (raw events under a tool
 * filter and another).
 */
import { trendOf } from '../../domain/ranges.ts';
import type { Ctx } from '../context.ts';
import { countFailedCalls, failuresView } from './failures.ts';
import {
  figuresView,
  loadScope,
  placeholderFor,
  rangeView,
  SUM_COLUMNS,
  type SumRow,
  totalsOf,
  type UsageQuery,
  weightOf,
} from './scope.ts';
import {
  coverageOf,
  dailyPart,
  filterKeysSql,
  hourlyPart,
  type Plan,
  planOf,
  sourceSql,
  wideRows,
} from './source.ts';

export async function getUsageSummary(ctx: Ctx, orgId: string, query: UsageQuery, now = new Date()) {
  const scope = await loadScope(ctx, orgId, query, now);
  const { range } = scope;
  // The distinct counts need every dimension of the same events: a filter forces the wide rollup,
  // but for a lone tool filter, which the wide rollup does not key. That reads the tool's own rows,
  // as the breakdown by tool does, so the two agree once raw events are purged.
  const narrow = planOf(null, query);
  const plan: Plan =
    narrow.table === 'narrow' && (narrow.filter === null || narrow.filter.dim === 'tool')
      ? narrow
      : { table: 'wide', events: query.tool !== undefined };
  const read = async (bounds: { start: Date; end: Date }) => {
    const params: unknown[] = [];
    if (plan.table === 'narrow' && plan.filter !== null) {
      const edges = [bounds.start, bounds.end];
      const sums = await sourceSql(ctx.db.read, plan, orgId, null, edges, query, params);
      // The distinct counts from the tool's pair rows where the job built them, else raw events.
      const keys = await filterKeysSql(
        ctx.db.read,
        orgId,
        plan.filter,
        ['member', 'feature', 'model'],
        bounds,
        query,
        params,
      );
      const distinct = (dimension: string) =>
        `(SELECT count(DISTINCT key) FROM k WHERE dimension = '${dimension}')::int`;
      const [row] = await ctx.db.read.query<
        SumRow & { active_members: number; features: number; model_tiers: number }
      >(
        `WITH k AS (SELECT dimension, key FROM ${keys} AS k)
         SELECT t.*, ${distinct('member')} AS active_members, ${distinct('feature')} AS features,
                ${distinct('model')} AS model_tiers
           FROM (SELECT ${SUM_COLUMNS} FROM ${sums} AS u) AS t`,
        params,
      );
      return row!;
    }
    if (plan.table === 'narrow') {
      // Whole org-local days: the org total and the member, feature and model keys seen, one row
      // each per day. The other hours: the hourly total, and the keys from the wide rollup.
      const { days, hours } = await coverageOf(ctx.db.read, orgId, [bounds.start, bounds.end]);
      const p = placeholderFor(params);
      const daily = dailyPart(plan, orgId, ['all', 'member', 'feature', 'model'], days, p);
      const hourly = hourlyPart(plan, orgId, null, hours, {}, params);
      const org = p(orgId);
      const lo = p(hours.map((h) => h.start.toISOString()));
      const hi = p(hours.map((h) => h.end.toISOString()));
      // A key used in the hours is a key of a stored day overlapping them (every event is in one day
      // row per dimension), so only such keys not already counted from the whole days are looked
      // for in the hourly rows, each by one index probe, instead of reading every wide row there.
      const seenIn = (column: string) => `EXISTS (
          SELECT 1 FROM unnest(${lo}::timestamptz[], ${hi}::timestamptz[]) AS s (lo, hi)
           WHERE EXISTS (SELECT 1 FROM usage_hourly w
                          WHERE w.org_id = ${org} AND ${column} = k.key AND w.bucket >= s.lo AND w.bucket < s.hi))`;
      const distinct = (dimension: string) =>
        `((SELECT count(*) FROM (SELECT DISTINCT key FROM d WHERE dimension = '${dimension}') AS k) +
          (SELECT count(*) FROM c WHERE dimension = '${dimension}'))::int`;
      const [row] = await ctx.db.read.query<
        SumRow & { active_members: number; features: number; model_tiers: number }
      >(
        `WITH d AS MATERIALIZED (${daily}),
              c AS MATERIALIZED (
                SELECT k.dimension, k.key FROM (
                  SELECT DISTINCT r.dimension, r.key
                    FROM unnest(${lo}::timestamptz[], ${hi}::timestamptz[]) AS s (lo, hi)
                   CROSS JOIN LATERAL (
                     SELECT dimension, key FROM usage_daily_dim r
                      WHERE r.org_id = ${org} AND r.dimension IN ('member', 'feature', 'model')
                        AND r.bucket >= s.lo - interval '3 days' AND r.bucket < s.hi AND r.day_end > s.lo
                   ) AS r
                  EXCEPT SELECT dimension, key FROM d
                ) AS k
                WHERE CASE k.dimension WHEN 'member' THEN ${seenIn('w.member_id')}
                                       WHEN 'feature' THEN ${seenIn('w.feature')}
                                       ELSE ${seenIn("w.provider || '/' || w.model")} END
              ),
              u AS (SELECT * FROM d WHERE dimension = 'all' UNION ALL ${hourly})
         SELECT t.*, ${distinct('member')} AS active_members, ${distinct('feature')} AS features,
                ${distinct('model')} AS model_tiers
           FROM (SELECT ${SUM_COLUMNS} FROM u) AS t`,
        params,
      );
      return row!;
    }
    const rows = wideRows(orgId, bounds, query, params, plan.events);
    const [row] = await ctx.db.read.query<
      SumRow & { active_members: number; features: number; model_tiers: number }
    >(
      // Summed per (member, feature, model) first: one hash aggregate, then the distinct counts
      // run over a few hundred groups instead of sorting every rollup row three times.
      `WITH g AS (
         SELECT member_id, feature, provider, model, sum(calls) AS calls, sum(credits) AS credits,
                sum(cost) AS cost, sum(provider_cost_usd) AS provider_cost_usd,
                sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                sum(cache_read_tokens) AS cache_read_tokens, sum(cache_write_tokens) AS cache_write_tokens
           FROM ${rows} AS w GROUP BY 1, 2, 3, 4
       )
       SELECT ${SUM_COLUMNS}, count(DISTINCT member_id)::int AS active_members,
              count(DISTINCT feature)::int AS features, count(DISTINCT (provider, model))::int AS model_tiers
         FROM g`,
      params,
    );
    return row!;
  };
  const [current, previous, failed] = await Promise.all([
    read(range),
    read(range.previous),
    countFailedCalls(ctx.db.read, orgId, range, query),
  ]);
  const now_ = totalsOf(current);
  const { failed_calls, error_rate } = failuresView(failed, now_.calls, null);
  const before = totalsOf(previous);
  return {
    object: 'usage_summary' as const,
    org_id: orgId,
    range: rangeView(range),
    billing_mode: scope.org.billing_mode,
    unit: scope.unit,
    currency: scope.currency,
    ...figuresView(now_, scope.operator),
    active_members: current.active_members,
    failed_calls,
    error_rate,
    features: current.features,
    model_tiers: current.model_tiers,
    previous: figuresView(before, scope.operator),
    trend: trendOf(weightOf(now_, scope.unit), weightOf(before, scope.unit)),
  };
}
export type UsageSummary = Awaited<ReturnType<typeof getUsageSummary>>;
