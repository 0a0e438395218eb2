/**
 * Exact money arithmetic (src/domain/money.ts). Every expected value is written out by hand; the
 * property tests compare against references computed here with plain BigInt, never with the code
 * under test.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  allocate,
  CREDIT_SCALE,
  formatCredits,
  formatUnits,
  parseUnits,
  Ratio,
} from '../src/domain/money.ts';

/** A Ratio's reduced numerator and denominator, as a readable pair. */
const parts = (r: Ratio) => [r.num, r.den];
const R = (text: string) => Ratio.parse(text);

describe('Ratio.parse', () => {
  it('reads plain decimal strings exactly, reduced', () => {
    expect(parts(R('0.075'))).toEqual([3n, 40n]); // 75/1000 = 3/40
    expect(parts(R('-12'))).toEqual([-12n, 1n]);
    expect(parts(R('007.50'))).toEqual([15n, 2n]); // leading and trailing zeros do not matter
    expect(parts(R('0'))).toEqual([0n, 1n]);
    expect(parts(R('-0.000'))).toEqual([0n, 1n]);
    expect(parts(R('123456789012345678901234567890.000000000000000001'))).toEqual([
      123456789012345678901234567890000000000000000001n,
      1000000000000000000n,
    ]);
  });

  it.each([
    '1e-7',
    '1E3',
    '1.5e3',
    '.5',
    '1.',
    '+1',
    '',
    ' 1',
    '1 ',
    '1,5',
    '1_000',
    'NaN',
    'Infinity',
    '-Infinity',
    '0x10',
    '--1',
    '1.2.3',
  ])('refuses %j', (text) => {
    expect(() => R(text)).toThrow(RangeError);
  });

  it('refuses JavaScript numbers, even ones that print as plain decimals', () => {
    expect(() => Ratio.parse(0.1 as unknown as string)).toThrow();
    expect(() => Ratio.parse(String(1e-7))).toThrow(RangeError); // "1e-7"
    expect(() => Ratio.parse(String(0.1 + 0.2))).not.toThrow(); // "0.30000000000000004" is a decimal...
    expect(R(String(0.1 + 0.2)).cmp(R('0.3'))).toBe(1); // ...and, exactly, not 0.3
  });
});

describe('Ratio construction', () => {
  it('normalizes sign and common factors', () => {
    expect(parts(Ratio.of(2n, -4n))).toEqual([-1n, 2n]);
    expect(parts(Ratio.of(-6n, -4n))).toEqual([3n, 2n]);
    expect(parts(Ratio.of(0n, 7n))).toEqual([0n, 1n]);
  });

  it('refuses a zero denominator', () => {
    expect(() => Ratio.of(1n, 0n)).toThrow(RangeError);
    expect(() => Ratio.ONE.div(Ratio.ZERO)).toThrow(RangeError);
  });

  it('takes integers only from numbers', () => {
    expect(parts(Ratio.int(42))).toEqual([42n, 1n]);
    expect(parts(Ratio.int(-7n))).toEqual([-7n, 1n]);
    expect(() => Ratio.int(1.5)).toThrow(RangeError);
    expect(() => Ratio.int(Number.NaN)).toThrow(RangeError);
    expect(() => Ratio.int(Number.MAX_SAFE_INTEGER + 1)).toThrow(RangeError);
    expect(() => Ratio.of(1 as unknown as bigint)).toThrow();
  });

  it('reads integer units of a scale', () => {
    expect(parts(Ratio.fromUnits(1_035_000n, 6))).toEqual([207n, 200n]); // 1.035
    expect(parts(Ratio.fromUnits(-5n, 6))).toEqual([-1n, 200_000n]);
  });
});

describe('Ratio arithmetic', () => {
  it('adds, subtracts, multiplies and divides exactly', () => {
    expect(R('0.1').add(R('0.2')).cmp(R('0.3'))).toBe(0); // the float classic, exact here
    expect(R('0.3').sub(R('0.1')).toDecimal()).toBe('0.2');
    expect(R('2.5').mul(R('1.5')).mul(R('0.92')).toDecimal()).toBe('3.45'); // 2.5 x 1.5 = 3.75; x 0.92 = 3.45
    expect(R('0.01125').div(R('0.01')).toDecimal()).toBe('1.125');
    expect(parts(R('1').div(R('3')))).toEqual([1n, 3n]);
    expect(parts(R('1').div(R('3')).mul(R('3')))).toEqual([1n, 1n]);
    expect(R('-1.5').add(R('1.5')).isZero()).toBe(true);
    expect(R('-0.000001').isNegative()).toBe(true);
    expect(R('0').isNegative()).toBe(false);
  });

  it('compares', () => {
    expect(R('0.1').cmp(R('0.10'))).toBe(0);
    expect(R('-2').cmp(R('1'))).toBe(-1);
    expect(R('1').div(R('3')).cmp(R('0.333333333333'))).toBe(1);
    expect(R('2').div(R('3')).cmp(R('0.666666666667'))).toBe(-1);
  });

  it('prints exact decimals, rounding only past the scale asked for', () => {
    expect(R('1.500').toDecimal()).toBe('1.5');
    expect(R('3').div(R('8')).toDecimal()).toBe('0.375');
    expect(R('1').div(R('3')).toDecimal()).toBe('0.333333333333');
    expect(R('2').div(R('3')).toDecimal(6)).toBe('0.666667');
    expect(R('-2').div(R('3')).toDecimal(6)).toBe('-0.666667');
    expect(R('-0.0000001').toDecimal(6)).toBe('0'); // -0.1 micro rounds to zero: no "-0"
  });
});

