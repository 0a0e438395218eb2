/**
 * Expiry: what is left of a grant past its expiry leaves the balance, as an `expiry` entry. A
 * cycle's plan grant that expires with credits left rolls the org's allowed share of them over
 * into the next cycle (orgs.plan_rollover_max_credits), in the same transaction, so exactly once.
 */
import { anchorDayOf, billingCycle } from '../../domain/periods.ts';
import type { Queryable } from '../../store/db.ts';
import { loadOrg } from '../orgs/shape.ts';
import { addToBalance } from './balances.ts';
import { recordGrant } from './recordGrant.ts';

/** Expires an org's due grants; returns the credits expired. Call with the org's balance row locked. */
export async function expireDueGrants(tx: Queryable, orgId: string, now = new Date()): Promise<bigint> {
  const due = await tx.query<{ id: string; remaining: string; kind: string; expires_at: Date }>(
    `WITH due AS (
       SELECT id, remaining, kind, expires_at FROM grants
        WHERE org_id = $1 AND status = 'active' AND expires_at <= $2 FOR UPDATE
     ), expired AS (
       UPDATE grants g SET status = 'expired', expired = g.expired + due.remaining, remaining = 0
         FROM due WHERE g.org_id = $1 AND g.id = due.id RETURNING g.id
     )
     SELECT due.id, due.remaining, due.kind, due.expires_at FROM due JOIN expired USING (id)`,
    [orgId, now.toISOString()],
  );
  const total = due.reduce((sum, g) => sum + BigInt(g.remaining), 0n);
  const withCredits = due.filter((g) => g.remaining !== '0');
  if (withCredits.length > 0) {
    await tx.query(
      `INSERT INTO ledger_entries (org_id, kind, grant_id, amount, memo)
       SELECT $1, 'expiry', id, -amount, 'grant expired'
         FROM jsonb_to_recordset($2::jsonb) AS x(id text, amount bigint)`,
      [orgId, JSON.stringify(withCredits.map((g) => ({ id: g.id, amount: g.remaining })))],
    );
    await addToBalance(tx, orgId, { expired: total, remaining: -total });
    await rollOver(
      tx,
      orgId,
      withCredits.filter((g) => g.kind === 'plan'),
      now,
    );
  }
  return total;
}

/**
 * Carries unused plan credits into the cycle that follows each expired plan grant, up to the org's
 * rollover maximum, as a `bonus` grant (source `rollover`) expiring with that cycle. A plan grant
 * expired only after the following cycle ended too (an org idle for a while) carries nothing.
 */
async function rollOver(
  tx: Queryable,
  orgId: string,
  plans: { remaining: string; expires_at: Date }[],
  now: Date,
): Promise<void> {
  if (plans.length === 0) return;
  const org = await loadOrg(tx, orgId);
  const most = BigInt(org.plan_rollover_max_credits);
  if (most === 0n || org.billing_mode !== 'credits') return;
  for (const plan of plans) {
    const next = billingCycle(org.timezone, anchorDayOf(org.billing_cycle_anchor), plan.expires_at);
    if (next.end <= now) continue;
    const unused = BigInt(plan.remaining);
    await recordGrant(tx, orgId, {
      kind: 'bonus',
      source: 'rollover',
      amount: unused < most ? unused : most,
      effectiveAt: now,
      expiresAt: next.end,
      reason: `Unused plan credits of the cycle that ended ${plan.expires_at.toISOString().slice(0, 10)}`,
      createdBy: 'plan',
    });
  }
}
