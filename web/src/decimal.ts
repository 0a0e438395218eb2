/**
 * Exact decimal strings, as the API sends money: compared and subtracted as scaled BigInts, never as
 * floats. Only chart geometry (pixels) uses Number, and only through `ratio`.
 */
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
