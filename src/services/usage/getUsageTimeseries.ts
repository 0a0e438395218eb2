/**
 * The usage chart: hour, day or week buckets in the org's time zone (24 h hourly, 7 d daily, 30 d
 * weekly by default), optionally split by surface (web vs CLI), feature, model, member or another
 * dimension, and a cumulative mode for the cumulative spend chart. Empty buckets are listed with
 * zeros; each bucket's groups add up to the bucket and the buckets to `total`, exactly.
 *
 * Buckets come from the rollups (the narrow ones unless filters on other dimensions than the split
 * need the wide one; see source.ts), whose rows are UTC hours or whole UTC days inside one bucket: an hour belongs to the local day
 * (or week) it falls in, except in zones with a half-hour or 45-minute offset, where an hour
 * belongs to the day its end falls in (a day there starts at the UTC hour before local midnight,
 * as in domain/ranges.ts).
 */
import { floorHour } from '../../domain/ranges.ts';
import { addTotals, type Totals, zeroTotals } from '../../domain/usageTotals.ts';
import type { Ctx } from '../context.ts';
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
  weightOf,
} from './scope.ts';
import { planOf, sourceSql } from './source.ts';

export const OTHER_KEY = '__other__';

export interface TimeseriesQuery extends UsageQuery {
  split?: Dimension | undefined;
  /** Groups beyond the top N of the whole range are summed into one "Other" group. */
  split_limit: number;
  cumulative: boolean;
}

export async function getUsageTimeseries(ctx: Ctx, orgId: string, query: TimeseriesQuery, now = new Date()) {
  const scope = await loadScope(ctx, orgId, query, now);
  const { range } = scope;
  const g = range.granularity;
  // Hours are hours everywhere; days and weeks are the org's.
  const zone = g === 'hour' ? 'UTC' : scope.org.timezone;
  // The local bucket an hour row belongs to: that of its last instant (see the header).
  const localOf = (ts: string) =>
    `date_trunc('${g}', (${ts} + interval '1 hour' - interval '1 microsecond') AT TIME ZONE $2)`;
  const buckets = await ctx.db.read.query<{ local: string; start: Date }>(
    `SELECT to_char(s, 'YYYY-MM-DD"T"HH24:MI:SS') AS local, (s AT TIME ZONE $2) AS start
       FROM generate_series(${localOf('$1::timestamptz')}, ${localOf("($3::timestamptz - interval '1 hour')")},
                            interval '1 ${g}') AS s`,
    [range.start.toISOString(), zone, range.end.toISOString()],
  );
  // Bucket edges: whole UTC hours inside the range (the first bucket may start mid-week).
  const edges = [range.start, ...buckets.slice(1).map((b) => floorHour(new Date(b.start))), range.end];
  const params: unknown[] = [];
  const src = await sourceSql(
    ctx.db.read,
    planOf(query.split ?? null, query),
    orgId,
    query.split ?? null,
    edges,
    query,
    params,
  );
  // Sums per bucket and key; a row is in the bucket whose edges hold it (a day row lies inside one
  // bucket, dated at the start of its span in the range).
  params.push(edges.map((e) => e.toISOString()));
  const grouped = await ctx.db.read.query<SumRow & { i: number; key: string }>(
    `SELECT width_bucket(bucket, $${params.length}::timestamptz[]) AS i, key, ${SUM_COLUMNS}
       FROM ${src} AS u GROUP BY 1, 2`,
    params,
  );
  const rows = grouped.map((r) => ({ key: r.key, local: buckets[r.i - 1]!.local, t: totalsOf(r) }));

  // The split groups shown: the top N of the whole range by what the org pays in, the rest "Other".
  const byKey = new Map<string, Totals>();
  for (const r of rows) addTotals(byKey.get(r.key) ?? byKey.set(r.key, zeroTotals()).get(r.key)!, r.t);
  const ranked = [...byKey.entries()]
    .sort(([ka, a], [kb, b]) => {
      const wa = weightOf(a, scope.unit);
      const wb = weightOf(b, scope.unit);
      return wa > wb ? -1 : wa < wb ? 1 : ka < kb ? -1 : ka > kb ? 1 : 0;
    })
    .map(([k]) => k);
  const shown = query.split ? ranked.slice(0, query.split_limit) : [];
  const folded = query.split !== undefined && ranked.length > shown.length;
  const groupOf = (key: string) => (shown.includes(key) ? key : OTHER_KEY);
  const labels = query.split ? await labelsFor(ctx.db.read, orgId, query.split, shown) : new Map();
  const series = [
    ...shown.map((key) => ({ key, label: labels.get(key)?.label ?? key })),
    ...(folded ? [{ key: OTHER_KEY, label: 'Other' }] : []),
  ];

  const perBucket = new Map<string, { total: Totals; groups: Map<string, Totals> }>();
  for (const r of rows) {
    let b = perBucket.get(r.local);
    if (!b) {
      b = { total: zeroTotals(), groups: new Map() };
      perBucket.set(r.local, b);
    }
    const t = r.t;
    addTotals(b.total, t);
    if (query.split) {
      const k = groupOf(r.key);
      addTotals(b.groups.get(k) ?? b.groups.set(k, zeroTotals()).get(k)!, t);
    }
  }

  const running = { total: zeroTotals(), groups: new Map(series.map((s) => [s.key, zeroTotals()])) };
  const grand = zeroTotals();
  const data = buckets.map((b, i) => {
    const own = perBucket.get(b.local) ?? { total: zeroTotals(), groups: new Map<string, Totals>() };
    addTotals(grand, own.total);
    const start = edges[i]!;
    const end = edges[i + 1]!;
    let figures = own.total;
    let groups = series.map((s) => ({ key: s.key, t: own.groups.get(s.key) ?? zeroTotals() }));
    if (query.cumulative) {
      figures = { ...addTotals(running.total, own.total) };
      groups = groups.map(({ key, t }) => ({ key, t: { ...addTotals(running.groups.get(key)!, t) } }));
    }
    const view = figuresView(figures, scope.operator);
    return {
      start: start.toISOString(),
      end: end.toISOString(),
      ...view,
      ...(query.split
        ? {
            groups: groups.map(({ key, t }) => {
              const g = figuresView(t, scope.operator);
              return { key, credits: g.credits, cost: g.cost, calls: g.calls };
            }),
          }
        : {}),
    };
  });
  const total = figuresView(grand, scope.operator);
  return {
    object: 'usage_timeseries' as const,
    org_id: orgId,
    range: rangeView(range),
    granularity: g,
    timezone: scope.org.timezone,
    cumulative: query.cumulative,
    split: query.split ?? null,
    unit: scope.unit,
    currency: scope.currency,
    series,
    total: {
      credits: total.credits,
      cost: total.cost,
      provider_cost_usd: total.provider_cost_usd,
      calls: total.calls,
    },
    data,
  };
}
export type UsageTimeseries = Awaited<ReturnType<typeof getUsageTimeseries>>;
