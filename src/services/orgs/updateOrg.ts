import { CREDIT_SCALE, parseUnits } from '../../domain/money.ts';
import { anchorDayOf, billingCycle, calendarMonth } from '../../domain/periods.ts';
import type { Queryable } from '../../store/db.ts';
import { audit, type Ctx, scopeOrg } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { lockBalance } from '../ledger/balances.ts';
import { loadOrg, ORG_COLUMNS, type OrgRow, type OrgView, orgView } from './shape.ts';

export interface UpdateOrgInput {
  name?: string;
  timezone?: string;
  billing_mode?: 'credits' | 'byom' | 'byok';
  credit_value?: string;
  plan_allowance_credits?: string;
  plan_rollover_max_credits?: string;
  billing_cycle_anchor?: string;
  external_id?: string | null;
  activity_shows_model?: boolean;
  free_tier?: boolean;
}

/**
 * Changes org settings. Currency is fixed at creation: amounts already charged are in it.
 * Billing terms (credit value, allowance, mode, and the time zone and anchor that set its months
 * and cycles) are the operator's to change, not the tenant's.
 */
/** The terms an active hold was placed under, which may not change while one is. */
const HOLD_TERMS = ['billing_mode', 'credit_value', 'timezone', 'billing_cycle_anchor'] as const;

export async function updateOrg(ctx: Ctx, orgId: string, input: UpdateOrgInput): Promise<OrgView> {
  scopeOrg(ctx, orgId, 'org:update');
  const terms = [
    'timezone',
    'billing_mode',
    'credit_value',
    'plan_allowance_credits',
    'plan_rollover_max_credits',
    'billing_cycle_anchor',
    'external_id',
    // The host's choices for its product, not the tenant's.
    'activity_shows_model',
    'free_tier',
  ] as const;
  if (ctx.principal.kind !== 'operator') {
    const field = terms.find((t) => input[t] !== undefined);
    if (field) throw new ServiceError(403, 'forbidden', `Only the operator may change ${field}`, field);
  }
  return ctx.db.transaction(async (tx) => {
    const current = await loadOrg(tx, orgId);
    const changed = (field: (typeof HOLD_TERMS)[number]) =>
      field === 'credit_value'
        ? input.credit_value !== undefined &&
          parseUnits(input.credit_value, CREDIT_SCALE) !== parseUnits(current.credit_value, CREDIT_SCALE)
        : input[field] !== undefined && input[field] !== current[field];
    // A hold settles in the mode and on the counter periods it was placed with.
    const moved = HOLD_TERMS.find(changed);
    if (moved) await requireNoActiveHolds(tx, orgId, moved);
    if (changed('billing_mode')) await requireSameSpendUnit(tx, current, input.billing_mode!);
    const [row] = await tx.query<OrgRow>(
      `UPDATE orgs SET name = $2, timezone = $3, billing_mode = $4, credit_value = $5,
              plan_allowance_credits = $6, billing_cycle_anchor = $7, external_id = $8,
              plan_rollover_max_credits = $9, activity_shows_model = $10, free_tier = $11, updated_at = now()
        WHERE id = $1 RETURNING ${ORG_COLUMNS}`,
      [
        orgId,
        input.name ?? current.name,
        input.timezone ?? current.timezone,
        input.billing_mode ?? current.billing_mode,
        input.credit_value ?? current.credit_value,
        input.plan_allowance_credits !== undefined
          ? parseUnits(input.plan_allowance_credits, CREDIT_SCALE).toString()
          : current.plan_allowance_credits,
        input.billing_cycle_anchor ?? current.billing_cycle_anchor,
        input.external_id !== undefined ? input.external_id : current.external_id,
        input.plan_rollover_max_credits !== undefined
          ? parseUnits(input.plan_rollover_max_credits, CREDIT_SCALE).toString()
          : current.plan_rollover_max_credits,
        input.activity_shows_model ?? current.activity_shows_model,
        input.free_tier ?? current.free_tier,
      ],
    );
    if (changed('timezone') || changed('billing_cycle_anchor')) await carryCounters(tx, current, row!);
    if (changed('credit_value') && current.billing_mode === 'credits' && row!.billing_mode === 'credits') {
      await rescaleCounters(tx, orgId, current.credit_value, row!.credit_value);
    }
    await audit(tx, ctx, orgId, 'org.updated', orgId, { ...input });
    return orgView(row!);
  });
}

