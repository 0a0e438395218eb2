/**
 * Draws charges from an org's grants and records them: one `debit` entry per event and grant it
 * drew from (so every charge traces to its funding), and `overage` for what no grant covered.
 * Runs inside the caller's transaction, with the org's balance row locked.
 */
import { drawDown } from '../../domain/drawdown.ts';
import type { Queryable } from '../../store/db.ts';
import { activeGrants, addToBalance, type BalanceRow, type GrantRow, lockBalance } from './balances.ts';
import { expireDueGrants } from './expireGrants.ts';

export interface Charge {
  amount: bigint;
  eventId?: string | null;
  authorizationId?: string | null;
}

/** The org's balance and active grants once the charges are drawn (for alerts on credits). */
export interface ChargeOutcome {
  balance: BalanceRow;
  grants: GrantRow[];
}

export async function applyCharges(
  tx: Queryable,
  orgId: string,
  charges: Charge[],
): Promise<ChargeOutcome | null> {
  const billable = charges.filter((c) => c.amount > 0n);
  if (billable.length === 0) return null;
  const before = await lockBalance(tx, orgId);
  const expired = await expireDueGrants(tx, orgId);
  const grants = await activeGrants(tx, orgId);
  const outcome = drawDown(
    grants,
    billable.map((c) => c.amount),
  );
  const entries: {
    kind: string;
    grant_id: string | null;
    amount: string;
    event_id: string | null;
    authorization_id: string | null;
  }[] = [];
  const perGrant = new Map<string, bigint>();
  let overage = 0n;
  outcome.forEach((o, i) => {
    const charge = billable[i]!;
    const ref = { event_id: charge.eventId ?? null, authorization_id: charge.authorizationId ?? null };
    for (const d of o.draws) {
      entries.push({ kind: 'debit', grant_id: d.grantId, amount: String(-d.amount), ...ref });
      perGrant.set(d.grantId, (perGrant.get(d.grantId) ?? 0n) + d.amount);
    }
    if (o.overage > 0n) {
      entries.push({ kind: 'overage', grant_id: null, amount: String(-o.overage), ...ref });
      overage += o.overage;
    }
  });
  if (perGrant.size > 0) {
    await tx.query(
      `UPDATE grants g SET consumed = g.consumed + x.amount, remaining = g.remaining - x.amount
         FROM jsonb_to_recordset($2::jsonb) AS x(id text, amount bigint)
        WHERE g.org_id = $1 AND g.id = x.id`,
      [orgId, JSON.stringify([...perGrant].map(([id, amount]) => ({ id, amount: String(amount) })))],
    );
  }
  await tx.query(
    `INSERT INTO ledger_entries (org_id, kind, grant_id, amount, event_id, authorization_id)
     SELECT $1, kind, grant_id, amount, event_id, authorization_id
       FROM jsonb_to_recordset($2::jsonb) AS x(kind text, grant_id text, amount bigint, event_id text, authorization_id text)`,
    [orgId, JSON.stringify(entries)],
  );
  const drawn = [...perGrant.values()].reduce((a, b) => a + b, 0n);
  await addToBalance(tx, orgId, { consumed: drawn, remaining: -drawn, overage });
  return {
    // The row as this transaction left it, without reading it again: expiry, then the draw-down.
    balance: {
      ...before,
      expired: before.expired + expired,
      consumed: before.consumed + drawn,
      remaining: before.remaining - expired - drawn,
      overage: before.overage + overage,
    },
    grants: grants.map((g) => {
      const used = perGrant.get(g.id) ?? 0n;
      return { ...g, consumed: g.consumed + used, remaining: g.remaining - used };
    }),
  };
}
