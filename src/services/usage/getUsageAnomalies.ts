/**
 * Unusual spikes of daily spend: for each of the last `days` local days (today so far included), the
 * spend of the org, of each member and of each feature against a robust baseline of the 28 days
 * before that day: median and MAD (median absolute deviation), scored as in domain/forecast.ts
 * (`robustScore`), with a severity. Spikes of the error rate (the share of failed calls,
 * failures.ts) of the org and of each feature are scored alike (`errorRateSpike`); days whose raw
 * events were purged have no known failures and stay out of its baseline. Only spikes upward are
 * reported, newest and strongest first.
 *
 * Spend is what the org pays in: credits, USD for BYOM, and calls for BYOK (which has no cost).
 * Daily values come from the rollups as the time series reads them (stored org-local days, hours
 * for the rest), so they equal the daily totals exactly; statistics run on numbers, the amounts shown are the exact decimal strings.
 */
import { dateIn } from '../../domain/calendar.ts';
import {
  type DayCalls,
  errorRateSpike,
  MIN_FAILED_CALLS,
  MIN_RATE_BASELINE_DAYS,
  robustScore,
  type Severity,
} from '../../domain/forecast.ts';
import { decimalUnits, formatUnits } from '../../domain/money.ts';
import { startOfLocalDay } from '../../domain/periods.ts';
import { floorHour } from '../../domain/ranges.ts';
import { COST_SCALE } from '../../domain/usageTotals.ts';
import type { Ctx } from '../context.ts';
import { failedSql, failuresView } from './failures.ts';
import { labelsFor, loadScope } from './scope.ts';
import { dimensionParts, unionAll } from './source.ts';

const DAY_MS = 86_400_000;
export const BASELINE_DAYS = 28;

export interface AnomalyQuery {
  days: number;
}

interface Anomaly {
  date: string;
  /** What spiked: the spend (in the unit), or the error rate (in percent). */
  metric: 'spend' | 'error_rate';
  scope: 'org' | 'member' | 'feature';
  key: string;
  label: string;
  value: string;
  median: string;
  mad: string;
  score: number;
  severity: Severity;
  /** Error rate spikes: the day's failed calls and calls (null for spend). */
  failed_calls: number | null;
  calls: number | null;
}

type SeriesDimension = 'all' | 'member' | 'feature';
/** A key's spend and calls on each day of the report's dates. */
interface Series {
  values: bigint[];
  calls: bigint[];
}

