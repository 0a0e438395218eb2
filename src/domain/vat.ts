/**
 * Top-ups are sold at a VAT-inclusive price: the amount the buyer pays is the invoice total. The VAT
 * in it is total x rate / (100 + rate), rounded once, half to even, to the currency's minor unit; the
 * net amount is what is left, so net + VAT = total to the last cent.
 */
import { formatUnits, parseUnits, Ratio } from './money.ts';

/** Digits of the minor unit of each currency Tally sells in. */
export const MINOR_DIGITS = { EUR: 2, USD: 2 } as const;
export type Currency = keyof typeof MINOR_DIGITS;

export interface VatSplit {
  /** Integer minor units (cents). */
  net: bigint;
  vat: bigint;
  total: bigint;
}

/** `ratePercent` is a decimal string such as "19" or "7.7". */
export function splitVat(totalMinor: bigint, ratePercent: string, digits: number): VatSplit {
  const rate = Ratio.parse(ratePercent);
  if (rate.isNegative()) throw new RangeError('a VAT rate cannot be negative');
  const total = Ratio.fromUnits(totalMinor, digits);
  const vat = total
    .mul(rate)
    .div(rate.add(Ratio.int(100)))
    .roundHalfEven(digits);
  return { net: totalMinor - vat, vat, total: totalMinor };
}

/** Minor units of a decimal amount string; refuses more decimals than the currency has. */
export const toMinor = (amount: string, currency: Currency): bigint =>
  parseUnits(amount, MINOR_DIGITS[currency]);

/** "10.5" -> "10.50": the fixed number of decimals an invoice shows. */
export function fixedMinor(minor: bigint, currency: Currency): string {
  const digits: number = MINOR_DIGITS[currency];
  const [whole, fraction = ''] = formatUnits(minor, digits).split('.');
  return digits === 0 ? whole! : `${whole}.${fraction.padEnd(digits, '0')}`;
}
