/** How much of an org's allowance is used, as the allowance bar and the in-editor usage bar show it. */
import { addDecimal, ratio } from './decimal.ts';
import type { Balance, Limits } from './types.ts';

/** Monthly plus bonus credits used, of those granted. */
export function allowanceUsed(balance: Balance): { used: string; granted: string } {
  return {
    used: addDecimal(balance.monthly.used_credits, balance.bonus.used_credits),
    granted: addDecimal(balance.monthly.granted_credits, balance.bonus.granted_credits),
  };
}

/** The share used: of the credits granted, or for a BYOM org of its monthly spend cap (null: no cap). */
export function shareUsed(balance: Balance, limits: Limits | null): number | null {
  if (balance.unit !== 'usd') {
    const { used, granted } = allowanceUsed(balance);
    return ratio(used, granted);
  }
  return limits?.allowed_limit ? ratio(limits.spent, limits.allowed_limit) : null;
}