export async function getUsageAnomalies(ctx: Ctx, orgId: string, query: AnomalyQuery, now = new Date()) {
  const scope = await loadScope(ctx, orgId, { range: '1d' }, now);
  const { org, unit } = scope;
  const zone = org.timezone;
  const today = dateIn(zone, now);
  const todayUtc = Date.parse(`${today}T00:00:00Z`);
  const first = new Date(todayUtc - (query.days - 1 + BASELINE_DAYS) * DAY_MS).toISOString().slice(0, 10);
  // Units the score is computed in, and the smallest baseline spread that counts.
  const scale = unit === 'credits' ? 6 : unit === 'usd' ? COST_SCALE : 0;
  const minScale = unit === 'credits' ? 1_000_000 : unit === 'usd' ? 10 ** 10 : 10;
  const show = (v: number) => formatUnits(BigInt(Math.round(v)), scale);

  const out: Anomaly[] = [];
  /** `values`: the key's spend on each day of `dates`. */
  const evaluate = (scopeName: Anomaly['scope'], key: string, label: string, values: bigint[]) => {
    const numbers = values.map(Number);
    for (let i = BASELINE_DAYS; i < values.length; i++) {
      const r = robustScore(numbers[i]!, numbers.slice(i - BASELINE_DAYS, i), minScale);
      if (!r.severity) continue;
      out.push({
        date: dates[i]!,
        metric: 'spend',
        scope: scopeName,
        key,
        label,
        value: formatUnits(values[i]!, scale),
        median: show(r.median),
        mad: show(r.mad),
        score: Math.round(r.score * 100) / 100,
        severity: r.severity,
        failed_calls: null,
        calls: null,
      });
    }
  };
  /** `days`: the key's calls and failed calls on each day of `dates`, null where unknown. */
  const evaluateErrors = (
    scopeName: 'org' | 'feature',
    key: string,
    label: string,
    days: (DayCalls | null)[],
  ) => {
    for (let i = BASELINE_DAYS; i < days.length; i++) {
      const day = days[i];
      const spike = day ? errorRateSpike(day, days.slice(i - BASELINE_DAYS, i)) : null;
      if (!day || !spike) continue;
      // The breakdowns' own view: failed calls at most the calls, and their share to a tenth.
      const { failed_calls, error_rate } = failuresView(BigInt(day.failed), BigInt(day.calls), null);
      out.push({
        date: dates[i]!,
        metric: 'error_rate',
        scope: scopeName,
        key,
        label,
        value: error_rate,
        median: percentOf(spike.median),
        mad: percentOf(spike.mad),
        score: Math.round(spike.score * 100) / 100,
        severity: spike.severity,
        failed_calls,
        calls: day.calls,
      });
    }
  };
  // Local days from `first` to today, on whole UTC hours; one row per day and key.
  const dates = Array.from({ length: query.days + BASELINE_DAYS }, (_, i) =>
    new Date(Date.parse(`${first}T00:00:00Z`) + i * DAY_MS).toISOString().slice(0, 10),
  );
  const edges = [...dates, new Date(todayUtc + DAY_MS).toISOString().slice(0, 10)].map((d) => {
    const [y, m, dd] = d.split('-').map(Number) as [number, number, number];
    return floorHour(startOfLocalDay(zone, y, m, dd));
  });
  // The org, member and feature series in one read. Stored days are one row per day and key
  // already: only the hours are summed in SQL (sorting 8 000 day rows to group them took longer
  // than reading them); the rows of a key and day add up below.
  const params: unknown[] = [];
  const { days, hours } = await dimensionParts(
    ctx.db.read,
    orgId,
    ['all', 'member', 'feature'],
    edges,
    params,
  );
  params.push(edges.map((e) => e.toISOString()));
  const bucketOf = `width_bucket(bucket, $${params.length}::timestamptz[]) AS i`;
  // Only the figure spend is measured in.
  const measure = unit === 'credits' ? 'credits' : unit === 'usd' ? 'cost' : 'calls';
  const reads = [
    ...(days
      ? [
          `SELECT dimension, ${bucketOf}, key, ${measure}::text AS value, calls::text AS calls FROM (${days}) AS d`,
        ]
      : []),
    ...(hours
      ? [
          `SELECT dimension, ${bucketOf}, key, sum(${measure})::text AS value, sum(calls)::text AS calls
             FROM (${hours}) AS h GROUP BY 1, 2, 3`,
        ]
      : []),
  ];
  const [rows, failures] = await Promise.all([
    reads.length === 0
      ? []
      : ctx.db.read.query<{
          dimension: SeriesDimension;
          i: number;
          key: string;
          value: string;
          calls: string;
        }>(unionAll(reads), params),
    failuresByDay(ctx, orgId, edges),
  ]);
  const series = new Map<SeriesDimension, Map<string, Series>>(
    (['all', 'member', 'feature'] as const).map((d) => [d, new Map()]),
  );
  for (const r of rows) {
    const perKey = series.get(r.dimension)!;
    let s = perKey.get(r.key);
    if (!s) {
      s = { values: dates.map(() => 0n), calls: dates.map(() => 0n) };
      perKey.set(r.key, s);
    }
    s.values[r.i - 1]! += unit === 'usd' ? decimalUnits(r.value, COST_SCALE) : BigInt(r.value);
    s.calls[r.i - 1]! += BigInt(r.calls);
  }
  const [memberLabels, featureLabels] = await Promise.all(
    (['member', 'feature'] as const).map((d) => labelsFor(ctx.db.read, orgId, d, [...series.get(d)!.keys()])),
  );
  for (const [dimension, perKey] of series) {
    const labels = dimension === 'member' ? memberLabels! : featureLabels!;
    for (const [key, s] of perKey) {
      const scopeName = dimension === 'all' ? 'org' : dimension;
      const label = dimension === 'all' ? org.name : (labels.get(key)?.label ?? key);
      evaluate(scopeName, key, label, s.values);
      if (scopeName === 'member') continue;
      const failed = scopeName === 'org' ? failures.org : failures.byFeature.get(key);
      evaluateErrors(
        scopeName,
        key,
        label,
        s.calls.map((calls, i) =>
          i < failures.firstKnown ? null : { calls: Number(calls), failed: failed?.[i] ?? 0 },
        ),
      );
    }
  }
  // Newest first, strongest first; ties in a fixed order (org, member, feature; then by key).
  const rank = { org: 0, member: 1, feature: 2 };
  out.sort(
    (a, b) =>
      (a.date !== b.date ? (a.date < b.date ? 1 : -1) : b.score - a.score) ||
      rank[a.scope] - rank[b.scope] ||
      (a.metric < b.metric ? -1 : a.metric > b.metric ? 1 : 0) ||
      (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
  );
  return {
    object: 'usage_anomalies' as const,
    org_id: orgId,
    timezone: zone,
    unit,
    currency: scope.currency,
    measure: unit === 'tokens' ? ('calls' as const) : unit,
    baseline_days: BASELINE_DAYS,
    days: query.days,
    method:
      'daily spend of the org, each member and each feature against the median and MAD of the 28 days before; ' +
      'score = (value - median) / max(1.4826 x MAD, 10 % of the median, a minimum); low >= 3.5, medium >= 6, high >= 10; ' +
      'error rate (percent of calls that failed) of the org and each feature alike, with a minimum spread of 2 points, ' +
      `on days with ${MIN_FAILED_CALLS}+ failed calls against ${MIN_RATE_BASELINE_DAYS}+ earlier days with calls`,
    data: out,
  };
}

/** A statistic in percent with one decimal, written as the exact rates are ('50', '2.5'). */
const percentOf = (v: number) => String(Math.round(v * 10) / 10);

/**
 * The org's failed calls per day of `edges` (1-based bucket i of the report's days at i - 1), in all
 * and per feature, and the first day whose raw events are all kept (earlier days were purged, so
 * their failures are unknown).
 */
async function failuresByDay(ctx: Ctx, orgId: string, edges: Date[]) {
  const start = edges[0]!;
  const end = edges.at(-1)!;
  const [rows, [purge]] = await Promise.all([
    ctx.db.read.query<{ i: number; feature: string; failed: number }>(
      `SELECT width_bucket(e.occurred_at, $4::timestamptz[]) AS i, e.feature, count(*)::int AS failed
         FROM events e
        WHERE e.org_id = $1 AND e.occurred_at >= $2 AND e.occurred_at < $3 AND ${failedSql('e.metadata')}
        GROUP BY 1, 2`,
      [orgId, start.toISOString(), end.toISOString(), edges.map((e) => e.toISOString())],
    ),
    ctx.db.read.query<{ purged_before: Date | null }>(
      'SELECT purged_before FROM raw_event_purges WHERE org_id = $1',
      [orgId],
    ),
  ]);
  const days = edges.length - 1;
  const org = Array.from({ length: days }, () => 0);
  const byFeature = new Map<string, number[]>();
  for (const r of rows) {
    org[r.i - 1]! += r.failed;
    let perDay = byFeature.get(r.feature);
    if (!perDay) {
      perDay = Array.from({ length: days }, () => 0);
      byFeature.set(r.feature, perDay);
    }
    perDay[r.i - 1]! += r.failed;
  }
  const purgedBefore = purge?.purged_before?.getTime() ?? Number.NEGATIVE_INFINITY;
  const firstKnown = edges.findIndex((e) => e.getTime() >= purgedBefore);
  return { org, byFeature, firstKnown: firstKnown === -1 ? days : firstKnown };
}
export type UsageAnomalies = Awaited<ReturnType<typeof getUsageAnomalies>>;
