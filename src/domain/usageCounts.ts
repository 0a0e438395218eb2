/**
 * Arithmetic on a call's usage counts: sums, the larger of two reports, and what one report adds
 * to another. Some counts are parts of another (cached and audio input among `input_tokens`,
 * cached audio among `cache_read_tokens` (and `input_audio_tokens`: pricing never takes more of it
 * than either), 1-hour writes among `cache_write_tokens`, audio output among `output_tokens`); the
 * rest stand alone. A count is always taken with its parts from the same report, so parts never
 * exceed it.
 */
import { USAGE_KEYS, type Usage, type UsageKey } from './pricing.ts';

/** The counts among each count that has parts. */
const PARTS: Partial<Record<UsageKey, UsageKey[]>> = {
  input_tokens: ['cache_read_tokens', 'cache_write_tokens', 'input_audio_tokens'],
  cache_read_tokens: ['cache_audio_read_tokens'],
  cache_write_tokens: ['cache_write_1h_tokens'],
  output_tokens: ['output_audio_tokens'],
};
/**
 * A part that shares some of its tokens with an earlier part of the same count: audio input with
 * the cache reads, by the cached audio among both. Its room is what the other parts left plus
 * those shared tokens.
 */
const SHARES: Partial<Record<UsageKey, UsageKey>> = { input_audio_tokens: 'cache_audio_read_tokens' };
const IS_PART = new Set(Object.values(PARTS).flat());
/** The counts that are no other's part: every usage key not listed above. */
const WHOLES = USAGE_KEYS.filter((kind) => !IS_PART.has(kind));
const withParts = (kind: UsageKey): UsageKey[] => [kind, ...(PARTS[kind] ?? []).flatMap(withParts)];

export function addUsage(a: Usage, b: Usage): Usage {
  const out: Usage = { ...a };
  for (const [k, v] of Object.entries(b) as [UsageKey, number][]) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** The larger of two reports of a call's usage, whole by whole, each whole with its own parts. */
export function usageAtLeast(reported: Usage, streamed: Usage): Usage {
  const out: Usage = {};
  for (const whole of WHOLES) {
    const side = (streamed[whole] ?? 0) > (reported[whole] ?? 0) ? streamed : reported;
    for (const kind of withParts(whole)) if (side[kind] !== undefined) out[kind] = side[kind];
  }
  return out;
}

/** Whether two reports count the same (a count left out is zero). */
export const sameUsage = (a: Usage, b: Usage): boolean =>
  USAGE_KEYS.every((kind) => (a[kind] ?? 0) === (b[kind] ?? 0));

/**
 * What `final` adds to the usage recorded already (`final` holds at least as much of each whole):
 * each count's difference, its parts' differences kept within it.
 */
export function usageBeyond(final: Usage, recorded: Usage): Usage {
  const rest: Usage = {};
  const take = (kind: UsageKey, room: number): number => {
    if (final[kind] === undefined) return 0;
    const more = Math.min(Math.max(0, final[kind] - (recorded[kind] ?? 0)), room);
    rest[kind] = more;
    let left = more;
    for (const part of PARTS[kind] ?? []) {
      const shared = SHARES[part] ? (rest[SHARES[part]] ?? 0) : 0;
      left -= Math.max(0, take(part, left + shared) - shared);
    }
    return more;
  };
  for (const whole of WHOLES) take(whole, Number.POSITIVE_INFINITY);
  return rest;
}

/** The usage without its input (the prompt, with its cached and audio parts): what a stream adds as it goes. */
export function withoutInput(usage: Usage): Usage {
  const out: Usage = { ...usage };
  for (const kind of withParts('input_tokens')) delete out[kind];
  return out;
}

/** The input of a usage alone (the prompt, with its cached and audio parts): what a stream reports first. */
export function inputOnly(usage: Usage): Usage {
  const out: Usage = {};
  for (const kind of withParts('input_tokens')) if (usage[kind] !== undefined) out[kind] = usage[kind];
  return out;
}
