/** The web app's exact decimal helpers (web/src/decimal.ts): figures shown never pass through a float. */
import { describe, expect, it } from 'vitest';
import { addDecimal, leftOf, percentFloor, shownParts } from '../web/src/decimal.ts';
import { createFormats } from '../web/src/format.ts';

describe('web decimals', () => {
  it('rounds a share down to whole percents exactly, where a float multiplication lands below', () => {
    // 0.57 * 100 is 56.99999999999999 as a float, 0.29 * 100 is 28.999999999999996.
    expect(percentFloor('57', '100')).toBe(57);
    expect(percentFloor('0.29', '1')).toBe(29);
    expect(percentFloor('18.75', '25')).toBe(75);
    expect(percentFloor('24.999999', '25')).toBe(99);
    expect(percentFloor('30', '25')).toBe(120);
    expect(percentFloor('5', '0')).toBe(0);
    expect(percentFloor('-1', '10')).toBe(0);
  });

  it('adds and takes what is left to the last digit', () => {
    expect(addDecimal('0.1', '0.2')).toBe('0.3');
    expect(leftOf('25', '18.75')).toBe('6.25');
    expect(leftOf('25', '30')).toBe('0');
  });

  it('rounds parts together so the parts shown add up to the total shown', () => {
    // Each rounded on its own: 0.34 + 0.34 + 0.33 = 1.01 under a total of 1.00.
    expect(shownParts('1', ['0.335', '0.335', '0.33'], 2)).toEqual({
      total: '1',
      parts: ['0.34', '0.33', '0.33'],
    });
    // The total rounds half away from zero, as Intl shows it; the cent it gains goes to a part.
    expect(shownParts('0.125', ['0.0625', '0.0625'], 2)).toEqual({ total: '0.13', parts: ['0.07', '0.06'] });
    // The largest remainder gets the unit first, whatever its place.
    expect(shownParts('1', ['0.331', '0.336', '0.333'], 2)).toEqual({
      total: '1',
      parts: ['0.33', '0.34', '0.33'],
    });
    expect(shownParts('12', ['12'], 0)).toEqual({ total: '12', parts: ['12'] });
    // Parts that do not add up to the total (only the largest listed), or a negative one: none.
    expect(shownParts('1', ['0.5', '0.4'], 2)).toBeNull();
    expect(shownParts('1', ['1.5', '-0.5'], 2)).toBeNull();
  });

  it('shows money and credit parts at the digits the total is shown with', () => {
    const formats = createFormats('EUR', 'UTC', 'en-US');
    // Each rounded on its own: €1.34 + €1.34 under €2.67.
    expect(formats.moneyParts('2.67', ['1.335', '1.335'])).toEqual({
      total: '€2.67',
      parts: ['€1.34', '€1.33'],
    });
    // Below one unit, four decimals are shown, and the parts are rounded at four.
    expect(formats.moneyParts('0.01', ['0.00335', '0.00335', '0.0033'])).toEqual({
      total: '€0.01',
      parts: ['€0.0034', '€0.0033', '€0.0033'],
    });
    expect(formats.moneyParts('100', ['33.5', '33.5', '33'], 'JPY')).toEqual({
      total: '¥100',
      parts: ['¥34', '¥33', '¥33'],
    });
    expect(formats.creditParts('1', ['0.335', '0.335', '0.33'])).toEqual({
      total: '1',
      parts: ['0.34', '0.33', '0.33'],
    });
    // Parts that do not add up are each shown rounded on their own.
    expect(formats.moneyParts('3', ['1.335', '1.335'])).toEqual({
      total: '€3.00',
      parts: ['€1.34', '€1.34'],
    });
    // A part below one unit under a total above it keeps its four decimals rather than show as
    // €0.00, and so do the total and the other parts: €5.00 + €0.0069 would not add up to €5.00.
    expect(formats.moneyParts('5.00347', ['4.99662', '0.00685'])).toEqual({
      total: '€5.0035',
      parts: ['€4.9966', '€0.0069'],
    });
    expect(formats.moneyParts('5', ['4.9966', '0.0034'])).toEqual({
      total: '€5.00',
      parts: ['€4.9966', '€0.0034'],
    });
  });
});
