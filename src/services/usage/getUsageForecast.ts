/**
 * The spend forecast: the next 30 days and the end of the current month, conservative / likely /
 * aggressive, from the org's daily spend in its time zone (method: domain/forecast.ts, also in the
 * answer's `method`), and the projected run-out of the available credits.
 *
 * Amounts are in the org's unit (credits; USD for BYOM; tokens for BYOK) rounded ONCE to whole
 * units (micro-credits, 10^-12 USD, tokens), with the currency equivalent of credits computed
 * exactly from the rounded credits. The month so far is actual spend, not an estimate.
 */
import { dateIn } from '../../domain/calendar.ts';
import { FORECAST_METHOD, forecastDaily, horizon } from '../../domain/forecast.ts';
import { decimalUnits, formatCredits, formatUnits, Ratio } from '../../domain/money.ts';
import { startOfLocalDay } from '../../domain/periods.ts';
import { creditsToMoney } from '../../domain/pricing.ts';
import { COST_SCALE } from '../../domain/usageTotals.ts';
import type { Ctx } from '../context.ts';
import { available, readBalance } from '../ledger/balances.ts';
import { getUsageTimeseries } from './getUsageTimeseries.ts';
import { loadScope, type Unit } from './scope.ts';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** Days of history the model is fitted on, at most. */
export const HISTORY_DAYS = 56;
/** How far ahead a run-out date is looked for. */
const RUN_OUT_HORIZON = 366;

const isoDate = (d: Date) => d.toISOString().slice(0, 10);

