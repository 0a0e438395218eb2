/**
 * The catalog's model-name matching rules (equals, starts_with, regex, and/or ...). As in
 * `@pydantic/genai-prices`, the model name is trimmed and lower-cased before any rule looks at it,
 * regular expressions included, so "GPT-4o" and " gpt-4o" find the same price as "gpt-4o".
 */
export type MatchRule =
  | { and: MatchRule[] }
  | { or: MatchRule[] }
  | { equals: string }
  | { starts_with: string }
  | { ends_with: string }
  | { contains: string }
  | { regex: string };

export function matchesModel(rule: MatchRule, model: string): boolean {
  return matches(rule, model.toLowerCase().trim());
}

function matches(rule: MatchRule, name: string): boolean {
  if ('or' in rule) return rule.or.some((r) => matches(r, name));
  if ('and' in rule) return rule.and.every((r) => matches(r, name));
  if ('equals' in rule) return name === rule.equals.toLowerCase();
  if ('starts_with' in rule) return name.startsWith(rule.starts_with.toLowerCase());
  if ('ends_with' in rule) return name.endsWith(rule.ends_with.toLowerCase());
  if ('contains' in rule) return name.includes(rule.contains.toLowerCase());
  if ('regex' in rule) return compiled(rule.regex).test(name);
  return false;
}

const regexes = new Map<string, RegExp>();
function compiled(source: string): RegExp {
  let re = regexes.get(source);
  if (!re) {
    re = new RegExp(source);
    if (regexes.size > 10_000) regexes.clear();
    regexes.set(source, re);
  }
  return re;
}

/** Seconds since UTC midnight for an "HH:MM:SS(Z|±HH:MM)" time of day. */
function secondsOfDay(text: string): number {
  const m = /^(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|([+-])(\d{2}):(\d{2}))$/.exec(text);
  if (
    !m ||
    Number(m[1]) > 23 ||
    Number(m[2]) > 59 ||
    Number(m[3]) > 59 ||
    Number(m[6] ?? 0) > 23 ||
    Number(m[7] ?? 0) > 59
  )
    throw new RangeError(`bad time of day: ${text}`);
  const offset = m[4] === 'Z' ? 0 : (m[5] === '+' ? 1 : -1) * (Number(m[6]) * 3600 + Number(m[7]) * 60);
  return (Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) - offset + 86400) % 86400;
}

/** Whether an instant falls in a daily window such as off-peak hours (the window may wrap midnight). */
export function inTimeOfDay(window: { start_time: string; end_time: string }, at: Date): boolean {
  const s = at.getUTCHours() * 3600 + at.getUTCMinutes() * 60 + at.getUTCSeconds();
  const start = secondsOfDay(window.start_time);
  const end = secondsOfDay(window.end_time);
  return end < start ? s >= start || s < end : s >= start && s < end;
}
