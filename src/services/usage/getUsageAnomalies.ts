/**
 * Unusual spikes of daily spend: for each of the last `days` local days (today so far included), the
 * spend of the org, of each member and of each feature against a robust baseline of the 28 days
 * before that day: median and MAD (median absolute deviation), scored as in domain/forecast.ts
 * (`robustScore`), with a severity. Only spikes upward are reported, newest and strongest first.
 *
 * Spend is what the org pays in: credits, USD for BYOM, and calls for BYOK (which has no cost).
 * Daily values come from the rollups as the time series reads them (stored org-local days, hours
 * for the rest), so they equal the daily totals exactly; statistics run on numbers, the amounts shown are the exact decimal strings.
 */
import { dateIn } from '../../domain/calendar.ts';
import { robustScore, type Severity } from '../../domain/forecast.ts';
import { decimalUnits, formatUnits } from '../../domain/money.ts';
import { startOfLocalDay } from '../../domain/periods.ts';
import { floorHour } from '../../domain/ranges.ts';
import type { Ctx } from '../context.ts';
import { COST_SCALE, labelsFor, loadScope } from './scope.ts';
import { dimensionParts, unionAll } from './source.ts';

const DAY_MS = 86_400_000;
export const BASELINE_DAYS = 28;

export interface AnomalyQuery {
  days: number;
}

interface Anomaly {
  date: string;
  scope: 'org' | 'member' | 'feature';
  key: string;
  label: string;
  value: string;
  median: string;
  mad: string;
  score: number;
  severity: Severity;
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
        scope: scopeName,
        key,
        label,
        value: formatUnits(values[i]!, scale),
        median: show(r.median),
        mad: show(r.mad),
        score: Math.round(r.score * 100) / 100,
        severity: r.severity,
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
    ...(days ? [`SELECT dimension, ${bucketOf}, key, ${measure}::text AS value FROM (${days}) AS d`] : []),
    ...(hours
      ? [
          `SELECT dimension, ${bucketOf}, key, sum(${measure})::text AS value FROM (${hours}) AS h GROUP BY 1, 2, 3`,
        ]
      : []),
  ];
  const rows =
    reads.length === 0
      ? []
      : await ctx.db.read.query<{
          dimension: 'all' | 'member' | 'feature';
          i: number;
          key: string;
          value: string;
        }>(unionAll(reads), params);
  const series = new Map<'all' | 'member' | 'feature', Map<string, bigint[]>>(
    (['all', 'member', 'feature'] as const).map((d) => [d, new Map()]),
  );
  for (const r of rows) {
    const perKey = series.get(r.dimension)!;
    const values =
      perKey.get(r.key) ??
      perKey
        .set(
          r.key,
          dates.map(() => 0n),
        )
        .get(r.key)!;
    values[r.i - 1]! += unit === 'usd' ? decimalUnits(r.value, COST_SCALE) : BigInt(r.value);
  }
  const [memberLabels, featureLabels] = await Promise.all(
    (['member', 'feature'] as const).map((d) => labelsFor(ctx.db.read, orgId, d, [...series.get(d)!.keys()])),
  );
  for (const [dimension, perKey] of series) {
    const labels = dimension === 'member' ? memberLabels! : featureLabels!;
    for (const [key, values] of perKey) {
      evaluate(
        dimension === 'all' ? 'org' : dimension,
        key,
        dimension === 'all' ? org.name : (labels.get(key)?.label ?? key),
        values,
      );
    }
  }
  out.sort((a, b) => (a.date !== b.date ? (a.date < b.date ? 1 : -1) : b.score - a.score));
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
      'score = (value - median) / max(1.4826 x MAD, 10 % of the median, a minimum); low >= 3.5, medium >= 6, high >= 10',
    data: out,
  };
}
export type UsageAnomalies = Awaited<ReturnType<typeof getUsageAnomalies>>;
