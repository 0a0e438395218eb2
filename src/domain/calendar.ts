/** Time zones and calendar dates, checked with the platform's own IANA database. */
const ZONES = new Set([...Intl.supportedValuesOf('timeZone'), 'UTC']);

/**
 * An IANA zone name: one the platform lists, or an Area/Location alias of one (the platform lists
 * Asia/Calcutta, people write Asia/Kolkata; Postgres knows both), or a fixed offset of the Etc area
 * (Etc/GMT+12 is UTC-12, "anywhere on Earth", in the platform and in Postgres alike). Other names
 * the platform would take, such as GMT+5, are refused: Postgres reads those as POSIX rules, with
 * the sign turned.
 */
const FIXED_OFFSET_ZONE = /^Etc\/GMT[+-](?:[0-9]|1[0-4])$/;

export function isTimeZone(zone: string): boolean {
  if (ZONES.has(zone)) return true;
  if (FIXED_OFFSET_ZONE.test(zone)) return resolvedZone(zone) !== null;
  if (!/^[A-Za-z]+(\/[A-Za-z0-9_-]+)+$/.test(zone)) return false;
  return ZONES.has(resolvedZone(zone) ?? '');
}

/** The platform's name for a zone, or null when it knows none by that name. */
function resolvedZone(zone: string): string | null {
  try {
    return new Intl.DateTimeFormat('en', { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

/**
 * The years a date given to the API may fall in: the rollups' and Postgres's arithmetic stay within
 * them (a year past 9999 cannot be written back, and 0000 to 0099 read as 1900 to 1999 in JS).
 */
export const FIRST_YEAR = 1970;
export const LAST_YEAR = 9998;
export const inYears = (at: Date): boolean =>
  at.getUTCFullYear() >= FIRST_YEAR && at.getUTCFullYear() <= LAST_YEAR;

/** The calendar date (YYYY-MM-DD) of an instant in a time zone. */
export function dateIn(zone: string, at: Date): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: zone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(at);
  return parts;
}

export function isCalendarDate(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const d = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().startsWith(text) && inYears(d);
}