/**
 * A hold is settled in the mode it was placed in: a credits hold is in the ledger and the balance,
 * a BYOM or BYOK one is not, so a hold that outlived a mode change could never be released. The
 * balance lock is the one every hold takes, so no hold is placed while the mode changes (a hold
 * waiting for the lock then finds the org's terms changed and is decided again on the new ones).
 */
async function requireNoActiveHolds(tx: Queryable, orgId: string, field: string): Promise<void> {
  await lockBalance(tx, orgId);
  const [row] = await tx.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM authorizations WHERE org_id = $1 AND status = 'active'",
    [orgId],
  );
  if (row!.n > 0) {
    throw new ServiceError(
      409,
      'holds_active',
      `${field} cannot change while the org has ${row!.n} active hold(s): capture or void them, or let them expire`,
      field,
    );
  }
}

/**
 * Credits and BYOM orgs count spend in different units (credits in the org currency, USD at
 * provider cost), in their reports' costs and in their limit counters alike: an org whose usage
 * spent in one of them may not move to the other, or its reports would add one unit to the other
 * (a stop in BYOK on the way changes nothing). BYOK spends nothing, so any org may move to it.
 * Read from the hourly totals: a BYOM call is one with a cost and no credits.
 */
async function requireSameSpendUnit(tx: Queryable, current: OrgRow, next: OrgRow['billing_mode']) {
  if (next === 'byok') return;
  const other = next === 'credits' ? 'credits = 0 AND cost > 0' : 'credits > 0';
  const [spent] = await tx.query(`SELECT 1 FROM usage_hourly_total WHERE org_id = $1 AND ${other} LIMIT 1`, [
    current.id,
  ]);
  if (spent) {
    throw new ServiceError(
      409,
      'usage_recorded',
      `billing_mode cannot change to ${next}: the org has usage billed in ${next === 'credits' ? 'USD at provider cost (byom)' : `credits in ${current.currency}`}, and its reports and limits count every call in one unit`,
      'billing_mode',
    );
  }
}

/**
 * Limit and budget counters count credits, which they turn into money at the org's credit value;
 * the spend they hold was drawn at the old one. Rescaled to the new value, each keeps the money it
 * counted (rounded up to the micro-credit: a limit is never passed by a rounding), so a new value
 * neither blocks an org under its limit nor frees room it has spent. No hold is active (HOLD_TERMS).
 */
async function rescaleCounters(tx: Queryable, orgId: string, before: string, after: string): Promise<void> {
  await tx.query(
    // Capped at 2^62 (far past any limit, with room left to add to): a far smaller value could
    // multiply a spend past BIGINT.
    `UPDATE spend_counters SET spent = least(div(spent::numeric * $2 + $3 - 1, $3), 4611686018427387904)::bigint
      WHERE org_id = $1 AND spent > 0`,
    [orgId, parseUnits(before, CREDIT_SCALE).toString(), parseUnits(after, CREDIT_SCALE).toString()],
  );
}

/**
 * The spend counted in the current month and cycle moves to the periods the new zone or anchor
 * sets: counters are keyed by their period's start, so without this the month's spend would start
 * again from nothing and a hard limit could be passed.
 */
async function carryCounters(tx: Queryable, before: OrgRow, after: OrgRow): Promise<void> {
  const now = new Date();
  const periods = (org: OrgRow) => [
    calendarMonth(org.timezone, now).start,
    billingCycle(org.timezone, anchorDayOf(org.billing_cycle_anchor), now).start,
  ];
  const [monthBefore, cycleBefore] = periods(before);
  const [monthAfter, cycleAfter] = periods(after);
  for (const [from, to] of [
    [monthBefore!, monthAfter!],
    [cycleBefore!, cycleAfter!],
  ] as const) {
    if (from.getTime() === to.getTime()) continue;
    await tx.query(
      `WITH moved AS (
         DELETE FROM spend_counters WHERE org_id = $1 AND period_start = $2 RETURNING scope, spent, held
       )
       INSERT INTO spend_counters AS c (org_id, scope, period_start, spent, held)
       SELECT $1, scope, $3, spent, held FROM moved ORDER BY scope
       ON CONFLICT (org_id, scope, period_start) DO UPDATE SET spent = c.spent + EXCLUDED.spent, held = c.held + EXCLUDED.held`,
      [after.id, from.toISOString(), to.toISOString()],
    );
  }
}
