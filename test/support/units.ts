/** Amounts in API answers as exact integers, to add up and compare without rounding. */
import { CREDIT_SCALE, decimalUnits } from '../../src/domain/money.ts';

/** Credits in millionths. */
export const credits = (s: string) => decimalUnits(s, CREDIT_SCALE);
/** Money in units of 10^-12 (costs carry twelve decimals). */
export const cost = (s: string) => decimalUnits(s, 12);
export const sum = <T>(rows: T[], f: (r: T) => bigint) => rows.reduce((a, r) => a + f(r), 0n);
