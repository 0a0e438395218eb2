/**
 * Draws charges from an org's grants and records them: one `debit` entry per event and grant it
 * drew from (so every charge traces to its funding), and `overage` for what no grant covered.
 * Runs inside the caller's transaction, with the org's balance row locked and due grants expired
 * (lockForSpend); `balance` is the row as this transaction sees it and `grants` the active grants
 * the lock read. Its writes (grants, entries, balance) are CTEs of the caller's statement.
 */
import { drawDown } from '../../domain/drawdown.ts';
import type { BalanceRow, GrantRow } from './balances.ts';

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

/** What drawing the charges takes from each grant, and the ledger entries that record it. */
export interface ChargePlan {
  /** Grant id and amount drawn from it, as JSON for `jsonb_to_recordset(id text, amount bigint)`. */
  draws: string;
  /** One JSON array per entry: kind, grant, amount, event, authorization. */
  entries: string;
  drawn: bigint;
  overage: bigint;
  outcome: ChargeOutcome;
}

/**
 * Draws the charges over the grants (plan, bonus, top-up, promo, in expiry order) in JS: what each
 * grant gives, the entries, and the balance and grants as they will be once written.
 */
export function planCharges(balance: BalanceRow, grants: GrantRow[], charges: Charge[]): ChargePlan | null {
  const billable = charges.filter((c) => c.amount > 0n);
  if (billable.length === 0) return null;
  const outcome = drawDown(
    grants,
    billable.map((c) => c.amount),
  );
  // An ingest batch writes one entry per event, so column names repeated per entry would double
  // what is sent and parsed.
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
  return {
    draws: JSON.stringify([...perGrant].map(([id, amount]) => ({ id, amount: String(amount) }))),
    entries: JSON.stringify(entries),
    drawn,
    overage,
    outcome: {
      // The row as the transaction leaves it, without reading it again.
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
    },
  };
}

/** A CTE `name` drawing a plan's amounts (`draws`, its JSON as a parameter) from org `org`'s grants. */
export const DRAW_FROM_GRANTS = (org: string, draws: string, name = 'drawn') =>
  `${name} AS (
       UPDATE grants g SET consumed = g.consumed + x.amount, remaining = g.remaining - x.amount
         FROM jsonb_to_recordset(${draws}::jsonb) AS x(id text, amount bigint)
        WHERE g.org_id = ${org} AND g.id = x.id
     )`;

/** A plan's ledger entries (`entries`, its JSON as a parameter) as rows of `ledger_entries`' columns. */
export const PLANNED_ENTRIES = (org: string, entries: string) =>
  `SELECT ${org}, e ->> 0, e ->> 1, (e ->> 2)::bigint, e ->> 3, e ->> 4, NULL FROM jsonb_array_elements(${entries}::jsonb) AS e`;

/** The columns PLANNED_ENTRIES fills, in its order. */
export const ENTRY_COLUMNS = '(org_id, kind, grant_id, amount, event_id, authorization_id, memo)';

/**
 * CTEs (named with `suffix`) writing a plan for org `org` (a parameter): the draws from its grants,
 * its ledger entries and its balance; `param` adds a parameter and answers its placeholder.
 */
export function chargeCtes(
  org: string,
  plan: ChargePlan,
  suffix: string,
  param: (value: string) => string,
): string {
  const drawn = param(String(plan.drawn));
  return `${DRAW_FROM_GRANTS(org, param(plan.draws), `drawn${suffix}`)}, entries${suffix} AS (
       INSERT INTO ledger_entries ${ENTRY_COLUMNS} ${PLANNED_ENTRIES(org, param(plan.entries))}
     ), balance${suffix} AS (
       UPDATE org_balances SET consumed = consumed + ${drawn}::bigint, remaining = remaining - ${drawn}::bigint,
              overage = overage + ${param(String(plan.overage))}::bigint, updated_at = now()
        WHERE org_id = ${org}
     )`;
}
