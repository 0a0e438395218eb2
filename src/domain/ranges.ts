/**
 * Report ranges of the usage pages: `1d`, `7d`, `30d`, `mtd`, `last_month`, `cycle` and `custom`
 * resolved into [start, end) instants in the org's time zone, with the period they are compared
 * against and the default chart granularity.
 *
 * Every bound is a whole UTC hour, because the rollup the dashboards read (`usage_hourly`) keeps
 * UTC hours: a figure from the rollup and the same figure summed from raw events then cover exactly
 * the same events. In zones whose offset is not a whole number of hours (Asia/Kolkata +05:30,
 * Asia/Kathmandu +05:45, ...) a local midnight is floored to the UTC hour before it, so their days
 * and months start up to 45 minutes early. An hour belongs to the local day, month or cycle of its
 * last instant (as the time series' buckets do): the ranges up to now are those of the hour in
 * progress, so at 23:40 on 31 May in Kolkata (18:10Z) `mtd` is June's first hour, 18:00Z to 19:00Z.
 *
 * Rolling ranges (`1d`, `7d`, `30d`, `custom`) compare against the period of equal length just
 * before them; a custom range of whole dates against as many whole local days. Calendar ranges
 * compare against the previous month or billing cycle: `mtd` and `cycle` against the same elapsed
 * span of the previous one ("this month vs last month" so far), `last_month` against the whole
 * month before it.
 */
import { FIRST_YEAR, inYears, isCalendarDate, LAST_YEAR } from './calendar.ts';
import { billingCycle, calendarMonth, localDate, type Period, startOfLocalDay } from './periods.ts';

export const RANGES = ['1d', '7d', '30d', 'mtd', 'last_month', 'cycle', 'custom'] as const;
export type RangeName = (typeof RANGES)[number];
export const GRANULARITIES = ['hour', 'day', 'week'] as const;
export type Granularity = (typeof GRANULARITIES)[number];

export interface RangeInput {
  range?: RangeName | undefined;
  /** RFC 3339 instant, or a calendar date (YYYY-MM-DD: the start of that day in the org zone). */
  from?: string | undefined;
  /** RFC 3339 instant (exclusive), or a calendar date (inclusive: up to the end of that day). */
  to?: string | undefined;
}

export interface RangeSettings {
  zone: string;
  /** Day of the month the org's billing cycle starts on. */
  cycleAnchorDay: number;
  now: Date;
}

export interface ResolvedRange {
  range: RangeName;
  start: Date;
  end: Date;
  previous: Period;
  granularity: Granularity;
}

