/**
 * Which rollup answers a usage report, as a FROM-able subquery of rows
 * `(dimension, bucket, key, calls, credits, cost, provider_cost_usd, input_tokens, output_tokens,
 * cache_read_tokens, cache_write_tokens)` that the report sums and groups as it likes.
 *
 * - The narrow rollups (`usage_daily_dim`, `usage_hourly_dim`, migration 0005) hold one dimension
 *   per row ('all' is the org total). They answer a report that groups by at most one dimension and
 *   filters on nothing but that same dimension: the UTC days lying fully inside one of the report's
 *   buckets come from the daily table, the hours left over from the hourly one (see
 *   `rollupIntervals` in domain/ranges.ts), so a 30-day breakdown reads about 30 x keys rows.
 * - Anything else (a filter on another dimension than the one grouped by, two filters, a model
 *   filter, whose `model` or `provider/model` match needs both columns) reads the wide hourly rollup
 *   `usage_hourly`, keyed on every dimension at once.
 *
 * Both give the same sums to the last unit: every event is in exactly one row of each table.
 */
import { rollupIntervals } from '../../domain/ranges.ts';
import { DIMENSION_KEY, type Dimension, FILTERS, type UsageFilters, whereOf } from './scope.ts';

export type Plan =
  | { table: 'narrow'; dimension: Dimension | 'all'; filter: { dim: Dimension; value: string } | null }
  | { table: 'wide' };

/**
 * The narrowest rollup for a report grouped by `by` (null: totals only) under `filters`. A filter
 * on the grouped dimension itself keeps the narrow table; so does a lone filter on totals.
 */
export function planOf(by: Dimension | null, filters: UsageFilters): Plan {
  const given = FILTERS.filter((f) => filters[f] !== undefined);
  if (given.length === 0) return { table: 'narrow', dimension: by ?? 'all', filter: null };
  const only = given[0]!;
  if (given.length === 1 && only !== 'model' && (by === null || by === only)) {
    return { table: 'narrow', dimension: only, filter: { dim: only, value: filters[only]! } };
  }
  return { table: 'wide' };
}

const SUMS =
  'calls, credits, cost, provider_cost_usd, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens';

/**
 * Rows of `plan` for the report buckets delimited by `edges` (whole UTC hours, ascending: bucket i
 * is [edges[i], edges[i + 1])), the key being that of `by` (or '' for totals). `dimensions` widens a
 * narrow read to several dimensions at once (the summary's distinct counts); `params` grows.
 */
export function sourceSql(
  plan: Plan,
  orgId: string,
  by: Dimension | null,
  edges: Date[],
  filters: UsageFilters,
  params: unknown[],
  dimensions?: (Dimension | 'all')[],
): string {
  const p = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (plan.table === 'wide') {
    const where = whereOf(
      'rollup',
      orgId,
      { start: edges[0]!, end: edges[edges.length - 1]! },
      filters,
      params,
    );
    return `(SELECT NULL::text AS dimension, bucket, ${by ? DIMENSION_KEY[by] : "''"} AS key, ${SUMS}
               FROM usage_hourly WHERE ${where})`;
  }
  const org = p(orgId);
  const dims = p(dimensions ?? [plan.dimension]);
  let keyFilter = '';
  if (plan.filter) {
    const v = p(plan.filter.value);
    keyFilter =
      plan.filter.dim === 'member'
        ? ` AND r.key IN (SELECT id FROM members WHERE org_id = ${org} AND (id = ${v} OR external_id = ${v}))`
        : plan.filter.dim === 'provider'
          ? ` AND r.key = lower(${v})`
          : ` AND r.key = ${v}`;
  }
  const { days, hours } = rollupIntervals(edges);
  const part = (table: string, intervals: { start: Date; end: Date }[]) => {
    const lo = p(intervals.map((i) => i.start.toISOString()));
    const hi = p(intervals.map((i) => i.end.toISOString()));
    // LATERAL: one index range scan of (org_id, dimension, bucket) per interval.
    return `SELECT r.dimension, r.bucket, r.key, r.${SUMS.split(', ').join(', r.')}
              FROM unnest(${lo}::timestamptz[], ${hi}::timestamptz[]) AS s (lo, hi)
             CROSS JOIN LATERAL (
               SELECT * FROM ${table} r
                WHERE r.org_id = ${org} AND r.dimension = ANY(${dims}::text[])
                  AND r.bucket >= s.lo AND r.bucket < s.hi${keyFilter}
             ) AS r`;
  };
  const parts = [
    ...(days.length > 0 ? [part('usage_daily_dim', days)] : []),
    ...(hours.length > 0 ? [part('usage_hourly_dim', hours)] : []),
  ];
  if (parts.length === 0)
    return `(SELECT NULL::text AS dimension, NULL::timestamptz AS bucket, ''::text AS key, ${SUMS.split(', ')
      .map((c) => `0::numeric AS ${c}`)
      .join(', ')} WHERE false)`;
  return `(${parts.join('\n UNION ALL\n')})`;
}
