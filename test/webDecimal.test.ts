/** The web app's exact decimal helpers (web/src/decimal.ts): figures shown never pass through a float. */
import { describe, expect, it } from 'vitest';
import { addDecimal, leftOf, percentFloor } from '../web/src/decimal.ts';

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
});
