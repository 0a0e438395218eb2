/**
 * How a catalog model's price list picks the price for an instant, as genai-prices defines it: the
 * entries are tried from last to first and the first whose condition holds wins (a start date that
 * has passed, or a daily window that contains the instant); an entry without a condition always
 * holds; when none holds, the first entry applies. A later entry can therefore narrow an earlier one,
 * which is how peak windows override an off-peak rate that starts on a date.
 */
import { inTimeOfDay } from './modelMatch.ts';

export interface PriceListEntry {
  /** The entry's start date, or when the whole list took effect for an entry without one. */
  valid_from: Date;
  time_of_day: { start_time: string; end_time: string } | null;
  /** Place in the list; null for a price that stands alone. */
  list_position: number | null;
}

/** The entry of one list in force at `at`; `entries` are the whole list, in any order. */
export function pickListEntry<T extends PriceListEntry>(entries: readonly T[], at: Date): T | null {
  // One pass, no copy: this runs for every priced event.
  let last: T | null = null;
  let first: T | null = null;
  for (const entry of entries) {
    const position = entry.list_position ?? 0;
    if (!first || position < (first.list_position ?? 0)) first = entry;
    if (entry.valid_from > at) continue;
    if (entry.time_of_day && !inTimeOfDay(entry.time_of_day, at)) continue;
    if (!last || position > (last.list_position ?? 0)) last = entry;
  }
  return last ?? first;
}
