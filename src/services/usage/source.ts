/**
 * Which rollup answers a usage report, as a FROM-able subquery of rows
 * `(dimension, bucket, key, calls, credits, cost, provider_cost_usd, input_tokens, output_tokens,
 * cache_read_tokens, cache_write_tokens)` that the report sums and groups as it likes.
 *
 * - A report grouped by at most one dimension, filtered on nothing but that same dimension, reads
 *   the narrow rollups (migration 0005): the org-local days lying fully inside one of its buckets
 *   from `usage_daily_dim` (one dimension per row), every other hour (today so far, a rolling 24 h,
 *   hourly buckets) from `usage_hourly_total` for totals, for a dimension from `usage_hourly_dim`
 *   where the build_usage_rollups job built the hour (busy, closed, no event since; migration
 *   0018) and the wide `usage_hourly` otherwise. A 30-day breakdown then reads about 30 x keys
 *   daily rows plus the hours of the days the range cuts.
 * - A report grouped by one dimension under one filter on another (not the model) reads the same
 *   way, its days from `usage_daily_pair` (migration 0018) where the build_usage_rollups job rolled
 *   a busy day up by pairs and no event came in since, every other hour from the wide rollup.
 * - Anything else (two filters, a model
 *   filter, whose `model` or `provider/model` match needs both columns) reads the wide hourly rollup
 *   `usage_hourly`, keyed on every dimension at once; or raw events when the tool is grouped or
 *   filtered on (no hourly rollup keys it): see `wideRows`.
 *
 * Days are those of the org's zone when the events were recorded. A day row is used only when no
 * other day row overlaps it (after a time-zone change days of two zones can) and it lies inside one
 * report bucket; its hours are then in no other day row, and every hour not covered so is read
 * hourly. Every event is in exactly one row of each table, so all paths give the same sums to the
 * last unit.
 */

import type { Interval } from '../../domain/ranges.ts';
import { ROLLUP_DIMENSIONS } from '../../domain/usageEvent.ts';
import { SUM_NAMES } from '../../domain/usageTotals.ts';
import type { Queryable } from '../../store/db.ts';
import {
  DIMENSION_KEY,
  type Dimension,
  FILTERS,
  placeholderFor,
  SPARSE_DIMENSIONS,
  toolSql,
  type UsageFilters,
  whereOf,
} from './scope.ts';

type Filter = { dim: Dimension; value: string };
export type Plan =
  | { table: 'narrow'; dimension: Dimension | 'all'; filter: Filter | null }
  /** Grouped by `dimension` under one filter on another: busy days from usage_daily_pair. */
  | { table: 'pair'; dimension: Dimension; filter: Filter }
  /** `events`: the tool is asked for (grouped or filtered on), which only raw events carry. */
  | { table: 'wide'; events: boolean };

/**
 * The narrowest rollup for a report grouped by `by` (null: totals only) under `filters`. A filter
 * on the grouped dimension itself keeps the narrow table; so does a lone filter on totals; a lone
 * filter on another dimension reads pair rows where a day has them.
 */
export function planOf(by: Dimension | null, filters: UsageFilters): Plan {
  const given = FILTERS.filter((f) => filters[f] !== undefined);
  if (given.length === 0) return { table: 'narrow', dimension: by ?? 'all', filter: null };
  const only = given[0]!;
  if (given.length === 1 && only !== 'model') {
    const filter = { dim: only, value: filters[only]! };
    if (by === null || by === only) return { table: 'narrow', dimension: only, filter };
    return { table: 'pair', dimension: by, filter };
  }
  return { table: 'wide', events: by === 'tool' || filters.tool !== undefined };
}

/**
 * Hourly rows keyed on every dimension, as a FROM-able subquery with the columns of
 * `usage_hourly` (bucket, member_id, ..., api_key_id, then the sums) under `filters`, inside
 * `bounds` (one interval or several). `fromEvents` reads raw events instead, one row per event
 * dated at its UTC hour, with a `tool` column besides (the hourly rollup keeps no tool) and `seq`
 * (the order events were recorded in). Both give the same sums for the same rows.
 */
