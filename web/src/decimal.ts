/**
 * Exact decimal strings, as the API sends money: compared and subtracted as scaled BigInts, never as
 * floats. Only chart geometry (pixels) uses Number, and only through `ratio`.
 */
import { allocate, Ratio } from '../../src/domain/money.ts';

const PATTERN = /^(-)?(\d+)(?:\.(\d+))?$/;

export const isDecimal = (text: string) => PATTERN.test(text.trim());

function scaled(text: string, scale: number): bigint {
  const match = text.trim().match(PATTERN);
  if (!match) throw new Error(`Not a decimal: ${text}`);
  const [, sign, whole, fraction = ''] = match;
  const digits = BigInt(`${whole}${fraction.padEnd(scale, '0').slice(0, scale)}`);
  return sign ? -digits : digits;
}

const scaleOf = (...texts: string[]) => Math.max(...texts.map((t) => t.split('.')[1]?.length ?? 0));

function unscaled(value: bigint, scale: number): string {
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(scale + 1, '0');
  const whole = digits.slice(0, digits.length - scale);
  const fraction = scale ? digits.slice(-scale).replace(/0+$/, '') : '';
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

export function compareDecimal(a: string, b: string): -1 | 0 | 1 {
  const scale = scaleOf(a, b);
  const x = scaled(a, scale);
  const y = scaled(b, scale);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function addDecimal(a: string, b: string): string {
  const scale = scaleOf(a, b);
  return unscaled(scaled(a, scale) + scaled(b, scale), scale);
}

/** What is left of `limit` once `spent`, 0 when none is. */
export const leftOf = (limit: string, spent: string): string =>
  compareDecimal(limit, spent) > 0 ? subtractDecimal(limit, spent) : '0';

function subtractDecimal(a: string, b: string): string {
  const scale = scaleOf(a, b);
  return unscaled(scaled(a, scale) - scaled(b, scale), scale);
}

/** The whole percent `part` is of `whole`, rounded down exactly (57 of 100 is 57, not 56.99...); 0 when the whole is zero. */
export function percentFloor(part: string, whole: string): number {
  const scale = scaleOf(part, whole);
  const w = scaled(whole, scale);
  const p = scaled(part, scale);
  return w > 0n && p > 0n ? Number((p * 100n) / w) : 0;
}

/** part / whole for drawing (bar widths, tick positions): 0 when the whole is zero. */
export function ratio(part: string, whole: string): number {
  const w = Number(whole);
  return w > 0 ? Math.max(0, Number(part) / w) : 0;
}

/** `value` rounded to `scale` decimals, half away from zero (as Intl rounds what it shows). */
function roundedAt(value: bigint, from: number, scale: number): bigint {
  const step = 10n ** BigInt(from - scale);
  const magnitude = value < 0n ? -value : value;
  const rounded = (magnitude + step / 2n) / step;
  return value < 0n ? -rounded : rounded;
}

/**
 * A total and its parts as shown with `scale` decimals, the shown parts adding up to the shown
 * total: the total rounded as Intl rounds it, spread over the parts by `allocate` (largest
 * remainder, as the PDF report spreads its rows). Null when the parts do not add up to the total
 * exactly, or one is negative (each is then shown rounded on its own).
 */
export function shownParts(
  total: string,
  parts: string[],
  scale: number,
): { total: string; parts: string[] } | null {
  const exact = Math.max(scale, scaleOf(total, ...parts));
  const values = parts.map((p) => scaled(p, exact));
  const whole = scaled(total, exact);
  if (values.some((v) => v < 0n) || values.reduce((a, b) => a + b, 0n) !== whole) return null;
  const shownTotal = roundedAt(whole, exact, scale);
  const shown = allocate(
    shownTotal,
    values.map((v) => Ratio.of(v)),
  );
  return { total: unscaled(shownTotal, scale), parts: shown.map((v) => unscaled(v, scale)) };
}