describe('roundHalfEven', () => {
  it.each([
    ['0.5', 0, 0n],
    ['1.5', 0, 2n],
    ['2.5', 0, 2n],
    ['3.5', 0, 4n],
    ['-0.5', 0, 0n],
    ['-1.5', 0, -2n],
    ['-2.5', 0, -2n],
    ['-3.5', 0, -4n],
    ['2.5000001', 0, 3n],
    ['2.4999999', 0, 2n],
    ['-2.5000001', 0, -3n],
    ['-2.4999999', 0, -2n],
    ['0.0000125', 6, 12n], // 12.5 micro: tie, 12 is even
    ['0.0000135', 6, 14n], // 13.5 micro: tie, 14 is even
    ['-0.0000135', 6, -14n],
    ['28.4666175', 6, 28_466_618n], // tie, 7 is odd: up
    ['28.4666165', 6, 28_466_616n], // tie, 6 is even: down
    ['1.0000004999', 6, 1_000_000n],
    ['1.0000005001', 6, 1_000_001n],
    ['7', 6, 7_000_000n],
    ['-7', 2, -700n],
  ] as const)('%s at scale %i is %s', (text, scale, expected) => {
    expect(R(text).roundHalfEven(scale)).toBe(expected);
  });

  it('rounds non-terminating fractions', () => {
    expect(R('1').div(R('3')).roundHalfEven(6)).toBe(333_333n);
    expect(R('2').div(R('3')).roundHalfEven(6)).toBe(666_667n);
    expect(R('-2').div(R('3')).roundHalfEven(6)).toBe(-666_667n);
    expect(R('1').div(R('6')).roundHalfEven(0)).toBe(0n);
  });

  it('matches a BigInt floor-based reference on random fractions', () => {
    // Reference: floor(n/d) with a true floor, remainder in [0, d), then compare 2r with d.
    const reference = (num: bigint, den: bigint, scale: number): bigint => {
      const n = num * 10n ** BigInt(scale);
      let q = n / den;
      if (n % den !== 0n && n < 0n) q -= 1n; // den > 0: make it a floor
      const r = n - q * den; // 0 <= r < den
      if (2n * r > den) return q + 1n;
      if (2n * r < den) return q;
      return q % 2n === 0n ? q : q + 1n;
    };
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }),
        fc.bigInt({ min: 1n, max: 10n ** 20n }),
        fc.integer({ min: 0, max: 12 }),
        (num, den, scale) => {
          expect(Ratio.of(num, den).roundHalfEven(scale)).toBe(reference(num, den, scale));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('hits exact ties often enough to matter', () => {
    // Values k + 1/2 (at scale 0) are all ties: even k stays, odd k goes away from zero.
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n }), (k) => {
        const rounded = Ratio.of(2n * k + 1n, 2n).roundHalfEven(0);
        expect(rounded === k || rounded === k + 1n).toBe(true);
        expect(rounded % 2n).toBe(0n);
      }),
    );
  });
});

describe('formatUnits / parseUnits', () => {
  it.each([
    [1_035_000n, 6, '1.035'],
    [0n, 6, '0'],
    [1n, 6, '0.000001'],
    [-5n, 6, '-0.000005'],
    [-1_000_000n, 6, '-1'],
    [123n, 0, '123'],
    [100n, 2, '1'],
    [75_000_000n, 10, '0.0075'],
    [12_345_678_901_234_567_890n, 6, '12345678901234.56789'],
  ] as const)('formats %s at scale %i as %s', (units, scale, text) => {
    expect(formatUnits(units, scale)).toBe(text);
  });

  it('formats micro-credits', () => {
    expect(CREDIT_SCALE).toBe(6);
    expect(formatCredits(28_466_618n)).toBe('28.466618');
  });

  it.each([
    ['1.035', 6, 1_035_000n],
    ['1.0000000', 6, 1_000_000n], // trailing zeros beyond the scale are fine
    ['-0.5', 6, -500_000n],
    ['0', 6, 0n],
    ['12', 0, 12n],
    ['0.000001', 6, 1n],
  ] as const)('parses %s at scale %i as %s', (text, scale, units) => {
    expect(parseUnits(text, scale)).toBe(units);
  });

  it.each([
    ['0.0000001', 6],
    ['1.0000005', 6],
    ['0.5', 0],
    ['1e3', 6],
    ['1.5E-3', 6],
    ['', 6],
    ['abc', 6],
  ] as const)('refuses %j at scale %i', (text, scale) => {
    expect(() => parseUnits(text, scale)).toThrow(RangeError);
  });

  it('round-trips any integer unit count', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 25n), max: 10n ** 25n }),
        fc.integer({ min: 0, max: 12 }),
        (u, s) => {
          expect(parseUnits(formatUnits(u, s), s)).toBe(u);
        },
      ),
    );
  });
});