export function wideRows(
  orgId: string,
  bounds: Interval | Interval[],
  filters: UsageFilters,
  params: unknown[],
  fromEvents: boolean,
): string {
  const dated = Array.isArray(bounds) ? null : bounds;
  const time = fromEvents ? 'e.occurred_at' : 'bucket';
  let where = whereOf(fromEvents ? 'events' : 'rollup', orgId, dated, filters, params);
  if (Array.isArray(bounds)) where += ` AND (${intervalsSql(time, bounds, params)})`;
  // Not *: the columns every source of hourly rows has (usage_hourly's from_calls is not one).
  if (!fromEvents) return `(SELECT ${HOURLY_COLUMNS} FROM usage_hourly WHERE ${where})`;
  return `(SELECT date_trunc('hour', e.occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket,
                  e.member_id, e.feature, e.provider, e.model, e.surface, e.workspace, e.workspace_group,
                  e.project, coalesce(e.api_key_id, '') AS api_key_id, ${toolSql('e.metadata')} AS tool, e.seq,
                  1::bigint AS calls, e.credits, e.cost, e.provider_cost_usd, e.input_tokens, e.output_tokens,
                  e.cache_read_tokens, e.cache_write_tokens
             FROM events e WHERE ${where})`;
}

/**
 * `column` inside one of `intervals`, as literal bounds the planner sees (ranges from a LATERAL
 * unnest were estimated at a third of the table: a two-hour read planned as a parallel scan with
 * JIT took 100-350 ms instead of 15).
 */
function intervalsSql(column: string, intervals: Interval[], params: unknown[]): string {
  const p = placeholderFor(params);
  if (intervals.length === 0) return 'false';
  return intervals
    .map((i) => `(${column} >= ${p(i.start.toISOString())} AND ${column} < ${p(i.end.toISOString())})`)
    .join(' OR ');
}

const HOURLY_COLUMNS = `org_id, bucket, ${ROLLUP_DIMENSIONS.join(', ')}, ${SUM_NAMES}`;
const prefixed = (alias: string) =>
  SUM_NAMES.split(', ')
    .map((c) => `${alias}.${c}`)
    .join(', ');

/** Reads with the same columns as one: their UNION ALL. */
export const unionAll = (reads: string[]): string => reads.join('\n UNION ALL\n');

/** The parts that read something, as one source (a parenthesised UNION ALL), or no rows. */
const sourceOf = (parts: (string | null)[]): string => {
  const reads = parts.filter((part) => part !== null);
  return reads.length > 0 ? `(${unionAll(reads)})` : EMPTY_SOURCE;
};

/** A source of no rows, with the columns of every other. */
const EMPTY_SOURCE = `(SELECT NULL::text AS dimension, NULL::timestamptz AS bucket, ''::text AS key, ${SUM_NAMES.split(
  ', ',
)
  .map((c) => `0::numeric AS ${c}`)
  .join(', ')} WHERE false)`;

const DAY_MS = 86_400_000;

/**
 * Day rows to read, each named by its stored [start, end) and standing for the span [from, to) of
 * the report (the day clipped to the range, when the hours clipped off hold no usage), and the
 * hours left to read hourly.
 */
export interface Coverage {
  /** `paired`: the day's pair rows (usage_daily_pair) hold all of its events. */
  days: (Interval & { from: Date; to: Date; paired: boolean })[];
  hours: Interval[];
}

/**
 * Which stored org-local days answer the report buckets delimited by `edges` (whole UTC hours,
 * ascending: bucket i is [edges[i], edges[i + 1])): those overlapping no other stored day whose
 * span inside the report lies in one bucket, and which hold no usage outside the report (today's
 * row, for a range ending with the current hour, once no event is dated later: events may be up to
 * 5 minutes ahead of the clock). The rest of the span is left to hourly rows.
 */
