/**
 * Unusual spikes of daily spend: for each of the last `days` local days (today so far included), the
 * spend of the org, of each member and of each feature against a robust baseline of the 28 days
 * before that day: median and MAD (median absolute deviation), scored as in domain/forecast.ts
 * (`robustScore`), with a severity. Only spikes upward are reported, newest and strongest first.
 *
 * Spend is what the org pays in: credits, USD for BYOM, and calls for BYOK (which has no cost).
 * Daily values come from the usage time series (narrow daily rollups), so they equal the daily
 * totals exactly; statistics run on numbers, the amounts shown are the exact decimal strings.
 */
import { dateIn } from '../../domain/calendar.ts';
import { robustScore, type Severity } from '../../domain/forecast.ts';
import { decimalUnits, formatUnits } from '../../domain/money.ts';
import type { Ctx } from '../context.ts';
import { getUsageTimeseries } from './getUsageTimeseries.ts';
import { COST_SCALE, type Dimension, loadScope } from './scope.ts';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
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
  const spendOf = (x: { credits: string; cost: string; calls: number }) =>
    unit === 'credits'
      ? decimalUnits(x.credits, 6)
      : unit === 'usd'
        ? decimalUnits(x.cost, COST_SCALE)
        : BigInt(x.calls);
  const show = (v: number) => formatUnits(BigInt(Math.round(v)), scale);

  const out: Anomaly[] = [];
  const evaluate = (
    scopeName: Anomaly['scope'],
    key: string,
    label: string,
    series: { date: string; value: bigint }[],
  ) => {
    for (let i = BASELINE_DAYS; i < series.length; i++) {
      const day = series[i]!;
      const baseline = series.slice(i - BASELINE_DAYS, i).map((d) => Number(d.value));
      const r = robustScore(Number(day.value), baseline, minScale);
      if (!r.severity) continue;
      out.push({
        date: day.date,
        scope: scopeName,
        key,
        label,
        value: formatUnits(day.value, scale),
        median: show(r.median),
        mad: show(r.mad),
        score: Math.round(r.score * 100) / 100,
        severity: r.severity,
      });
    }
  };
  for (const split of [null, 'member', 'feature'] as (Dimension | null)[]) {
    const ts = await getUsageTimeseries(
      ctx,
      orgId,
      {
        range: 'custom',
        from: first,
        to: today,
        granularity: 'day',
        ...(split ? { split } : {}),
        split_limit: 100_000,
        cumulative: false,
      },
      now,
    );
    const dates = ts.data.map((b) => dateIn(zone, new Date(new Date(b.start).getTime() + HOUR_MS - 1)));
    if (!split) {
      evaluate(
        'org',
        '',
        org.name,
        ts.data.map((b, i) => ({ date: dates[i]!, value: spendOf(b) })),
      );
      continue;
    }
    for (const s of ts.series) {
      evaluate(
        split as 'member' | 'feature',
        s.key,
        s.label,
        ts.data.map((b, i) => {
          const g = b.groups?.find((x) => x.key === s.key);
          return { date: dates[i]!, value: g ? spendOf(g) : 0n };
        }),
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