describe('allocate', () => {
  it('splits by largest remainder, ties to the earlier part', () => {
    const w = (...xs: string[]) => xs.map(R);
    expect(allocate(100n, w('1', '1', '1'))).toEqual([34n, 33n, 33n]);
    // exact shares 2.5, 1.25, 1.25: floors 2, 1, 1 leave 1 unit for the largest remainder (0.5)
    expect(allocate(5n, w('0.5', '0.25', '0.25'))).toEqual([3n, 1n, 1n]);
    // exact shares 1.25, 1.25, 2.5: the third part's remainder 0.5 wins over 0.25 and 0.25
    expect(allocate(5n, w('0.25', '0.25', '0.5'))).toEqual([1n, 1n, 3n]);
    // -10/3 each: floors -4, -4, -4 (sum -12) leave +2 for the first two equal remainders
    expect(allocate(-10n, w('1', '1', '1'))).toEqual([-3n, -3n, -4n]);
    expect(allocate(7n, w('0', '3', '0'))).toEqual([0n, 7n, 0n]);
    expect(allocate(0n, w('1', '2'))).toEqual([0n, 0n]);
    // the per-component credits of a gpt-4o-mini event (see pricing.test.ts): 27777757.5 and 688860
    expect(allocate(28_466_618n, w('27.7777575', '0.68886'))).toEqual([27_777_758n, 688_860n]);
  });

  it('gives everything to the first part when all weights are zero', () => {
    expect(allocate(10n, [Ratio.ZERO, Ratio.ZERO])).toEqual([10n, 0n]);
  });

  it('refuses to lose a non-zero total over no parts', () => {
    expect(allocate(0n, [])).toEqual([]);
    expect(() => allocate(1n, [])).toThrow(RangeError);
  });

  it('gives the extra units to the largest remainders, ties to the earlier part, whatever the denominators', () => {
    const weight = fc.record({
      // Small numerators repeat, so equal remainders (ties) come up often.
      num: fc.oneof(fc.constantFrom(0n, 1n, 2n, 5n), fc.bigInt({ min: 0n, max: 10n ** 15n })),
      den: fc.constantFrom(1n, 3n, 7n, 10n, 100n, 3600n, 10n ** 6n, 10n ** 12n),
    });
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n }),
        fc.array(weight, { minLength: 1, maxLength: 8 }),
        (total, weights) => {
          fc.pre(weights.some((w) => w.num > 0n));
          const got = allocate(
            total,
            weights.map((w) => Ratio.of(w.num, w.den)),
          );
          expect(got.reduce((a, b) => a + b, 0n)).toBe(total);
          // Share i is total * (num_i / den_i) / S with S = sum of num_j / den_j. Over the common
          // denominator L = product of all dens: share_i = total * w_i / W, w_i = num_i * L / den_i.
          const L = weights.reduce((a, w) => a * w.den, 1n);
          const w = weights.map((x) => (x.num * L) / x.den);
          const W = w.reduce((a, b) => a + b, 0n);
          const floorOf = (n: bigint) => (n >= 0n ? n / W : -((-n + W - 1n) / W));
          const rests = w.map((wi) => total * wi - floorOf(total * wi) * W);
          const extra = got.map((part, i) => part - floorOf(total * w[i]!));
          for (const e of extra) expect(e === 0n || e === 1n).toBe(true);
          // Every part given a unit has a larger remainder than every part not given one (or an
          // equal one and an earlier place).
          for (const [i, ei] of extra.entries()) {
            for (const [j, ej] of extra.entries()) {
              if (ei === 1n && ej === 0n) {
                expect(rests[i]! > rests[j]! || (rests[i] === rests[j] && i < j)).toBe(true);
              }
            }
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('always sums to the total, each part within one unit of its exact share', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 18n), max: 10n ** 18n }),
        fc.array(fc.bigInt({ min: 0n, max: 10n ** 12n }), { minLength: 1, maxLength: 12 }),
        fc.bigInt({ min: 1n, max: 10n ** 6n }),
        (total, ints, scaleDen) => {
          fc.pre(ints.some((x) => x > 0n));
          // weights k / scaleDen: fractional weights, same proportions as the integers
          const got = allocate(
            total,
            ints.map((x) => Ratio.of(x, scaleDen)),
          );
          const sumW = ints.reduce((a, b) => a + b, 0n);
          expect(got.reduce((a, b) => a + b, 0n)).toBe(total);
          got.forEach((part, i) => {
            // |part - total * w_i / sumW| < 1  <=>  |part * sumW - total * w_i| < sumW
            const diff = part * sumW - total * ints[i]!;
            expect(diff < 0n ? -diff : diff).toBeLessThan(sumW);
          });
        },
      ),
      { numRuns: 1000 },
    );
  });
});
