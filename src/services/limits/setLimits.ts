import { Ratio } from '../../domain/money.ts';
import type { Queryable } from '../../store/db.ts';
import { evaluateSpendAlerts } from '../alerts/evaluateSpendAlerts.ts';
import { audit, type Ctx, scopeOrg } from '../context.ts';
import { invalid } from '../errors.ts';
import { loadOrg, type OrgRow } from '../orgs/shape.ts';
import { getLimits, requireTrackedSpend } from './getLimits.ts';
import { counterKey, loadLimitSettings, readCounters, scopesFor } from './scopes.ts';

/** Sets the monthly alert threshold and allowed limit (org currency; USD provider cost for BYOM). */
export async function setLimits(
  ctx: Ctx,
  orgId: string,
  input: { alert_threshold: string | null; allowed_limit: string | null },
) {
  scopeOrg(ctx, orgId, 'limits:write');
  const { alert_threshold: threshold, allowed_limit: limit } = input;
  if (threshold !== null && limit !== null && Ratio.parse(threshold).cmp(Ratio.parse(limit)) > 0) {
    throw invalid(
      'alert_threshold',
      `alert_threshold (${threshold}) must not exceed allowed_limit (${limit})`,
    );
  }
  await ctx.db.transaction(async (tx) => {
    const org = await loadOrg(tx, orgId);
    // Clearing a BYOK org's limits (set before it moved to BYOK) stays possible.
    if (threshold !== null || limit !== null) {
      requireTrackedSpend(org, threshold !== null ? 'alert_threshold' : 'allowed_limit');
    }
    await tx.query(
      `INSERT INTO org_limits (org_id, alert_threshold, allowed_limit) VALUES ($1, $2, $3)
       ON CONFLICT (org_id) DO UPDATE SET alert_threshold = EXCLUDED.alert_threshold,
         allowed_limit = EXCLUDED.allowed_limit, updated_at = now()`,
      [orgId, threshold, limit],
    );
    await tx.query(
      'INSERT INTO org_limit_changes (org_id, alert_threshold, allowed_limit) VALUES ($1, $2, $3)',
      [orgId, threshold, limit],
    );
    await audit(tx, ctx, orgId, 'limits.set', orgId, { ...input });
    await alertOnSpendSoFar(tx, org);
  });
  return getLimits(ctx, orgId);
}

/**
 * A threshold or limit set under what the month has spent already fires its alerts now (as the
 * next charge would), so the alerts page and webhooks agree with the limits page at once.
 */
async function alertOnSpendSoFar(tx: Queryable, org: OrgRow): Promise<void> {
  const none = { member_id: '', workspace: '', workspace_group: '', project: '', api_key_id: '' };
  const scopes = scopesFor(org, await loadLimitSettings(tx, org.id), none, new Date()).filter(
    (s) => s.kind === 'org',
  );
  const counted = await readCounters(tx, org.id, scopes);
  const counters = scopes.flatMap((s) => {
    const c = counted.get(counterKey(s));
    return c ? [{ scope: s.scope, periodStart: s.periodStart, ...c }] : [];
  });
  if (counters.length > 0) await evaluateSpendAlerts(tx, org, { scopes, counters, charged: null });
}
