/**
 * Issues the plan allowance for the billing cycle in force, exactly once per cycle: a unique index
 * on (org, cycle start) makes every other process's attempt a no-op. It expires at cycle end.
 * A plan grant still running covers the present too (the anchor may have moved mid-cycle), so no
 * second allowance is issued then; once it ends, the cycle it partly covered gets the rest only.
 * Nothing is cached in the process: a transaction that issued the grant may still roll back, and
 * the check is one indexed read.
 */
import { anchorDayOf, billingCycle } from '../../domain/periods.ts';
import type { Queryable } from '../../store/db.ts';
import type { OrgRow } from '../orgs/shape.ts';
import { recordGrant } from './recordGrant.ts';

/** Answers whether it issued a grant (the balance changed). */
export async function ensurePlanGrant(tx: Queryable, org: OrgRow, now = new Date()): Promise<boolean> {
  if (org.billing_mode !== 'credits' || BigInt(org.plan_allowance_credits) === 0n) return false;
  const [plans] = await tx.query<{ running: boolean | null; last_end: Date | null }>(
    `SELECT bool_or(effective_at <= $2 AND expires_at > $2) AS running, max(expires_at) AS last_end
       FROM grants WHERE org_id = $1 AND kind = 'plan'`,
    [org.id, now.toISOString()],
  );
  if (plans?.running) return false;
  const cycle = billingCycle(org.timezone, anchorDayOf(org.billing_cycle_anchor), now);
  // A cycle an earlier plan grant partly covered (the time zone or the anchor moved since) gets the
  // allowance for the rest of it only, so a move never yields a second allowance for the same days.
  const lastEnd = plans?.last_end ? new Date(plans.last_end) : null;
  const partly = lastEnd !== null && lastEnd > cycle.start;
  const from = partly ? lastEnd : cycle.start;
  const full = BigInt(org.plan_allowance_credits);
  const amount = partly
    ? (full * BigInt(cycle.end.getTime() - from.getTime())) /
      BigInt(cycle.end.getTime() - cycle.start.getTime())
    : full;
  if (amount <= 0n) return false;
  const issued = await recordGrant(tx, org.id, {
    kind: 'plan',
    source: 'plan',
    amount,
    effectiveAt: from,
    expiresAt: cycle.end,
    cycleStart: cycle.start,
    reason: `Plan allowance, cycle from ${cycle.start.toISOString().slice(0, 10)}${partly ? ` (its rest, from ${from.toISOString()})` : ''}`,
    createdBy: 'plan',
  });
  return issued !== null;
}
