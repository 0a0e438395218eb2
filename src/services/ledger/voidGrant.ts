import { CREDIT_SCALE, formatCredits, parseUnits } from '../../domain/money.ts';
import { audit, type Ctx, requireOperator } from '../context.ts';
import { invalid, ServiceError } from '../errors.ts';
import { loadOrg } from '../orgs/shape.ts';
import { addToBalance, lockBalance } from './balances.ts';
import { GRANT_COLUMNS, type GrantRecord, type GrantView, grantView } from './shape.ts';

/**
 * Withdraws credits from a grant (a `void` entry): what is left of it, or `amount` of what is left
 * (a correction that takes part of it back; the grant stays active). What was used stays used.
 */
export async function voidGrant(
  ctx: Ctx,
  orgId: string,
  grantId: string,
  input: { reason?: string | null; amount_credits?: string | null } = {},
): Promise<GrantView> {
  requireOperator(ctx);
  const amount = input.amount_credits ? parseUnits(input.amount_credits, CREDIT_SCALE) : null;
  if (amount === 0n) throw invalid('amount_credits', 'amount_credits must be greater than 0');
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
    if (amount !== null && amount > left) {
      throw invalid(
        'amount_credits',
        `amount_credits must be at most what is left of the grant (${formatCredits(left)})`,
      );
    }
    const taken = amount ?? left;
    const [row] = await tx.query<GrantRecord>(
      `UPDATE grants SET status = CASE WHEN $4 THEN 'voided' ELSE status END,
              expired = expired + $3::bigint, remaining = remaining - $3::bigint
        WHERE org_id = $1 AND id = $2 RETURNING ${GRANT_COLUMNS}`,
      [orgId, grantId, String(taken), amount === null],
    );
    const reason = input.reason ?? (amount === null ? 'grant voided' : 'grant reduced');
    await tx.query(
      `INSERT INTO ledger_entries (org_id, kind, grant_id, amount, memo) VALUES ($1, 'void', $2, $3, $4)`,
      [orgId, grantId, String(-taken), reason],
    );
    await addToBalance(tx, orgId, { expired: taken, remaining: -taken });
    await audit(tx, ctx, orgId, amount === null ? 'grant.voided' : 'grant.reduced', grantId, {
      reason: input.reason ?? null,
      ...(amount === null ? {} : { amount_credits: formatCredits(amount) }),
    });
    return grantView(row!);
  });
}
