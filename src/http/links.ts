/** Addresses of the web app that API answers hand to host apps, on the address users reach Tally at. */
import type { Config } from '../config.ts';

/** TALLY_PUBLIC_URL when set, else the origin the request came in on; no trailing slash. */
export const publicBase = (config: Config, requestUrl: string): string =>
  (config.TALLY_PUBLIC_URL ?? new URL(requestUrl).origin).replace(/\/+$/, '');

/** The web app's quota-exceeded page for an org, naming why the call was blocked. */
export function quotaPageUrl(base: string, orgId: string, reason: string, budgetId?: string): string {
  const query = new URLSearchParams({ org: orgId, reason });
  if (budgetId) query.set('budget', budgetId);
  return `${base}/usage/quota?${query}`;
}
