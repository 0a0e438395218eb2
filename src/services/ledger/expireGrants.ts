/** Expiry: what is left of a grant past its expiry leaves the balance, as an `expiry` entry. */
import type { Queryable } from '../../store/db.ts';
import { addToBalance } from './balances.ts';

/** Expires an org's due grants; returns the credits expired. Call with the org's balance row locked. */
export async function expireDueGrants(tx: Queryable, orgId: string, now = new Date()): Promise<bigint> {
  const due = await tx.query<{ id: string; remaining: string }>(
    `WITH due AS (
       SELECT id, remaining FROM grants
        WHERE org_id = $1 AND status = 'active' AND expires_at <= $2 FOR UPDATE
     ), expired AS (
       UPDATE grants g SET status = 'expired', expired = g.expired + due.remaining, remaining = 0
         FROM due WHERE g.org_id = $1 AND g.id = due.id RETURNING g.id
     )
     SELECT due.id, due.remaining FROM due JOIN expired USING (id)`,
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
  }
  return total;
}