export async function coverageOf(db: Queryable, orgId: string, edges: Date[]): Promise<Coverage> {
  const start = edges[0]!.getTime();
  const end = edges[edges.length - 1]!.getTime();
  // A stored day is at most a few hours longer than 24 (DST, zone changes): look 3 days around.
  const rows = await db.query<{ kind: 'day' | 'hour'; s: Date; e: Date; paired: boolean }>(
    `SELECT 'day' AS kind, d.bucket AS s, d.day_end AS e,
            EXISTS (SELECT 1 FROM usage_pair_days p
                     WHERE p.org_id = $1 AND p.bucket = d.bucket AND p.day_end = d.day_end AND p.calls = d.calls) AS paired
       FROM usage_daily_dim d
      WHERE d.org_id = $1 AND d.dimension = 'all' AND d.bucket >= $2 AND d.bucket < $3 AND d.day_end > $4
     UNION ALL
     SELECT 'hour', bucket, bucket, false FROM usage_hourly_total
      WHERE org_id = $1 AND ((bucket >= $2 AND bucket < $4) OR (bucket >= $3 AND bucket < $5))
     ORDER BY 1, 2, 3`,
    [
      orgId,
      new Date(start - 3 * DAY_MS).toISOString(),
      new Date(end).toISOString(),
      new Date(start).toISOString(),
      new Date(end + 3 * DAY_MS).toISOString(),
    ],
  );
  const used = rows.filter((r) => r.kind === 'hour').map((r) => new Date(r.s).getTime());
  const usageIn = (lo: number, hi: number) => used.some((h) => h >= lo && h < hi);
  const segs = rows
    .filter((r) => r.kind === 'day')
    .map((r) => ({ s: new Date(r.s).getTime(), e: new Date(r.e).getTime(), paired: r.paired }));
  const days: Coverage['days'] = [];
  let bucket = 0;
  let endBefore = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < segs.length; i++) {
    const { s, e, paired } = segs[i]!;
    const next = segs[i + 1];
    // Sorted by start: a day overlaps another if one before it ends after its start, or the next
    // one starts before its end.
    const overlaps = endBefore > s || (next !== undefined && next.s < e);
    endBefore = Math.max(endBefore, e);
    if (overlaps) continue;
    const from = Math.max(s, start);
    const to = Math.min(e, end);
    if (from >= to || usageIn(s, from) || usageIn(to, e)) continue;
    while (bucket + 1 < edges.length && edges[bucket + 1]!.getTime() <= from) bucket++;
    if (bucket + 1 >= edges.length) break;
    if (from >= edges[bucket]!.getTime() && to <= edges[bucket + 1]!.getTime()) {
      days.push({ start: new Date(s), end: new Date(e), from: new Date(from), to: new Date(to), paired });
    }
  }
  return { days, hours: hoursAround(start, end, days) };
}

/** The hours of [start, end) outside `days` (ascending, not overlapping). */
function hoursAround(start: number, end: number, days: Coverage['days']): Interval[] {
  const hours: Interval[] = [];
  let at = start;
  for (const d of days) {
    if (d.from.getTime() > at) hours.push({ start: new Date(at), end: d.from });
    at = d.to.getTime();
  }
  if (end > at) hours.push({ start: new Date(at), end: new Date(end) });
  return hours;
}

/**
 * Rows of `plan` for the report buckets delimited by `edges`, the key being that of `by` (or ''
 * for totals). `dimensions` widens a narrow read of the days to several dimensions at once (the
 * summary's distinct counts read their hours separately); `params` grows.
 */
export async function sourceSql(
  db: Queryable,
  plan: Plan,
  orgId: string,
  by: Dimension | null,
  edges: Date[],
  filters: UsageFilters,
  params: unknown[],
): Promise<string> {
  const p = placeholderFor(params);
  const keyOf = by ? DIMENSION_KEY[by] : "''";
  if (plan.table === 'wide') {
    const rows = wideRows(
      orgId,
      { start: edges[0]!, end: edges[edges.length - 1]! },
      filters,
      params,
      plan.events,
    );
    return `(SELECT NULL::text AS dimension, bucket, ${keyOf} AS key, ${SUM_NAMES} FROM ${rows} AS w)`;
  }
  // Nothing filtered: the read of one or several dimensions that dimensionsSql makes.
  if (plan.table === 'narrow' && plan.filter === null) {
    return dimensionsSql(db, orgId, [plan.dimension], edges, params);
  }
  const coverage = await coverageOf(db, orgId, edges);
  const days = plan.table === 'pair' ? coverage.days.filter((d) => d.paired) : coverage.days;
  const hours =
    plan.table === 'pair'
      ? hoursAround(edges[0]!.getTime(), edges[edges.length - 1]!.getTime(), days)
      : coverage.hours;
  // Only the parts that read something: the planner then sizes the query right (an unused
  // hourly part estimated at a month of wide rows turns a small read into a parallel plan).
  // Hours of one dimension (filtered on itself) come from its built hourly rows where they hold.
  const split =
    plan.table === 'narrow' && plan.dimension !== 'all' && hours.length > 0
      ? await builtHoursOf(db, orgId, hours)
      : { built: [], rest: hours };
  return sourceOf([
    days.length > 0
      ? plan.table === 'pair'
        ? pairPart(plan, orgId, days, p)
        : dailyPart(plan, orgId, [plan.dimension], days, p)
      : null,
    split.built.length > 0 && plan.table === 'narrow' ? builtHoursPart(plan, orgId, split.built, p) : null,
    split.rest.length > 0 ? hourlyPart(plan, orgId, by, split.rest, filters, params) : null,
  ]);
}

