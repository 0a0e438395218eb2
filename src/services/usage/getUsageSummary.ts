/**
 * The summary tile: credits and their currency equivalent, provider cost (operator view), calls,
 * active members, unique features and model tiers, tokens by kind, and the trend against the
 * previous period ("+N %", "-N %", "flat"), all from the hourly rollup.
 */
import { trendOf } from '../../domain/ranges.ts';
import type { Ctx } from '../context.ts';
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

export async function getUsageSummary(ctx: Ctx, orgId: string, query: UsageQuery, now = new Date()) {
  const scope = await loadScope(ctx, orgId, query, now);
  const { range } = scope;
  const read = async (bounds: { start: Date; end: Date }) => {
    const params: unknown[] = [];
    const where = whereOf('rollup', orgId, bounds, query, params);
    const [row] = await ctx.db.query<
      SumRow & { active_members: number; features: number; model_tiers: number }
    >(
      `SELECT ${SUM_COLUMNS}, count(DISTINCT member_id)::int AS active_members,
              count(DISTINCT feature)::int AS features, count(DISTINCT (provider, model))::int AS model_tiers
         FROM usage_hourly WHERE ${where}`,
      params,
    );
    return row!;
  };
  const [current, previous] = await Promise.all([read(range), read(range.previous)]);
  const now_ = totalsOf(current);
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
    features: current.features,
    model_tiers: current.model_tiers,
    previous: figuresView(before, scope.operator),
    trend: trendOf(weightOf(now_, scope.unit), weightOf(before, scope.unit)),
  };
}
export type UsageSummary = Awaited<ReturnType<typeof getUsageSummary>>;
