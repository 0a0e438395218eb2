import { audit, type Ctx, requireOperator } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { loadOrg } from '../orgs/shape.ts';
import { addToBalance, lockBalance } from './balances.ts';
import { GRANT_COLUMNS, type GrantRecord, type GrantView, grantView } from './shape.ts';

/** Withdraws what is left of a grant (a `void` entry); what was already used stays used. */
export async function voidGrant(
  ctx: Ctx,
  orgId: string,
  grantId: string,
  reason?: string | null,
): Promise<GrantView> {
  requireOperator(ctx);
  // A missing org answers 404 before its balance row is locked (and would be created).
  await loadOrg(ctx.db, orgId);
  return ctx.db.transaction(async (tx) => {
    await lockBalance(tx, orgId);
    const [grant] = await tx.query<GrantRecord>(
      `SELECT ${GRANT_COLUMNS} FROM grants WHERE org_id = $1 AND id = $2 FOR UPDATE`,
      [orgId, grantId],
    );
    if (!grant) throw new ServiceError(404, 'not_found', 'Grant not found', 'grant');
    if (grant.status !== 'active')
      throw new ServiceError(409, 'grant_not_active', `The grant is already ${grant.status}`);
    const left = BigInt(grant.remaining);
    const [row] = await tx.query<GrantRecord>(
      `UPDATE grants SET status = 'voided', expired = expired + remaining, remaining = 0
        WHERE org_id = $1 AND id = $2 RETURNING ${GRANT_COLUMNS}`,
      [orgId, grantId],
    );
    await tx.query(
      `INSERT INTO ledger_entries (org_id, kind, grant_id, amount, memo) VALUES ($1, 'void', $2, $3, $4)`,
      [orgId, grantId, String(-left), reason ?? 'grant voided'],
    );
    await addToBalance(tx, orgId, { expired: left, remaining: -left });
    await audit(tx, ctx, orgId, 'grant.voided', grantId, { reason: reason ?? null });
    return grantView(row!);
  });
}
