/**
 * quota.exceeded for a hold denied by the org's monthly limit or a hard budget: the limit is
 * reached for this call even when spend alone has not reached it yet (holds take the rest).
 */
import { formatCredits } from '../../domain/money.ts';
import { creditsToMoney } from '../../domain/pricing.ts';
import type { Queryable } from '../../store/db.ts';
import type { Headroom } from '../authorizations/headroom.ts';
import { unitValue } from '../limits/getLimits.ts';
import { counterKey, type LimitScope, readCounters } from '../limits/scopes.ts';
import type { OrgRow } from '../orgs/shape.ts';
import { alertScopeOf, limitDetails } from './evaluateSpendAlerts.ts';
import { recordAlerts } from './recordAlerts.ts';

export async function recordDeniedHold(
  tx: Queryable,
  org: OrgRow,
  scopes: LimitScope[],
  tightest: NonNullable<Headroom['tightest']>,
  request: { member: string; feature: string; estimate: bigint },
  now = new Date(),
): Promise<string[]> {
  if (tightest.reason === 'insufficient_credits') return [];
  const scope = scopes.find((s) =>
    tightest.reason === 'quota_exceeded' ? s.kind === 'org' : s.budgetId === tightest.budget?.id,
  );
  if (!scope || scope.limit === null) return [];
  const counter = (await readCounters(tx, org.id, [scope])).get(counterKey(scope)) ?? {
    spent: 0n,
    held: 0n,
  };
  const credits = (units: bigint) => (org.billing_mode === 'credits' ? formatCredits(units) : null);
  return recordAlerts(
    tx,
    org.id,
    [
      {
        type: 'quota.exceeded',
        scope: alertScopeOf(scope),
        periodStart: scope.periodStart,
        thresholdPercent: 100,
        details: {
          ...limitDetails(org, scope, counter.spent, scope.limit),
          reason: tightest.reason,
          held_amount: creditsToMoney(counter.held, unitValue(org)),
          held_credits: credits(counter.held),
          denied: {
            member: request.member,
            feature: request.feature,
            requested_amount: creditsToMoney(request.estimate, unitValue(org)),
            requested_credits: credits(request.estimate),
          },
        },
      },
    ],
    now,
  );
}
