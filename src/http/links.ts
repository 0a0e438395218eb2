/** Addresses of the web app that API answers hand to host apps (on `publicBase` from config.ts). */
/** The web app's quota-exceeded page for an org, naming why the call was blocked. */
export function quotaPageUrl(base: string, orgId: string, reason: string, budgetId?: string): string {
  const query = new URLSearchParams({ org: orgId, reason });
  if (budgetId) query.set('budget', budgetId);
  return `${base}/usage/quota?${query}`;
}
