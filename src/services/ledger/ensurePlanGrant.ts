/**
 * Issues the plan allowance for the billing cycle in force, exactly once per cycle: a unique index
 * on (org, cycle start) makes every other process's attempt a no-op. It expires at cycle end.
 * A plan grant still running covers the present too (the anchor may have moved mid-cycle), so no
 * second allowance is issued then. Nothing is cached in the process: a transaction that issued
 * the grant may still roll back, and the check is one indexed read.
 */
import { anchorDayOf, billingCycle } from '../../domain/periods.ts';
import type { Queryable } from '../../store/db.ts';
import type { OrgRow } from '../orgs/shape.ts';
import { recordGrant } from './recordGrant.ts';

/** Answers whether it issued a grant (the balance changed). */
export async function ensurePlanGrant(tx: Queryable, org: OrgRow, now = new Date()): Promise<boolean> {
  if (org.billing_mode !== 'credits' || BigInt(org.plan_allowance_credits) === 0n) return false;
  const running = await tx.query(
    `SELECT 1 FROM grants WHERE org_id = $1 AND kind = 'plan' AND effective_at <= $2 AND expires_at > $2 LIMIT 1`,
    [org.id, now.toISOString()],
  );
  if (running.length > 0) return false;
  const cycle = billingCycle(org.timezone, anchorDayOf(org.billing_cycle_anchor), now);
  const issued = await recordGrant(tx, org.id, {
    kind: 'plan',
    source: 'plan',
    amount: BigInt(org.plan_allowance_credits),
    effectiveAt: cycle.start,
    expiresAt: cycle.end,
    cycleStart: cycle.start,
    reason: `Plan allowance, cycle from ${cycle.start.toISOString().slice(0, 10)}`,
    createdBy: 'plan',
  });
  return issued !== null;
}
