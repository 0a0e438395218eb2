/**
 * Locks an org's balance row for a spend decision (a hold, a streamed increment) and reads what
 * the decision needs: the balance and whether housekeeping is due (no plan grant running, a grant
 * past its expiry) in the locking statement, then the limit counters of the call's scopes.
 * Housekeeping runs only when due. The counters need a statement of their own: a statement's
 * subqueries see the snapshot taken before it waited for the lock, so they would miss what the
 * transaction it waited for wrote (the locked row itself is re-read fresh). Stale flags only cost
 * a no-op: issuing the plan grant and expiring are idempotent.
 */
import type { Queryable } from '../../store/db.ts';
import { type CounterTotals, type LimitScope, readCounters } from '../limits/scopes.ts';
import type { OrgRow } from '../orgs/shape.ts';
import { type BalanceRow, readBalance, toBalance } from './balances.ts';
import { ensurePlanGrant } from './ensurePlanGrant.ts';
import { expireDueGrants } from './expireGrants.ts';

export interface SpendLock {
  balance: BalanceRow;
  counters: CounterTotals;
}

type LockedRow = Record<keyof BalanceRow, string> & { plan_running: boolean; expiry_due: boolean };

export async function lockForSpend(
  tx: Queryable,
  org: OrgRow,
  scopes: LimitScope[],
  now: Date,
): Promise<SpendLock> {
  const select = () =>
    tx.query<LockedRow>(
      `SELECT b.granted, b.consumed, b.expired, b.remaining, b.held, b.overage,
              EXISTS (SELECT 1 FROM grants g WHERE g.org_id = b.org_id AND g.kind = 'plan'
                         AND g.effective_at <= $2 AND g.expires_at > $2) AS plan_running,
              EXISTS (SELECT 1 FROM grants g WHERE g.org_id = b.org_id AND g.status = 'active'
                         AND g.expires_at <= $2) AS expiry_due
         FROM org_balances b WHERE b.org_id = $1 FOR UPDATE OF b`,
      [org.id, now.toISOString()],
    );
  let [row] = await select();
  if (!row) {
    await tx.query('INSERT INTO org_balances (org_id) VALUES ($1) ON CONFLICT (org_id) DO NOTHING', [org.id]);
    [row] = await select();
  }
  const planDue =
    !row!.plan_running && org.billing_mode === 'credits' && BigInt(org.plan_allowance_credits) > 0n;
  const issued = planDue ? await ensurePlanGrant(tx, org, now) : false;
  const expired = row!.expiry_due ? await expireDueGrants(tx, org.id, now) : 0n;
  const balance = issued || expired > 0n ? await readBalance(tx, org.id) : toBalance(row!);
  return { balance, counters: await readCounters(tx, org.id, scopes) };
}
