/**
 * Draws charges from an org's grants and records them: one `debit` entry per event and grant it
 * drew from (so every charge traces to its funding), and `overage` for what no grant covered.
 * Runs inside the caller's transaction, with the org's balance row locked and due grants expired
 * (lockForSpend); `balance` is the row as this transaction sees it and `lockedGrants` the active
 * grants the lock read (null: read them here). Writes grants, entries and balance in one statement.
 */
import { drawDown } from '../../domain/drawdown.ts';
import type { Queryable } from '../../store/db.ts';
import {
  ADD_TO_BALANCE,
  activeGrants,
  type BalanceRow,
  balanceDeltaParams,
  type GrantRow,
} from './balances.ts';

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
  balance: BalanceRow,
  charges: Charge[],
  lockedGrants: GrantRow[] | null,
): Promise<ChargeOutcome | null> {
  const billable = charges.filter((c) => c.amount > 0n);
  if (billable.length === 0) return null;
  const grants = lockedGrants ?? (await activeGrants(tx, orgId));
  const outcome = drawDown(
    grants,
    billable.map((c) => c.amount),
  );
  // One JSON array per entry: kind, grant, amount, event, authorization (an ingest batch writes
  // one per event, so column names repeated per entry would double what is sent and parsed).
  const entries: [string, string | null, string, string | null, string | null][] = [];
  const perGrant = new Map<string, bigint>();
  let overage = 0n;
  outcome.forEach((o, i) => {
    const charge = billable[i]!;
    const eventId = charge.eventId ?? null;
    const authorizationId = charge.authorizationId ?? null;
    for (const d of o.draws) {
      entries.push(['debit', d.grantId, String(-d.amount), eventId, authorizationId]);
      perGrant.set(d.grantId, (perGrant.get(d.grantId) ?? 0n) + d.amount);
    }
    if (o.overage > 0n) {
      entries.push(['overage', null, String(-o.overage), eventId, authorizationId]);
      overage += o.overage;
    }
  });
  const drawn = [...perGrant.values()].reduce((a, b) => a + b, 0n);
  await tx.query(
    `WITH drawn AS (
       UPDATE grants g SET consumed = g.consumed + x.amount, remaining = g.remaining - x.amount
         FROM jsonb_to_recordset($8::jsonb) AS x(id text, amount bigint)
        WHERE g.org_id = $1 AND g.id = x.id
     ), entries AS (
       INSERT INTO ledger_entries (org_id, kind, grant_id, amount, event_id, authorization_id)
       SELECT $1, e ->> 0, e ->> 1, (e ->> 2)::bigint, e ->> 3, e ->> 4 FROM jsonb_array_elements($9::jsonb) AS e
     )
     ${ADD_TO_BALANCE}`,
    [
      ...balanceDeltaParams(orgId, { consumed: drawn, remaining: -drawn, overage }),
      JSON.stringify([...perGrant].map(([id, amount]) => ({ id, amount: String(amount) }))),
      JSON.stringify(entries),
    ],
  );
  return {
    // The row as this transaction left it, without reading it again.
    balance: {
      ...balance,
      consumed: balance.consumed + drawn,
      remaining: balance.remaining - drawn,
      overage: balance.overage + overage,
    },
    grants: grants.map((g) => {
      const used = perGrant.get(g.id) ?? 0n;
      return { ...g, consumed: g.consumed + used, remaining: g.remaining - used };
    }),
  };
}
