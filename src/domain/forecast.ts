/**
 * Spend forecasting and spike detection on daily series. Statistics run on JavaScript numbers
 * (they estimate, they do not account); callers turn the estimates into amounts by rounding ONCE
 * to whole units of the org's unit (micro-credits, 10^-12 of the currency, tokens).
 *
 * FORECAST METHOD (`forecastDaily`), "weekly seasonality x linear trend":
 *   1. History: the last `n` complete local days (8 weeks when the org has them), oldest first.
 *   2. Weekday factors: s_w = mean of the days falling on weekday w / mean of all days (1 when the
 *      history is all zero), so a quiet weekend stays quiet.
 *   3. Trend: an ordinary least-squares line a + b*t through the deseasonalized days y_t / s_w(t)
 *      of the weekdays that spend at all.
 *   4. Likely: day t ahead = max(0, a + b*t) * s_w(t).
 *   5. Spread: sigma = standard deviation of the residuals y_t - fitted_t. Over a horizon of h days
 *      the sum's spread is taken as sigma * sqrt(h) (independent daily errors); conservative and
 *      aggressive are the likely sum -/+ 1.2816 sigma sqrt(h) (the 10th and 90th percentiles of a
 *      normal error), never below 0 nor, for conservative, below nothing more being spent.
 *
 * SPIKES (`robustScore`): today's value against the median and the MAD (median absolute deviation)
 * of the trailing days; score = (x - median) / max(1.4826 * MAD, floor), where the floor (10 % of
 * the median, or a minimum the caller gives in its units) keeps a flat baseline from turning any
 * change into an infinite score. Severity: >= 3.5 low, >= 6 medium, >= 10 high (Iglewicz and
 * Hoaglin's 3.5 as the first threshold).
 *
 * ERROR RATE SPIKES (`errorRateSpike`): a day's share of failed calls, in percent, scored the same
 * way against the rates of the trailing days that had calls, with a floor of 2 percentage points;
 * only days with at least 5 failed calls and baselines of at least 7 such days count, so a handful
 * of calls never makes a spike.
 */

export const FORECAST_METHOD =
  'weekly seasonality x linear trend: weekday factors (mean of each weekday / overall mean) over the last ' +
  'complete local days (up to 8 weeks), an ordinary least-squares trend line through the deseasonalized days, ' +
  'likely = max(0, trend) x weekday factor per future day; conservative / aggressive = likely -/+ 1.2816 x ' +
  'residual standard deviation x sqrt(days) (10th / 90th percentile of a normal error), floored at 0.';

export interface DailyModel {
  /** Expected value of the day `ahead` days after the last history day (1 = the next day). */
  likely(ahead: number): number;
  sigma: number;
  weekdayFactors: number[];
  /** Intercept and slope of the deseasonalized trend, per day, at the last history day. */
  level: number;
  slope: number;
}

/**
 * Fits the model on `history` (oldest first, one value per local day); `weekdays[i]` is the
 * weekday (0-6) of history[i]. Future day k (1-based) has weekday (weekdays[last] + k) % 7.
 */
export function forecastDaily(history: number[], weekdays: number[]): DailyModel {
  const n = history.length;
  const mean = n > 0 ? history.reduce((a, b) => a + b, 0) / n : 0;
  const factors = Array.from({ length: 7 }, (_, w) => {
    const days = history.filter((_, i) => weekdays[i] === w);
    if (mean === 0 || days.length === 0) return 1;
    return days.reduce((a, b) => a + b, 0) / days.length / mean;
  });
  // The trend is fitted on the days of weekdays that spend at all (a weekday factor of 0 says
  // nothing about the level).
  const points = history
    .map((y, t) => ({ t, s: factors[weekdays[t]!]!, y }))
    .filter((p) => p.s > 0)
    .map((p) => ({ t: p.t, z: p.y / p.s }));
  const m = points.length;
  let a = m > 0 ? points.reduce((acc, p) => acc + p.z, 0) / m : 0;
  let b = 0;
  if (m >= 2) {
    const tMean = points.reduce((acc, p) => acc + p.t, 0) / m;
    const zMean = a;
    let num = 0;
    let den = 0;
    for (const p of points) {
      num += (p.t - tMean) * (p.z - zMean);
      den += (p.t - tMean) ** 2;
    }
    b = den > 0 ? num / den : 0;
    a = zMean - b * tMean;
  }
  const fitted = (t: number, w: number) => Math.max(0, a + b * t) * factors[w]!;
  const residuals = history.map((y, t) => y - fitted(t, weekdays[t]!));
  const sigma = n >= 2 ? Math.sqrt(residuals.reduce((acc, r) => acc + r * r, 0) / (n - 1)) : 0;
  const lastWeekday = n > 0 ? weekdays[n - 1]! : 0;
  return {
    likely: (ahead) => fitted(n - 1 + ahead, (lastWeekday + ahead) % 7),
    sigma,
    weekdayFactors: factors,
    level: a + b * (n - 1),
    slope: b,
  };
}

