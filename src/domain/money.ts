/**
 * Exact arithmetic for money and credits. A `Ratio` is a fraction of two bigints, so products,
 * sums and quotients of decimal prices are exact; rounding happens only where a caller asks for it
 * (see `roundHalfEven`). No JavaScript number ever holds an amount.
 */

const DECIMAL = /^-?\d+(\.\d+)?$/;
const PARSED = new Map<string, Ratio>();

export class Ratio {
  private constructor(
    readonly num: bigint,
    readonly den: bigint,
  ) {}

  static of(num: bigint, den = 1n): Ratio {
    if (typeof num !== 'bigint' || typeof den !== 'bigint') throw new TypeError('Ratio.of takes bigints');
    if (den === 0n) throw new RangeError('division by zero');
    if (den < 0n) {
      num = -num;
      den = -den;
    }
    const g = gcd(num < 0n ? -num : num, den);
    return new Ratio(num / g, den / g);
  }

  static readonly ZERO = Ratio.of(0n);
  static readonly ONE = Ratio.of(1n);

  /** Parses a plain decimal string such as "0.075" or "-12"; no exponents, no floats. */
  static parse(text: string): Ratio {
    if (typeof text !== 'string') throw new TypeError(`not a decimal string: ${String(text)}`);
    // Prices, rates and credit values repeat on every event; a Ratio is immutable, so share it.
    const known = PARSED.get(text);
    if (known) return known;
    if (!DECIMAL.test(text)) throw new RangeError(`not a decimal number: ${text}`);
    const negative = text.startsWith('-');
    const [whole, fraction = ''] = (negative ? text.slice(1) : text).split('.');
    const num = BigInt(`${whole}${fraction}`) * (negative ? -1n : 1n);
    const value = Ratio.of(num, 10n ** BigInt(fraction.length));
    if (PARSED.size >= 50_000) PARSED.clear();
    PARSED.set(text, value);
    return value;
  }

  static int(value: bigint | number): Ratio {
    if (typeof value === 'number' && !Number.isSafeInteger(value))
      throw new RangeError(`not an integer: ${value}`);
    return Ratio.of(BigInt(value));
  }

  /** An amount held as integer units of 10^-scale (micro-credits have scale 6). */
  static fromUnits(units: bigint, scale: number): Ratio {
    return Ratio.of(units, 10n ** BigInt(scale));
  }

  add(other: Ratio): Ratio {
    return Ratio.of(this.num * other.den + other.num * this.den, this.den * other.den);
  }
  sub(other: Ratio): Ratio {
    return Ratio.of(this.num * other.den - other.num * this.den, this.den * other.den);
  }
  mul(other: Ratio): Ratio {
    return Ratio.of(this.num * other.num, this.den * other.den);
  }
  div(other: Ratio): Ratio {
    return Ratio.of(this.num * other.den, this.den * other.num);
  }
  cmp(other: Ratio): number {
    const left = this.num * other.den;
    const right = other.num * this.den;
    return left < right ? -1 : left > right ? 1 : 0;
  }
  isZero(): boolean {
    return this.num === 0n;
  }
  isNegative(): boolean {
    return this.num < 0n;
  }

  /** Integer units of 10^-scale, rounded half to even: the single rounding rule of Tally. */
  roundHalfEven(scale: number): bigint {
    const scaled = this.num * 10n ** BigInt(scale);
    const quotient = scaled / this.den;
    const remainder = scaled % this.den;
    if (remainder === 0n) return quotient;
    const twice = 2n * (remainder < 0n ? -remainder : remainder);
    const away = scaled < 0n ? -1n : 1n;
    if (twice > this.den) return quotient + away;
    if (twice < this.den) return quotient;
    return quotient % 2n === 0n ? quotient : quotient + away;
  }

  /** The exact decimal text when the fraction terminates within `maxScale` digits, else rounded. */
  toDecimal(maxScale = 12): string {
    return formatUnits(this.roundHalfEven(maxScale), maxScale);
  }
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a === 0n ? 1n : a;
}

/** Formats integer units of 10^-scale as a canonical decimal string without trailing zeros. */
export function formatUnits(units: bigint, scale: number): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(scale + 1, '0');
  const whole = digits.slice(0, digits.length - scale);
  const fraction = digits.slice(digits.length - scale).replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

/** Parses a decimal string into integer units of 10^-scale; refuses more digits than the scale holds. */
export function parseUnits(text: string, scale: number): bigint {
  const value = Ratio.parse(text);
  const units = value.roundHalfEven(scale);
  if (Ratio.fromUnits(units, scale).cmp(value) !== 0) {
    throw new RangeError(`more than ${scale} decimal places: ${text}`);
  }
  return units;
}

/**
 * Integer units of 10^-scale for a plain decimal string with at most `scale` decimals: a fast,
 * exact path for summing stored amounts (no fractions, no division).
 */
export function decimalUnits(text: string, scale: number): bigint {
  const negative = text.startsWith('-');
  const [whole, fraction = ''] = (negative ? text.slice(1) : text).split('.');
  if (fraction.length > scale || !/^\d+$/.test(whole! + fraction)) {
    throw new RangeError(`not a decimal with at most ${scale} places: ${text}`);
  }
  const units = BigInt(whole! + fraction.padEnd(scale, '0'));
  return negative ? -units : units;
}

/**
 * Splits `total` units over parts in proportion to `weights` (largest remainder), so the parts
 * always add up to the total exactly: used to show an event's cost per token kind. Worked in
 * integers over one common denominator (no fraction is reduced): every event is split twice, and
 * reducing each intermediate fraction cost more than the pricing around it.
 */
export function allocate(total: bigint, weights: Ratio[]): bigint[] {
  if (weights.length === 0) {
    if (total !== 0n) throw new RangeError('cannot allocate a non-zero total over no parts');
    return [];
  }
  // A common multiple of the denominators: their product, each distinct one taken once.
  let common = 1n;
  for (const den of new Set(weights.map((w) => w.den))) common *= den;
  let scaled = weights.map((w) => w.num * (common / w.den));
  let sum = scaled.reduce((a, b) => a + b, 0n);
  if (sum === 0n) return weights.map((_, i) => (i === 0 ? total : 0n));
  if (sum < 0n) {
    scaled = scaled.map((x) => -x);
    sum = -sum;
  }
  // Part i is total * scaled[i] / sum exactly: its floor, and the remainder (over sum) it leaves.
  const floors: bigint[] = [];
  const rests: bigint[] = [];
  let left = total;
  for (const x of scaled) {
    const exact = total * x;
    const floor = floorDiv(exact, sum);
    floors.push(floor);
    rests.push(exact - floor * sum);
    left -= floor;
  }
  const order = rests
    .map((_, i) => i)
    .sort((a, b) => (rests[b]! > rests[a]! ? 1 : rests[b]! < rests[a]! ? -1 : a - b));
  for (const i of order) {
    if (left <= 0n) break;
    floors[i]! += 1n;
    left -= 1n;
  }
  return floors;
}

function floorDiv(num: bigint, den: bigint): bigint {
  const q = num / den;
  return num % den !== 0n && num < 0n !== den < 0n ? q - 1n : q;
}

/** Credits are held as integer micro-credits everywhere (BIGINT in SQL). */
export const CREDIT_SCALE = 6;
/** Provider cost in USD is reported to 10 decimal places. */
export const PROVIDER_COST_SCALE = 10;

export const formatCredits = (micro: bigint): string => formatUnits(micro, CREDIT_SCALE);
