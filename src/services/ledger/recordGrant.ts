/**
 * Writes a grant with its ledger entry and balance change; part of it first pays off any
 * overage the org ran up, since that usage already happened.
 */
import type { GrantKind } from '../../domain/drawdown.ts';
import { newId } from '../../domain/ids.ts';
import type { Queryable } from '../../store/db.ts';
import { emitWebhookEvent } from '../webhooks/emitWebhookEvent.ts';
import { addToBalance, lockBalance } from './balances.ts';
import { GRANT_COLUMNS, type GrantRecord, grantView } from './shape.ts';

export interface NewGrant {
  kind: GrantKind;
  source: 'payment' | 'referral' | 'operator' | 'plan' | 'promotion' | 'rollover';
  amount: bigint;
  /** Grants take effect when written (plan grants: at their cycle start, which has begun). */
  effectiveAt: Date;
  expiresAt: Date | null;
  cycleStart?: Date;
  reason?: string | null;
  createdBy: string;
}

/** Returns the grant, or null when a plan grant for that cycle exists already. */
export async function recordGrant(
  tx: Queryable,
  orgId: string,
  grant: NewGrant,
): Promise<GrantRecord | null> {
  const balance = await lockBalance(tx, orgId);
  const [row] = await tx.query<GrantRecord>(
    `INSERT INTO grants (org_id, id, kind, source, amount, remaining, effective_at, expires_at, cycle_start, reason, created_by)
     VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (org_id, cycle_start) WHERE kind = 'plan' DO NOTHING
     RETURNING ${GRANT_COLUMNS}`,
    [
      orgId,
      newId('grt'),
      grant.kind,
      grant.source,
      String(grant.amount),
      grant.effectiveAt.toISOString(),
      grant.expiresAt?.toISOString() ?? null,
      grant.cycleStart?.toISOString() ?? null,
      grant.reason ?? null,
      grant.createdBy,
    ],
  );
  if (!row) return null;
  await tx.query(
    `INSERT INTO ledger_entries (org_id, kind, grant_id, amount, memo) VALUES ($1, 'grant', $2, $3, $4)`,
    [orgId, row.id, String(grant.amount), `${grant.kind} grant`],
  );
  const settled = balance.overage < grant.amount ? balance.overage : grant.amount;
  if (settled > 0n) {
    await tx.query(
      'UPDATE grants SET consumed = consumed + $3, remaining = remaining - $3 WHERE org_id = $1 AND id = $2',
      [orgId, row.id, String(settled)],
    );
    await tx.query(
      `INSERT INTO ledger_entries (org_id, kind, grant_id, amount, memo) VALUES ($1, 'settlement', $2, $3, 'overage paid off')`,
      [orgId, row.id, String(-settled)],
    );
    row.consumed = String(settled);
    row.remaining = String(grant.amount - settled);
  }
  await addToBalance(tx, orgId, {
    granted: grant.amount,
    consumed: settled,
    remaining: grant.amount - settled,
    overage: -settled,
  });
  await emitWebhookEvent(tx, orgId, 'grant.created', grantView(row));
  return row;
}