export async function getUsageForecast(ctx: Ctx, orgId: string, now = new Date()) {
  const scope = await loadScope(ctx, orgId, { range: '1d' }, now);
  const { org, unit } = scope;
  const zone = org.timezone;
  const today = dateIn(zone, now);
  const todayUtc = new Date(`${today}T00:00:00Z`);
  const first = isoDate(new Date(todayUtc.getTime() - HISTORY_DAYS * DAY_MS));
  const series = await getUsageTimeseries(
    ctx,
    orgId,
    { range: 'custom', from: first, to: today, granularity: 'day', split_limit: 1, cumulative: false },
    now,
  );
  const units = (x: { credits: string; cost: string; tokens: { total: number } }) =>
    unit === 'credits'
      ? decimalUnits(x.credits, 6)
      : unit === 'usd'
        ? decimalUnits(x.cost, COST_SCALE)
        : BigInt(x.tokens.total);
  const days = series.data.map((b) => {
    const date = dateIn(zone, new Date(new Date(b.start).getTime() + HOUR_MS - 1));
    return { date, start: new Date(b.start), end: new Date(b.end), value: units(b) };
  });
  const todayRow = days.find((d) => d.date === today);
  let history = days.filter((d) => d.date < today);
  // A young org: fit from its first day of spend, not from weeks of nothing.
  const firstSpend = history.findIndex((d) => d.value > 0n);
  history = firstSpend < 0 ? [] : history.slice(firstSpend);
  const weekday = (date: string) => new Date(`${date}T00:00:00Z`).getUTCDay();
  const model = forecastDaily(
    history.map((d) => Number(d.value)),
    history.map((d) => weekday(d.date)),
  );
  // "ahead" counts days after the last history day: today is 1 (yesterday is the last history day
  // unless the org has no history, when the model is flat zero anyway).
  const todayStart = todayRow?.start ?? now;
  const todayEnd = todayRow?.end ?? now;
  const elapsed = Math.min(
    1,
    Math.max(
      0,
      (now.getTime() - todayStart.getTime()) / Math.max(1, todayEnd.getTime() - todayStart.getTime()),
    ),
  );
  const todayAhead = history.length > 0 ? daysBetween(history[history.length - 1]!.date, today) : 1;

  const next30 = [
    { ahead: todayAhead, weight: 1 - elapsed },
    ...Array.from({ length: 29 }, (_, i) => ({ ahead: todayAhead + 1 + i, weight: 1 })),
    { ahead: todayAhead + 30, weight: elapsed },
  ];
  const [y, m] = today.split('-').map(Number) as [number, number];
  const lastOfMonth = new Date(Date.UTC(y, m, 0)).getUTCDate();
  const restOfMonth = [
    { ahead: todayAhead, weight: 1 - elapsed },
    ...Array.from({ length: lastOfMonth - Number(today.slice(8, 10)) }, (_, i) => ({
      ahead: todayAhead + 1 + i,
      weight: 1,
    })),
  ];
  const monthToDate = days
    .filter((d) => d.date.slice(0, 7) === today.slice(0, 7))
    .reduce((acc, d) => acc + d.value, 0n);

  const amount = (value: bigint) => amountView(value, unit, org.credit_value);
  const scenarios = (h: { conservative: number; likely: number; aggressive: number }, plus = 0n) => ({
    conservative: amount(plus + round(h.conservative)),
    likely: amount(plus + round(h.likely)),
    aggressive: amount(plus + round(h.aggressive)),
  });

  let runOut: {
    available: string;
    likely_date: string | null;
    earliest_date: string | null;
    latest_date: string | null;
  } | null = null;
  if (unit === 'credits') {
    const free = available(await readBalance(ctx.db.read, orgId));
    const dateFor = (pick: 'likely' | 'aggressive' | 'conservative') => {
      if (free <= 0n) return today;
      const ahead: { ahead: number; weight: number }[] = [];
      for (let k = 0; k < RUN_OUT_HORIZON; k++) {
        ahead.push({ ahead: todayAhead + k, weight: k === 0 ? 1 - elapsed : 1 });
        if (round(horizon(model, ahead)[pick]) >= free)
          return isoDate(new Date(todayUtc.getTime() + k * DAY_MS));
      }
      return null;
    };
    runOut = {
      available: formatCredits(free),
      likely_date: dateFor('likely'),
      earliest_date: dateFor('aggressive'),
      latest_date: dateFor('conservative'),
    };
  }
  const monthEnd = startOfLocalDay(zone, m === 12 ? y + 1 : y, m === 12 ? 1 : m + 1, 1);
  return {
    object: 'usage_forecast' as const,
    org_id: orgId,
    timezone: zone,
    unit,
    currency: scope.currency,
    method: FORECAST_METHOD,
    as_of: now.toISOString(),
    history_days: history.length,
    weekday_factors: model.weekdayFactors.map((f) => f.toFixed(3)),
    trend_per_day: amount(model.slope < 0 ? -round(-model.slope) : round(model.slope)).amount,
    today: { date: today, actual: amount(todayRow?.value ?? 0n), elapsed: elapsed.toFixed(3) },
    next_30_days: {
      start: now.toISOString(),
      end: new Date(now.getTime() + 30 * DAY_MS).toISOString(),
      ...scenarios(horizon(model, next30)),
    },
    end_of_month: {
      month: today.slice(0, 7),
      end: monthEnd.toISOString(),
      month_to_date: amount(monthToDate),
      ...scenarios(horizon(model, restOfMonth), monthToDate),
    },
    run_out: runOut,
  };
}
export type UsageForecast = Awaited<ReturnType<typeof getUsageForecast>>;

/** An estimate rounded once, half to even, to whole units; never negative. */
function round(x: number): bigint {
  if (!Number.isFinite(x) || x <= 0) return 0n;
  const whole = Math.floor(x);
  const rest = x - whole;
  const r = rest > 0.5 || (rest === 0.5 && whole % 2 === 1) ? whole + 1 : whole;
  return BigInt(r);
}

const daysBetween = (a: string, b: string) =>
  Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / DAY_MS);

/** An amount in the org's unit and its currency equivalent, as decimal strings. */
function amountView(value: bigint, unit: Unit, creditValue: string): { amount: string; cost: string } {
  if (unit === 'credits') {
    return {
      amount: formatCredits(value),
      cost: formatUnits(
        Ratio.parse(creditsToMoney(value, Ratio.parse(creditValue))).roundHalfEven(COST_SCALE),
        COST_SCALE,
      ),
    };
  }
  if (unit === 'usd') {
    const usd = formatUnits(value, COST_SCALE);
    return { amount: usd, cost: usd };
  }
  return { amount: value.toString(), cost: '0' };
}
