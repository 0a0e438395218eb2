/** The catalog's model-name matching rules (equals, starts_with, regex, and/or ...), case-insensitive. */
export type MatchRule =
  | { and: MatchRule[] }
  | { or: MatchRule[] }
  | { equals: string }
  | { starts_with: string }
  | { ends_with: string }
  | { contains: string }
  | { regex: string };

export function matchesModel(rule: MatchRule, model: string): boolean {
  const name = model.toLowerCase();
  if ('or' in rule) return rule.or.some((r) => matchesModel(r, model));
  if ('and' in rule) return rule.and.every((r) => matchesModel(r, model));
  if ('equals' in rule) return name === rule.equals.toLowerCase();
  if ('starts_with' in rule) return name.startsWith(rule.starts_with.toLowerCase());
  if ('ends_with' in rule) return name.endsWith(rule.ends_with.toLowerCase());
  if ('contains' in rule) return name.includes(rule.contains.toLowerCase());
  return new RegExp(rule.regex).test(model);
}

/** Seconds since UTC midnight for an "HH:MM:SS(Z|±HH:MM)" time of day. */
function secondsOfDay(text: string): number {
  const m = /^(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|([+-])(\d{2}):(\d{2}))$/.exec(text);
  if (!m) throw new RangeError(`bad time of day: ${text}`);
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