/**
 * Rows of several dimensions at once, none filtered (`all`: the org's totals, key ''), for the
 * report buckets delimited by `edges`, as sourceSql reads each of them: one coverage read and one
 * read of the built hours serve them all, and the days of every dimension come in one part.
 */
export async function dimensionsSql(
  db: Queryable,
  orgId: string,
  dimensions: (Dimension | 'all')[],
  edges: Date[],
  params: unknown[],
): Promise<string> {
  const { days, hours } = await dimensionParts(db, orgId, dimensions, edges, params);
  return sourceOf([days, hours]);
}

/**
 * dimensionsSql's read in its two parts: `days`, at most one row per stored day, dimension and key
 * (a caller whose buckets are days needs no GROUP BY over them), and `hours`, the rows of the hours
 * no stored day covers (several per key and bucket); null when a part reads nothing.
 */
export async function dimensionParts(
  db: Queryable,
  orgId: string,
  dimensions: (Dimension | 'all')[],
  edges: Date[],
  params: unknown[],
): Promise<{ days: string | null; hours: string | null }> {
  const p = placeholderFor(params);
  const { days, hours } = await coverageOf(db, orgId, edges);
  const split =
    hours.length > 0 && dimensions.some((d) => d !== 'all')
      ? await builtHoursOf(db, orgId, hours)
      : { built: [], rest: hours };
  const daily =
    days.length > 0
      ? dailyPart({ table: 'narrow', dimension: 'all', filter: null }, orgId, dimensions, days, p)
      : null;
  const hourly: string[] = [];
  for (const dimension of dimensions) {
    const plan = { table: 'narrow' as const, dimension, filter: null };
    if (dimension === 'all') {
      if (hours.length > 0) hourly.push(hourlyPart(plan, orgId, null, hours, {}, params));
      continue;
    }
    if (split.built.length > 0) hourly.push(builtHoursPart(plan, orgId, split.built, p));
    if (split.rest.length > 0) hourly.push(hourlyPart(plan, orgId, dimension, split.rest, {}, params));
  }
  return { days: daily, hours: hourly.length > 0 ? unionAll(hourly) : null };
}

/**
 * The day rows of `dimensions` for the stored days `days` (exact [bucket, day_end) pairs), each
 * dated at the start of its span in the report (so a time series puts it in the right bucket).
 * Ingest keeps integration and tool rows only for the events that name one: their '' key (none)
 * is the day's total less those rows, so a report's rows still add up to its total.
 */
