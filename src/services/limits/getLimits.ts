import { CREDIT_SCALE, formatUnits, parseUnits, Ratio } from '../../domain/money.ts';
import { calendarMonth } from '../../domain/periods.ts';
import { creditsToMoney } from '../../domain/pricing.ts';
import type { Queryable } from '../../store/db.ts';
import { type Ctx, scopeOrg } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { loadOrg, type OrgRow } from '../orgs/shape.ts';
import { counterKey, loadLimitSettings, readCounters } from './scopes.ts';

/** A limit amount as the API shows it: to the micro-unit, without trailing zeros. */
export const limitMoney = (text: string | null) =>
  text === null ? null : formatUnits(parseUnits(text, 6), 6);

export function unitValue(org: OrgRow): Ratio {
  return org.billing_mode === 'byom' ? Ratio.ONE : Ratio.parse(org.credit_value);
}

/** A BYOK org's spend is not tracked: a limit or budget could never apply to it, so none is set. */
export function requireTrackedSpend(org: OrgRow, field: string): void {
  if (org.billing_mode !== 'byok') return;
  throw new ServiceError(
    409,
    'spend_not_tracked',
    "This org's calls go straight to its own provider account (BYOK), so Tally tracks no spend for a limit or budget to count",
    field,
  );
}

export const LIMIT_STATUSES = ['ok', 'alert', 'exceeded'] as const;

/** Where a month's spend stands against the org's alert threshold and allowed limit. */
export function limitStatus(
  spent: Ratio,
  alertThreshold: string | null,
  allowedLimit: string | null,
): (typeof LIMIT_STATUSES)[number] {
  if (allowedLimit !== null && spent.cmp(Ratio.parse(allowedLimit)) >= 0) return 'exceeded';
  if (alertThreshold !== null && spent.cmp(Ratio.parse(alertThreshold)) >= 0) return 'alert';
  return 'ok';
}

/** The org's monthly limits with this month's spend and holds against them. */
export async function getLimits(ctx: Ctx, orgId: string, now = new Date()) {
  scopeOrg(ctx, orgId, 'usage:read');
  return limitsOf(ctx.db, await loadOrg(ctx.db, orgId), now);
}

/** getLimits for an org the caller has loaded (and checked the caller may read). */
export async function limitsOf(q: Queryable, org: OrgRow, now: Date) {
  const orgId = org.id;
  const settings = await loadLimitSettings(q, orgId);
  const month = calendarMonth(org.timezone, now);
  const scope = { scope: 'org', periodStart: month.start };
  const counter = (await readCounters(q, orgId, [scope])).get(counterKey(scope)) ?? {
    spent: 0n,
    held: 0n,
  };
  const spent = Ratio.parse(creditsToMoney(counter.spent, unitValue(org)));
  return {
    object: 'limits' as const,
    org_id: orgId,
    currency: org.billing_mode === 'byom' ? 'USD' : org.currency,
    basis: org.billing_mode === 'byom' ? ('provider_cost' as const) : ('credits' as const),
    period: {
      kind: 'calendar_month' as const,
      start: month.start.toISOString(),
      end: month.end.toISOString(),
    },
    alert_threshold: limitMoney(settings.alertThreshold),
    allowed_limit: limitMoney(settings.allowedLimit),
    spent: spent.toDecimal(CREDIT_SCALE + 6),
    held: creditsToMoney(counter.held, unitValue(org)),
    status: limitStatus(spent, settings.alertThreshold, settings.allowedLimit),
  };
}
