/**
 * Locks an org's balance row for a spend decision (a hold, a streamed increment, a capture, a
 * batch of events) and reads what the decision needs, in one round trip (`tally_lock_for_spend`,
 * migration 0015): the balance, whether housekeeping is due (no plan grant running, a grant past
 * its expiry), the limit counters of the call's scopes, the version of the org's terms and limits
 * (spendTerms.ts), its active grants (for the draw-down) and, when billing an authorization, that
 * authorization's state, locked as well. Housekeeping runs only when due.
 *
 * The counters and the grants are read by statements of their own inside the function: a
 * statement's subqueries see the snapshot taken before it waited for the lock, so they would miss
 * what the transaction it waited for wrote (the locked rows themselves are re-read fresh). Stale
 * flags only cost a no-op: issuing the plan grant and expiring are idempotent.
 */
import type { Usage } from '../../domain/pricing.ts';
import type { Queryable } from '../../store/db.ts';
import { type CounterTotals, counterKey, type LimitScope } from '../limits/scopes.ts';
import type { OrgRow } from '../orgs/shape.ts';
import {
  activeGrants,
  type BalanceRow,
  type GrantFields,
  type GrantRow,
  readBalance,
  toBalance,
  toGrantRow,
} from './balances.ts';
import { ensurePlanGrant } from './ensurePlanGrant.ts';
import { expireDueGrants } from './expireGrants.ts';

/** What changes on an authorization while it lives, as read under the lock. */
export interface AuthorizationState {
  status: 'active' | 'captured' | 'voided' | 'expired';
  held: string;
  charged: string;
  usage: Usage;
  event_id: string | null;
  result: Record<string, unknown> | null;
  /** JSON text; read under the lock, so expiry is judged on the row itself, not on a kept copy. */
  expires_at: string;
}

export interface SpendLock {
  balance: BalanceRow;
  counters: CounterTotals;
  /** The locked authorization's state when one was named (null if it does not exist). */
  authorization: AuthorizationState | null;
  /** The org's terms and limits in force (`tally_spend_version`), to check a kept copy against. */
  spendVersion: string | null;
  /** The org's active grants under the lock (read again when housekeeping just changed them). */
  grants: GrantRow[];
}

type LockedRow = Record<keyof BalanceRow, string> & {
  plan_running: boolean;
  expiry_due: boolean;
  counters: { scope: string; period_start: string; spent: string; held: string }[];
  authorization_state: AuthorizationState | null;
  spend_version: string | null;
  active_grants: GrantFields[];
};

export async function lockForSpend(
  tx: Queryable,
  org: OrgRow,
  scopes: LimitScope[],
  now: Date,
  authorizationId: string | null = null,
): Promise<SpendLock> {
  // Increments and captures begin with it: it can carry their BEGIN (all its parameters are text).
  const [row] = await tx.query<LockedRow>(
    'SELECT * FROM tally_lock_for_spend($1, $2, $3, $4)',
    [
      org.id,
      now.toISOString(),
      JSON.stringify(scopes.map((s) => ({ scope: s.scope, period_start: s.periodStart.toISOString() }))),
      authorizationId,
    ],
    { opening: true },
  );
  return spendLockOf(tx, org, row!, now);
}

/**
 * Locks the balance rows of several orgs for a batch of events (no scopes, no authorization) in
 * one round trip, in the order given (every batch gives them in id order, so batches queue rather
 * than deadlock), and answers each org's lock by its id; no org, no statement. Each call inside
 * the statement still reads with a snapshot of its own, taken after its lock: the function is
 * volatile.
 */
export async function lockOrgsForSpend(
  tx: Queryable,
  orgs: OrgRow[],
  now: Date,
): Promise<Map<string, SpendLock>> {
  if (orgs.length === 0) return new Map();
  const rows = await tx.query<LockedRow>(
    `SELECT l.* FROM unnest($1::text[]) WITH ORDINALITY AS o (id, n)
      CROSS JOIN LATERAL tally_lock_for_spend(o.id, $2, '[]', NULL) AS l
      ORDER BY o.n`,
    [orgs.map((o) => o.id), now.toISOString()],
  );
  const locks = new Map<string, SpendLock>();
  // Housekeeping, when due, runs org by org once every lock is held.
  for (const [i, org] of orgs.entries()) locks.set(org.id, await spendLockOf(tx, org, rows[i]!, now));
  return locks;
}

/** The spend lock as read, after the housekeeping its row says is due. */
async function spendLockOf(tx: Queryable, org: OrgRow, row: LockedRow, now: Date): Promise<SpendLock> {
  const planDue =
    !row.plan_running && org.billing_mode === 'credits' && BigInt(org.plan_allowance_credits) > 0n;
  const issued = planDue ? await ensurePlanGrant(tx, org, now) : false;
  const expired = row.expiry_due ? await expireDueGrants(tx, org.id, now) : 0n;
  const changed = issued || expired > 0n;
  const balance = changed ? await readBalance(tx, org.id) : toBalance(row);
  const grants = changed
    ? await activeGrants(tx, org.id)
    : row.active_grants.map((g) => toGrantRow(org.id, g));
  const counters: CounterTotals = new Map(
    row.counters.map((c) => [
      counterKey({ scope: c.scope, periodStart: new Date(c.period_start) }),
      { spent: BigInt(c.spent), held: BigInt(c.held) },
    ]),
  );
  return {
    balance,
    counters,
    authorization: row.authorization_state,
    spendVersion: row.spend_version,
    grants,
  };
}