/** A bad range input, naming the query parameter at fault. */
export class RangeInputError extends Error {
  constructor(
    readonly param: string,
    message: string,
  ) {
    super(message);
  }
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** The longest custom range (a little over a year, so "this year vs last year" fits). */
export const MAX_CUSTOM_DAYS = 400;
/** The most buckets one time series may have. */
export const MAX_BUCKETS = 2_000;

export const floorHour = (at: Date): Date => new Date(Math.floor(at.getTime() / HOUR_MS) * HOUR_MS);
const ceilHour = (at: Date): Date => new Date(Math.ceil(at.getTime() / HOUR_MS) * HOUR_MS);
/** The end of the UTC hour `now` is in: ranges up to now include the hour in progress. */
const endOfCurrentHour = (now: Date): Date => new Date(floorHour(now).getTime() + HOUR_MS);

/** The start (floored to the UTC hour) of the local day `daysBack` days before the day of `at`. */
function localDayStart(zone: string, at: Date, daysBack: number): Date {
  const today = localDate(zone, at);
  const d = new Date(Date.UTC(today.year, today.month - 1, today.day - daysBack));
  return floorHour(startOfLocalDay(zone, d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()));
}

const hourly = (p: Period): Period => ({ start: floorHour(p.start), end: floorHour(p.end) });

/** The same elapsed span at the start of the previous period, never past its end. */
function sameElapsed(previous: Period, current: Period, end: Date): Period {
  const elapsed = end.getTime() - current.start.getTime();
  return {
    start: previous.start,
    end: new Date(Math.min(previous.start.getTime() + elapsed, previous.end.getTime())),
  };
}

function parseBound(zone: string, text: string, param: 'from' | 'to'): Date {
  if (isCalendarDate(text)) {
    const [y, m, d] = text.split('-').map(Number) as [number, number, number];
    // `to` as a date includes that whole day.
    const day = param === 'to' ? new Date(Date.UTC(y, m - 1, d + 1)) : new Date(Date.UTC(y, m - 1, d));
    return floorHour(startOfLocalDay(zone, day.getUTCFullYear(), day.getUTCMonth() + 1, day.getUTCDate()));
  }
  const at = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(text)
    ? new Date(text)
    : null;
  if (!at || Number.isNaN(at.getTime()) || !inYears(at)) {
    throw new RangeInputError(
      param,
      `${param} must be a date (YYYY-MM-DD) or an RFC 3339 time, in the years ${FIRST_YEAR} to ${LAST_YEAR}`,
    );
  }
  // Rollups hold whole UTC hours: a custom range widens to the hours it touches.
  return param === 'from' ? floorHour(at) : ceilHour(at);
}

/**
 * The start of as many whole local days before `from` as the dates `from` to `to` (inclusive)
 * cover: a range of whole days compares with whole days, not with as many hours (across a clock
 * change that would start the previous period at 23:00 or 01:00).
 */
function daysBefore(zone: string, from: string, to: string): Date {
  const days = (Date.parse(to) - Date.parse(from)) / DAY_MS + 1;
  // That date's start, as `from` takes one.
  return parseBound(zone, new Date(Date.parse(from) - days * DAY_MS).toISOString().slice(0, 10), 'from');
}

export function defaultGranularity(range: RangeName, start: Date, end: Date): Granularity {
  switch (range) {
    case '1d':
      return 'hour';
    case '30d':
      return 'week';
    case 'custom': {
      const span = end.getTime() - start.getTime();
      return span <= 2 * DAY_MS ? 'hour' : span <= 35 * DAY_MS ? 'day' : 'week';
    }
    default:
      return 'day';
  }
}

export function resolveRange(
  input: RangeInput,
  settings: RangeSettings,
  granularity?: Granularity,
): ResolvedRange {
  const { zone, now } = settings;
  const range = input.range ?? (input.from !== undefined || input.to !== undefined ? 'custom' : '30d');
  if (range !== 'custom' && (input.from !== undefined || input.to !== undefined)) {
    throw new RangeInputError(
      input.from !== undefined ? 'from' : 'to',
      'from and to are only taken with range=custom',
    );
  }
  const nowEnd = endOfCurrentHour(now);
  // The last instant of the hour in progress: the local day, month and cycle it is in are today's.
  const hourLast = new Date(nowEnd.getTime() - 1);
  let start: Date;
  let end: Date;
  let previous: Period | null = null;
  switch (range) {
    case '1d':
      end = nowEnd;
      start = new Date(end.getTime() - DAY_MS);
      break;
    case '7d':
    case '30d':
      start = localDayStart(zone, hourLast, range === '7d' ? 6 : 29);
      end = nowEnd;
      break;
    case 'mtd':
    case 'cycle': {
      const current = hourly(
        range === 'mtd'
          ? calendarMonth(zone, hourLast)
          : billingCycle(zone, settings.cycleAnchorDay, hourLast),
      );
      const before = new Date(current.start.getTime() - 1);
      const prior = hourly(
        range === 'mtd' ? calendarMonth(zone, before) : billingCycle(zone, settings.cycleAnchorDay, before),
      );
      start = current.start;
      // The hour in progress is in `current`, so its end is never past current.end.
      end = nowEnd;
      previous = sameElapsed(prior, current, end);
      break;
    }
    case 'last_month': {
      const thisMonth = calendarMonth(zone, hourLast);
      const last = hourly(calendarMonth(zone, new Date(thisMonth.start.getTime() - 1)));
      start = last.start;
      end = last.end;
      previous = hourly(calendarMonth(zone, new Date(last.start.getTime() - 1)));
      break;
    }
    case 'custom': {
      if (input.from === undefined) throw new RangeInputError('from', 'range=custom needs from');
      if (input.to === undefined) throw new RangeInputError('to', 'range=custom needs to');
      start = parseBound(zone, input.from, 'from');
      end = parseBound(zone, input.to, 'to');
      if (end <= start) throw new RangeInputError('to', 'to must be after from');
      if (end.getTime() - start.getTime() > MAX_CUSTOM_DAYS * DAY_MS) {
        throw new RangeInputError('to', `A custom range spans at most ${MAX_CUSTOM_DAYS} days`);
      }
      if (isCalendarDate(input.from) && isCalendarDate(input.to)) {
        previous = { start: daysBefore(zone, input.from, input.to), end: start };
      }
      break;
    }
    default:
      throw new RangeInputError('range', `range must be one of ${RANGES.join(', ')}`);
  }
  previous ??= { start: new Date(start.getTime() - (end.getTime() - start.getTime())), end: start };
  const chosen = granularity ?? defaultGranularity(range, start, end);
  const perBucket = chosen === 'hour' ? HOUR_MS : chosen === 'day' ? DAY_MS : 7 * DAY_MS;
  if ((end.getTime() - start.getTime()) / perBucket > MAX_BUCKETS) {
    throw new RangeInputError(
      'granularity',
      `granularity=${chosen} would give more than ${MAX_BUCKETS} buckets for this range`,
    );
  }
  return { range, start, end, previous, granularity: chosen };
}

/**
 * "+N%", "-N%" or "flat" (as the usage pages write it): the change from `previous` to `current` in whole percent (half to
 * even); "new" when there was nothing before and something now.
 */
export function trendOf(
  current: bigint,
  previous: bigint,
): {
  direction: 'up' | 'down' | 'flat' | 'new';
  percent: number | null;
  label: string;
} {
  if (previous === 0n) {
    return current === 0n
      ? { direction: 'flat', percent: 0, label: 'flat' }
      : { direction: 'new', percent: null, label: 'new' };
  }
  const num = (current - previous) * 100n;
  const magnitude = num < 0n ? -num : num;
  const den = previous < 0n ? -previous : previous;
  let whole = magnitude / den;
  const twice = 2n * (magnitude % den);
  if (twice > den || (twice === den && whole % 2n === 1n)) whole += 1n;
  if (whole === 0n) return { direction: 'flat', percent: 0, label: 'flat' };
  const percent = Number(whole) * (num < 0n ? -1 : 1);
  return {
    direction: percent > 0 ? 'up' : 'down',
    percent,
    label: `${percent > 0 ? '+' : '-'}${whole}%`,
  };
}

export interface Interval {
  start: Date;
  end: Date;
}
