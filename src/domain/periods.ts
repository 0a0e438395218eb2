/**
 * Calendar months and billing cycles in an org's time zone. A cycle starts on the anchor's day of
 * the month (clamped to short months) at local midnight, so a DST change moves its UTC instant.
 */

// Building a DateTimeFormat costs far more than using one, and the hot path asks per event.
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, f);
  }
  return f;
}

/** The UTC offset of a zone at an instant, in minutes (e.g. +60 for Europe/Berlin in winter). */
function offsetMinutes(zone: string, at: Date): number {
  const parts = formatterFor(zone).formatToParts(at);
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  const asUtc = Date.UTC(
    get('year'),
    get('month') - 1,
    get('day'),
    get('hour'),
    get('minute'),
    get('second'),
  );
  return Math.round((asUtc - Math.floor(at.getTime() / 1000) * 1000) / 60000);
}

const DAY_MS = 86_400_000;

/**
 * The first instant of a calendar date in a zone: local midnight or, where the clocks jump over
 * midnight (America/Santiago and America/Havana on their DST days), the instant of the jump.
 */
export function startOfLocalDay(zone: string, year: number, month: number, day: number): Date {
  const guess = Date.UTC(year, month - 1, day);
  const offset = (t: number) => offsetMinutes(zone, new Date(t));
  const before = offset(guess - DAY_MS);
  const after = offset(guess + DAY_MS);
  // Local midnight read with each offset in force around that day: a reading is real when the
  // zone has that offset at the instant it gives; the earliest real one starts the day.
  let start: number | null = null;
  for (const o of before === after ? [before] : [before, after]) {
    const at = guess - o * 60_000;
    if (offset(at) === o && (start === null || at < start)) start = at;
  }
  if (start !== null) return new Date(start);
  // Midnight never happened: the day begins when the clocks jump into it, the first minute
  // between the two readings whose local date is this day.
  const dayOf = (t: number) => {
    const d = localDate(zone, new Date(t));
    return Date.UTC(d.year, d.month - 1, d.day);
  };
  let lo = guess - Math.max(before, after) * 60_000 - 60_000;
  let hi = guess - Math.min(before, after) * 60_000;
  while (hi - lo > 60_000) {
    const mid = lo + Math.floor((hi - lo) / 120_000) * 60_000;
    if (dayOf(mid) >= guess) hi = mid;
    else lo = mid;
  }
  return new Date(hi);
}

/** Year, month (1-12) and day of an instant in a zone. */
export function localDate(zone: string, at: Date): { year: number; month: number; day: number } {
  const local = new Date(at.getTime() + offsetMinutes(zone, at) * 60000);
  return { year: local.getUTCFullYear(), month: local.getUTCMonth() + 1, day: local.getUTCDate() };
}

/** Calendar days from `from`'s local date to `to`'s in a zone: a day of 23 or 25 hours counts once. */
export function localDaysBetween(zone: string, from: Date, to: Date): number {
  const day = (at: Date) => {
    const { year, month, day } = localDate(zone, at);
    return Date.UTC(year, month - 1, day) / 86_400_000;
  };
  return day(to) - day(from);
}

const daysInMonth = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();

function addMonths(year: number, month: number, delta: number): { year: number; month: number } {
  const index = year * 12 + (month - 1) + delta;
  return { year: Math.floor(index / 12), month: (index % 12) + 1 };
}

export interface Period {
  start: Date;
  end: Date;
}

// The last period computed per zone (and anchor): most instants asked about fall inside it.
const recent = new Map<string, Period>();

function remembered(key: string, at: Date, compute: () => Period): Period {
  const hit = recent.get(key);
  if (hit && hit.start <= at && at < hit.end) return hit;
  const period = compute();
  if (recent.size > 10_000) recent.clear();
  recent.set(key, period);
  return period;
}

export function calendarMonth(zone: string, at: Date): Period {
  return remembered(zone, at, () => computeCalendarMonth(zone, at));
}

function computeCalendarMonth(zone: string, at: Date): Period {
  const { year, month } = localDate(zone, at);
  const next = addMonths(year, month, 1);
  return {
    start: startOfLocalDay(zone, year, month, 1),
    end: startOfLocalDay(zone, next.year, next.month, 1),
  };
}

/** The billing cycle containing `at`, for a cycle anchored on `anchorDay` of each month. */
export function billingCycle(zone: string, anchorDay: number, at: Date): Period {
  return remembered(`${zone}\u0000${anchorDay}`, at, () => computeBillingCycle(zone, anchorDay, at));
}

function computeBillingCycle(zone: string, anchorDay: number, at: Date): Period {
  const startIn = (y: number, m: number) =>
    startOfLocalDay(zone, y, m, Math.min(anchorDay, daysInMonth(y, m)));
  const { year, month } = localDate(zone, at);
  let start = { year, month };
  if (startIn(year, month) > at) start = addMonths(year, month, -1);
  const next = addMonths(start.year, start.month, 1);
  return { start: startIn(start.year, start.month), end: startIn(next.year, next.month) };
}

export const anchorDayOf = (anchorDate: string): number => Number(anchorDate.slice(8, 10));