/** 10th / 90th percentile of a normal error. */
export const Z_90 = 1.2816;

/** Conservative, likely and aggressive sums of days `from`..`to` ahead (inclusive, may be partial). */
export function horizon(
  model: DailyModel,
  days: { ahead: number; weight: number }[],
): { conservative: number; likely: number; aggressive: number } {
  const likely = days.reduce((acc, d) => acc + model.likely(d.ahead) * d.weight, 0);
  const span = days.reduce((acc, d) => acc + d.weight, 0);
  const spread = Z_90 * model.sigma * Math.sqrt(span);
  return { conservative: Math.max(0, likely - spread), likely, aggressive: likely + spread };
}

export function median(values: number[]): number {
  if (values.length === 0) return 0;
  // Insertion sort: the lists are short (28 baseline days) and there are thousands of them per
  // anomaly report; Array.prototype.sort took 3 µs for one such list, this takes 0.7.
  const s = values.slice();
  for (let i = 1; i < s.length; i++) {
    const v = s[i]!;
    let j = i - 1;
    for (; j >= 0 && s[j]! > v; j--) s[j + 1] = s[j]!;
    s[j + 1] = v;
  }
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export type Severity = 'low' | 'medium' | 'high';

export function robustScore(
  value: number,
  baseline: number[],
  minScale: number,
): { median: number; mad: number; score: number; severity: Severity | null } {
  const m = median(baseline);
  const mad = median(baseline.map((v) => Math.abs(v - m)));
  const scale = Math.max(1.4826 * mad, 0.1 * m, minScale);
  const score = scale > 0 ? (value - m) / scale : 0;
  const severity: Severity | null =
    score >= 10 ? 'high' : score >= 6 ? 'medium' : score >= 3.5 ? 'low' : null;
  return { median: m, mad, score, severity };
}

/** A day's calls and how many of them failed. */
export interface DayCalls {
  calls: number;
  failed: number;
}

/** Fewest failed calls on a day for its error rate to count as a spike. */
export const MIN_FAILED_CALLS = 5;
/** Fewest trailing days with calls an error rate is scored against. */
export const MIN_RATE_BASELINE_DAYS = 7;
/** The smallest spread of error rates scored with, in percentage points. */
const MIN_RATE_SPREAD = 2;

/**
 * The error rate spike of `day` (rates in percent) against the trailing days, `null` where a day's
 * failures are unknown (its raw events were purged); null when the day is not a spike.
 */
export function errorRateSpike(
  day: DayCalls,
  baseline: (DayCalls | null)[],
): { rate: number; median: number; mad: number; score: number; severity: Severity } | null {
  if (day.calls <= 0 || day.failed < MIN_FAILED_CALLS) return null;
  const rates = baseline.filter((d): d is DayCalls => d !== null && d.calls > 0).map(rateOf);
  if (rates.length < MIN_RATE_BASELINE_DAYS) return null;
  const rate = rateOf(day);
  const r = robustScore(rate, rates, MIN_RATE_SPREAD);
  return r.severity ? { rate, median: r.median, mad: r.mad, score: r.score, severity: r.severity } : null;
}

/** A day's failed calls as a percentage of its calls (never above 100). */
const rateOf = (d: DayCalls) => (Math.min(d.failed, d.calls) * 100) / d.calls;
