/** Shared checks for the operator's pricing writes. */
import { isCalendarDate } from '../../domain/calendar.ts';
import { invalid } from '../errors.ts';

/** A price change takes effect now unless it names a later start; back-dating would reprice history. */
export function effectiveFrom(validFrom: string | undefined, now = new Date()): Date {
  if (validFrom === undefined) return now;
  const at = isCalendarDate(validFrom) ? new Date(`${validFrom}T00:00:00Z`) : new Date(validFrom);
  if (Number.isNaN(at.getTime()))
    throw invalid('valid_from', 'valid_from must be an RFC 3339 time or a date');
  if (at.getTime() < now.getTime() - 60_000) {
    throw invalid('valid_from', 'valid_from may not be in the past: events already priced keep their price');
  }
  return at;
}