export function dailyPart(
  plan: Extract<Plan, { table: 'narrow' }>,
  orgId: string,
  dimensions: (Dimension | 'all')[],
  days: Coverage['days'],
  p: (value: unknown) => string,
): string {
  const org = p(orgId);
  const filter = plan.filter;
  const keyFilter = filter ? (key: string) => ` AND ${keyCondition(filter, key, org, p)}` : () => '';
  const days_ = daysSql(days, p);
  const dense = dimensions.filter((d) => d === 'all' || !SPARSE_DIMENSIONS.includes(d));
  const parts: string[] = [];
  if (dense.length > 0) {
    const dims = p(dense);
    // LATERAL: one index range scan of (org_id, dimension, bucket, day_end) per day and dimension.
    parts.push(`SELECT r.dimension, s.f AS bucket, r.key, ${prefixed('r')}
            FROM ${days_}
           CROSS JOIN unnest(${dims}::text[]) AS dm (dimension)
           CROSS JOIN LATERAL (
             SELECT * FROM usage_daily_dim r
              WHERE r.org_id = ${org} AND r.dimension = dm.dimension AND r.bucket = s.b AND r.day_end = s.e${keyFilter('r.key')}
           ) AS r`);
  }
  for (const dim of dimensions.filter((d) => d !== 'all' && SPARSE_DIMENSIONS.includes(d))) {
    // The day's 'all' row counts for key '', each row of the dimension for its key and against '';
    // a day whose every call names one leaves no '' row.
    const signed = SUM_NAMES.split(', ')
      .map((c) => `sum(r.${c} * v.sign) AS ${c}`)
      .join(', ');
    parts.push(`SELECT '${dim}'::text AS dimension, s.f AS bucket, v.key, ${signed}
            FROM ${days_}
           CROSS JOIN LATERAL (
             SELECT * FROM usage_daily_dim r
              WHERE r.org_id = ${org} AND r.dimension IN ('all', '${dim}') AND r.bucket = s.b AND r.day_end = s.e
           ) AS r
           CROSS JOIN LATERAL (VALUES (r.key, 1), ('', -1)) AS v (key, sign)
           WHERE (r.dimension <> 'all' OR v.sign = 1)${keyFilter('v.key')}
           GROUP BY s.f, v.key HAVING sum(r.calls * v.sign) <> 0`);
  }
  return unionAll(parts);
}

/** The rollup key `key` matching `filter` as scope.ts whereOf matches the column (not the model). */
function keyCondition(filter: Filter, key: string, org: string, p: (value: unknown) => string): string {
  const v = p(filter.value);
  if (filter.dim === 'member') {
    // ARRAY(...) is computed once, and `= ANY` of it is an index condition (IN would filter rows).
    return `${key} = ANY (ARRAY(SELECT id FROM members WHERE org_id = ${org} AND (id = ${v} OR external_id = ${v})))`;
  }
  return filter.dim === 'provider' ? `${key} = lower(${v})` : `${key} = ${v}`;
}

/** The stored days `days` as rows (b, e, f): start and end as stored, start of span in the report. */
function daysSql(days: Coverage['days'], p: (value: unknown) => string): string {
  const starts = p(days.map((d) => d.start.toISOString()));
  const ends = p(days.map((d) => d.end.toISOString()));
  const froms = p(days.map((d) => d.from.toISOString()));
  return `unnest(${starts}::timestamptz[], ${ends}::timestamptz[], ${froms}::timestamptz[]) AS s (b, e, f)`;
}

/**
 * The keys of `dimensions` in the usage of one filter (a lone filter on another dimension, not the
 * model) inside `bounds`, as rows of a source (one per day or hour and key): the pair rows of the
 * days the build_usage_rollups job rolled up (kept after the retention purge), the wide rows
 * elsewhere (raw events for the tool). A day with no pair rows whose raw events were purged has
 * no keys left under a tool filter: they count as not seen.
 */
export async function filterKeysSql(
  db: Queryable,
  orgId: string,
  filter: Filter,
  dimensions: Dimension[],
  bounds: Interval,
  filters: UsageFilters,
  params: unknown[],
): Promise<string> {
  const p = placeholderFor(params);
  const paired = (await coverageOf(db, orgId, [bounds.start, bounds.end])).days.filter((d) => d.paired);
  const hours = hoursAround(bounds.start.getTime(), bounds.end.getTime(), paired);
  const keyed = `(VALUES ${dimensions.map((d) => `('${d}', ${DIMENSION_KEY[d]})`).join(', ')})`;
  const events = filter.dim === 'tool' || filters.tool !== undefined;
  return sourceOf([
    ...(paired.length > 0
      ? dimensions.map((dimension) => pairPart({ table: 'pair', dimension, filter }, orgId, paired, p))
      : []),
    hours.length > 0
      ? `SELECT d.dimension, w.bucket, d.key, ${SUM_NAMES}
           FROM ${wideRows(orgId, hours, filters, params, events)} AS w CROSS JOIN LATERAL ${keyed} AS d (dimension, key)`
      : null,
  ]);
}

