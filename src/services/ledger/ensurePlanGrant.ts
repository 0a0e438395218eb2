/**
 * Issues the plan allowance for the billing cycle in force, exactly once per cycle: a unique index
 * on (org, cycle start) makes every other process's attempt a no-op. It expires at cycle end.
 */
import { anchorDayOf, billingCycle } from '../../domain/periods.ts';
import type { Queryable } from '../../store/db.ts';
import type { OrgRow } from '../orgs/shape.ts';
import { recordGrant } from './recordGrant.ts';

// Per process: org -> cycle start already ensured, so the hot path skips the insert.
const ensured = new Map<string, number>();

export async function ensurePlanGrant(tx: Queryable, org: OrgRow, now = new Date()): Promise<void> {
  if (org.billing_mode !== 'credits' || BigInt(org.plan_allowance_credits) === 0n) return;
  const cycle = billingCycle(org.timezone, anchorDayOf(org.billing_cycle_anchor), now);
  if (ensured.get(org.id) === cycle.start.getTime()) return;
  await recordGrant(tx, org.id, {
    kind: 'plan',
    source: 'plan',
    amount: BigInt(org.plan_allowance_credits),
    effectiveAt: cycle.start,
    expiresAt: cycle.end,
    cycleStart: cycle.start,
    reason: `Plan allowance, cycle from ${cycle.start.toISOString().slice(0, 10)}`,
    createdBy: 'plan',
  });
  ensured.set(org.id, cycle.start.getTime());
}
