/**
 * Breakdowns by feature, member, model, provider, workspace, workspace group, surface (web, CLI,
 * integrations), project, API key, integration (the surface of calls made through one, 'None' for
 * the product's own surfaces) or tool (`metadata.tool` of the events): credits, cost, calls, tokens and share of the total, ranked by
 * what the org pays in (credits; USD for BYOM; tokens for BYOK), keyset-paginated so a page can
 * show the top 5 and then "show all".
 *
 * Read from the narrow rollup of the dimension (or the wide one, or raw events for the tool, under
 * other filters; see source.ts).
 * Shares are decimal fractions with 4 places, allocated over all groups by largest remainder in
 * SQL, so they always add up to exactly 1 (0 when nothing was spent); the rows add up to `total`.
 */
import { formatUnits } from '../../domain/money.ts';
import type { Ctx } from '../context.ts';
import { decodeCursor, encodeCursor } from '../pagination.ts';
import {
  type Dimension,
  figuresView,
  labelsFor,
  loadScope,
  rangeView,
  SUM_COLUMNS,
  type SumRow,
  totalsOf,
  type UsageQuery,
  weightSql,
  zeroTotals,
} from './scope.ts';
import { planOf, sourceSql } from './source.ts';

const SHARE_SCALE = 4;
const SHARE_UNITS = 10n ** BigInt(SHARE_SCALE);

export interface BreakdownQuery extends UsageQuery {
  by: Dimension;
  limit: number;
  cursor?: string | undefined;
}

type GroupRow = SumRow & {
  key: string;
  weight_text: string;
  share_units: string;
  groups: string;
  total_calls: string;
  total_credits: string;
  total_cost: string;
  total_provider_cost_usd: string;
};

export async function getUsageBreakdown(ctx: Ctx, orgId: string, query: BreakdownQuery, now = new Date()) {
  const scope = await loadScope(ctx, orgId, query, now);
  const after = decodeCursor(query.cursor, ['digits', 'text']) as [string, string] | null;
  const params: unknown[] = [];
  const src = await sourceSql(
    ctx.db.read,
    planOf(query.by, query),
    orgId,
    query.by,
    [scope.range.start, scope.range.end],
    query,
    params,
  );
  params.push(after?.[0] ?? null, after?.[1] ?? null, query.limit + 1);
  const n = params.length;
  const rows = await ctx.db.read.query<GroupRow>(
    `WITH g AS (
       SELECT key, ${SUM_COLUMNS}, sum(${weightSql(scope.unit)}) AS weight
         FROM ${src} AS u GROUP BY 1
     ), s AS (
       SELECT g.*, sum(weight) OVER () AS total, count(*) OVER () AS groups,
              sum(calls::bigint) OVER () AS total_calls, sum(credits::bigint) OVER () AS total_credits,
              sum(cost::numeric) OVER () AS total_cost,
              sum(provider_cost_usd::numeric) OVER () AS total_provider_cost_usd
         FROM g
     ), a AS (
       SELECT s.*, CASE WHEN total > 0 THEN div(weight * ${SHARE_UNITS}, total) ELSE 0 END AS base,
              CASE WHEN total > 0 THEN mod(weight * ${SHARE_UNITS}, total) ELSE 0 END AS rest
         FROM s
     ), r AS (
       SELECT a.*, row_number() OVER (ORDER BY rest DESC, weight DESC, key) AS rn,
              CASE WHEN total > 0 THEN ${SHARE_UNITS} - sum(base) OVER () ELSE 0 END AS missing
         FROM a
     )
     SELECT key, calls, credits, cost, provider_cost_usd, input_tokens, output_tokens, cache_read_tokens,
            cache_write_tokens, round(weight)::text AS weight_text, groups::text AS groups,
            (base + CASE WHEN rn <= missing THEN 1 ELSE 0 END)::text AS share_units,
            total_calls::text AS total_calls, total_credits::text AS total_credits,
            total_cost::text AS total_cost, total_provider_cost_usd::text AS total_provider_cost_usd
       FROM r
      WHERE $${n - 2}::numeric IS NULL OR weight < $${n - 2}::numeric OR (weight = $${n - 2}::numeric AND key > $${n - 1})
      ORDER BY weight DESC, key ASC
      LIMIT $${n}`,
    params,
  );
  const has_more = rows.length > query.limit;
  const kept = has_more ? rows.slice(0, query.limit) : rows;
  const labels = await labelsFor(
    ctx.db.read,
    orgId,
    query.by,
    kept.map((r) => r.key),
  );
  const last = kept[kept.length - 1];
  // The totals ride on every group row (a cursor this API hands out never points past the last).
  const totalRow = rows[0];
  const total = totalRow
    ? totalsOf({
        ...totalRow,
        calls: totalRow.total_calls,
        credits: totalRow.total_credits,
        cost: totalRow.total_cost,
        provider_cost_usd: totalRow.total_provider_cost_usd,
      })
    : zeroTotals();
  const totalView = figuresView(total, scope.operator);
  return {
    object: 'usage_breakdown' as const,
    org_id: orgId,
    by: query.by,
    range: rangeView(scope.range),
    unit: scope.unit,
    currency: scope.currency,
    groups: totalRow ? Number(totalRow.groups) : 0,
    total: {
      credits: totalView.credits,
      cost: totalView.cost,
      provider_cost_usd: totalView.provider_cost_usd,
      calls: totalView.calls,
    },
    data: kept.map((r) => {
      const l = labels.get(r.key) ?? { label: r.key };
      return {
        key: r.key,
        label: l.label,
        ...(l.provider !== undefined ? { provider: l.provider } : {}),
        ...(l.email !== undefined ? { email: l.email } : {}),
        ...figuresView(totalsOf(r), scope.operator),
        share: formatUnits(BigInt(r.share_units), SHARE_SCALE),
      };
    }),
    has_more,
    next_cursor: has_more && last ? encodeCursor([last.weight_text, last.key]) : null,
  };
}
export type UsageBreakdown = Awaited<ReturnType<typeof getUsageBreakdown>>;