/** The pair rows of the plan's filter and grouped dimension for the paired days `days`. */
function pairPart(
  plan: Extract<Plan, { table: 'pair' }>,
  orgId: string,
  days: Coverage['days'],
  p: (value: unknown) => string,
): string {
  const org = p(orgId);
  const filterDim = p(plan.filter.dim);
  const dim = p(plan.dimension);
  return `SELECT r.dimension, s.f AS bucket, r.key, ${prefixed('r')}
            FROM ${daysSql(days, p)}
           CROSS JOIN LATERAL (
             SELECT * FROM usage_daily_pair r
              WHERE r.org_id = ${org} AND r.filter_dim = ${filterDim} AND ${keyCondition(plan.filter, 'r.filter_key', org, p)}
                AND r.dimension = ${dim} AND r.bucket = s.b AND r.day_end = s.e
           ) AS r`;
}

const HOUR_MS = 3_600_000;

/**
 * The hours of `hours` whose rows by dimension (usage_hourly_dim) hold all of their events (the
 * marker still counts what usage_hourly_total counts), and the rest of `hours` as intervals.
 */
export async function builtHoursOf(
  db: Queryable,
  orgId: string,
  hours: Interval[],
): Promise<{ built: Date[]; rest: Interval[] }> {
  const rows = await db.query<{ bucket: Date }>(
    `SELECT m.bucket FROM unnest($2::timestamptz[], $3::timestamptz[]) AS s (lo, hi)
      CROSS JOIN LATERAL (
        SELECT m.bucket FROM usage_hour_dims m
          JOIN usage_hourly_total t ON t.org_id = m.org_id AND t.bucket = m.bucket AND t.calls = m.calls
         WHERE m.org_id = $1 AND m.bucket >= s.lo AND m.bucket < s.hi
      ) AS m`,
    [orgId, hours.map((h) => h.start.toISOString()), hours.map((h) => h.end.toISOString())],
  );
  const built = new Set(rows.map((r) => new Date(r.bucket).getTime()));
  const rest: Interval[] = [];
  for (const h of hours) {
    let from = h.start.getTime();
    for (let at = from; at < h.end.getTime(); at += HOUR_MS) {
      if (!built.has(at)) continue;
      if (at > from) rest.push({ start: new Date(from), end: new Date(at) });
      from = at + HOUR_MS;
    }
    if (h.end.getTime() > from) rest.push({ start: new Date(from), end: h.end });
  }
  return { built: [...built].sort((a, b) => a - b).map((t) => new Date(t)), rest };
}

/** The built hourly rows of the plan's dimension (under its filter on that same dimension). */
function builtHoursPart(
  plan: Extract<Plan, { table: 'narrow' }>,
  orgId: string,
  hours: Date[],
  p: (value: unknown) => string,
): string {
  const org = p(orgId);
  const dim = p(plan.dimension);
  const filter = plan.filter ? ` AND ${keyCondition(plan.filter, 'h.key', org, p)}` : '';
  return `SELECT h.dimension, h.bucket, h.key, ${prefixed('h')}
            FROM usage_hourly_dim h
           WHERE h.org_id = ${org} AND h.dimension = ${dim} AND h.bucket = ANY (${p(hours.map((h) => h.toISOString()))}::timestamptz[])${filter}`;
}

/**
 * The hours `hours` of one dimension (the wide rollup, under the plan's filter) or of the org total
 * (`usage_hourly_total`, when neither a dimension nor a filter is asked for).
 */
export function hourlyPart(
  plan: Extract<Plan, { table: 'narrow' | 'pair' }>,
  orgId: string,
  by: Dimension | null,
  hours: Interval[],
  filters: UsageFilters,
  params: unknown[],
): string {
  const p = placeholderFor(params);
  if (plan.dimension === 'all') {
    const org = p(orgId);
    return `SELECT 'all'::text AS dimension, t.bucket, ''::text AS key, ${prefixed('t')}
              FROM usage_hourly_total t WHERE t.org_id = ${org} AND (${intervalsSql('t.bucket', hours, params)})`;
  }
  // The wide rows (raw events for the tool) under the usual WHERE clause, inside the intervals.
  const events = plan.dimension === 'tool' || filters.tool !== undefined;
  const rows = wideRows(orgId, hours, filters, params, events);
  const keyOf = by ? DIMENSION_KEY[by] : "''";
  return `SELECT '${plan.dimension}'::text AS dimension, bucket, ${keyOf} AS key, ${SUM_NAMES} FROM ${rows} AS w`;
}
