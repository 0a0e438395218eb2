/** Time zones and calendar dates, checked with the platform's own IANA database. */
const ZONES = new Set([...Intl.supportedValuesOf('timeZone'), 'UTC']);

export const isTimeZone = (zone: string): boolean => ZONES.has(zone);

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
  return !Number.isNaN(d.getTime()) && d.toISOString().startsWith(text);
}
