import { Ratio } from '../../domain/money.ts';
import { audit, type Ctx, scopeOrg } from '../context.ts';
import { invalid } from '../errors.ts';
import { loadOrg } from '../orgs/shape.ts';
import { getLimits } from './getLimits.ts';

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
    await loadOrg(tx, orgId);
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
  });
  return getLimits(ctx, orgId);
}
