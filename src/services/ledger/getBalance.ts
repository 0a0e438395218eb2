/**
 * The balance page's figures: what is available, held and in overage, per grant kind (monthly vs
 * bonus), and the billing cycle with the average spend per day and the projected run-out: of
 * credits for a credits org, or of its allowed limit (GET .../limits) when that comes first and
 * before the month ends; of the monthly spend cap for a BYOM org.
 */
import { DRAW_ORDER } from '../../domain/drawdown.ts';
import { CREDIT_SCALE, formatCredits, Ratio } from '../../domain/money.ts';
import { anchorDayOf, billingCycle, calendarMonth, localDaysBetween } from '../../domain/periods.ts';
import { creditsToMoney } from '../../domain/pricing.ts';
import { type Ctx, scopeOrg } from '../context.ts';
import { limitsOf, unitValue } from '../limits/getLimits.ts';
import { loadOrg, type OrgRow } from '../orgs/shape.ts';
import { available, lockBalance, readBalance } from './balances.ts';
import { ensurePlanGrant } from './ensurePlanGrant.ts';
import { expireDueGrants } from './expireGrants.ts';

export async function getBalance(ctx: Ctx, orgId: string, now = new Date()) {
  scopeOrg(ctx, orgId, 'usage:read');
  const org = await loadOrg(ctx.db, orgId);
  await ctx.db.transaction(async (tx) => {
    await ensurePlanGrant(tx, org, now);
    // A grant past its expiry leaves the balance now, not when the job or the next charge runs.
    const due = await tx.query(
      `SELECT 1 FROM grants WHERE org_id = $1 AND status = 'active' AND expires_at <= $2 LIMIT 1`,
      [orgId, now.toISOString()],
    );
    if (due.length > 0) {
      await lockBalance(tx, orgId);
      await expireDueGrants(tx, orgId, now);
    }
  });
  const balance = await readBalance(ctx.db, orgId);
  const cycle = billingCycle(org.timezone, anchorDayOf(org.billing_cycle_anchor), now);
  const kinds = await ctx.db.query<{ kind: string; granted: string; used: string; remaining: string }>(
    `SELECT kind, sum(amount)::text AS granted, sum(consumed)::text AS used, sum(remaining)::text AS remaining
       FROM grants WHERE org_id = $1 AND (status = 'active' OR (kind = 'plan' AND cycle_start = $2))
      GROUP BY kind`,
    [orgId, cycle.start.toISOString()],
  );
  const byom = org.billing_mode === 'byom';
  // A BYOM org spends provider cost in USD (its events' cost), not credits.
  const [spent] = await ctx.db.query<{ spent: string | null }>(
    `SELECT sum(${byom ? 'cost' : 'credits'})::text AS spent FROM usage_hourly_total
      WHERE org_id = $1 AND bucket >= $2 AND bucket < $3`,
    [
      orgId,
      new Date(cycle.start.getTime() - (cycle.start.getTime() % 3_600_000)).toISOString(),
      cycle.end.toISOString(),
    ],
  );
  const cycleSpend = byom
    ? Ratio.parse(spent?.spent ?? '0').roundHalfEven(CREDIT_SCALE)
    : BigInt(spent?.spent ?? '0');
  // Local calendar days, today counted as elapsed: the two add up to the cycle's days.
  const daysElapsed = Math.max(1, localDaysBetween(org.timezone, cycle.start, now) + 1);
  const daysRemaining = Math.max(0, localDaysBetween(org.timezone, now, cycle.end) - 1);
  const perDay = Ratio.of(cycleSpend, BigInt(daysElapsed));
  const free = available(balance);
  const daysOf = (left: bigint | null) =>
    perDay.isZero() || left === null
      ? null
      : Number(
          Ratio.of(left > 0n ? left : 0n)
            .div(perDay)
            .roundHalfEven(0),
        );
  // A BYOM org reaches its monthly spend cap (no cap: never). A credits org runs out of credits,
  // or first reaches its allowed limit, which blocks it as surely, unless the month ends before.
  const limitRoom = org.billing_mode === 'byok' ? null : await limitLeft(ctx, org, now);
  let runOut = daysOf(byom ? limitRoom : org.billing_mode === 'credits' ? free : null);
  let runOutBy: 'credits' | 'allowed_limit' | 'spend_cap' | null =
    runOut === null ? null : byom ? 'spend_cap' : 'credits';
  if (org.billing_mode === 'credits') {
    const byLimit = daysOf(limitRoom);
    const monthDaysLeft = localDaysBetween(org.timezone, now, calendarMonth(org.timezone, now).end) - 1;
    if (byLimit !== null && byLimit <= monthDaysLeft && (runOut === null || byLimit < runOut)) {
      runOut = byLimit;
      runOutBy = 'allowed_limit';
    }
  }
  const view = (micro: bigint) => formatCredits(micro);
  const byKind = Object.fromEntries(
    DRAW_ORDER.map((kind) => {
      const row = kinds.find((k) => k.kind === kind);
      return [
        kind,
        {
          granted_credits: view(BigInt(row?.granted ?? 0)),
          used_credits: view(BigInt(row?.used ?? 0)),
          remaining_credits: view(BigInt(row?.remaining ?? 0)),
        },
      ];
    }),
  );
  const sumKinds = (names: string[], field: 'granted' | 'used' | 'remaining') =>
    view(kinds.filter((k) => names.includes(k.kind)).reduce((acc, k) => acc + BigInt(k[field]), 0n));
  const bonusKinds = ['bonus', 'topup', 'promo', 'adjustment'];
  const creditValue = byom ? Ratio.ONE : Ratio.parse(org.credit_value);
  return {
    object: 'balance' as const,
    org_id: orgId,
    billing_mode: org.billing_mode,
    tracking: org.billing_mode === 'byok' ? ('unavailable' as const) : ('available' as const),
    notice:
      org.billing_mode === 'byok'
        ? "Calls go straight to your own provider account, so Tally cannot track their cost; see your provider's console."
        : null,
    unit: byom ? ('usd' as const) : ('credits' as const),
    currency: byom ? 'USD' : org.currency,
    available_credits: view(free > 0n ? free : 0n),
    available_amount: creditsToMoney(free > 0n ? free : 0n, creditValue),
    held_credits: view(balance.held),
    overage_credits: view(balance.overage),
    overage_amount: creditsToMoney(balance.overage, creditValue),
    granted_credits: view(balance.granted),
    consumed_credits: view(balance.consumed),
    expired_credits: view(balance.expired),
    remaining_credits: view(balance.remaining),
    by_kind: byKind,
    monthly: {
      granted_credits: sumKinds(['plan'], 'granted'),
      used_credits: sumKinds(['plan'], 'used'),
      remaining_credits: sumKinds(['plan'], 'remaining'),
    },
    bonus: {
      granted_credits: sumKinds(bonusKinds, 'granted'),
      used_credits: sumKinds(bonusKinds, 'used'),
      remaining_credits: sumKinds(bonusKinds, 'remaining'),
    },
    cycle: {
      start: cycle.start.toISOString(),
      end: cycle.end.toISOString(),
      days_elapsed: daysElapsed,
      days_remaining: daysRemaining,
      spent_credits: view(cycleSpend),
      average_per_day_credits: formatCredits(perDay.roundHalfEven(0)),
      run_out_in_days: runOut,
      run_out_by: runOutBy,
      // Running out on the cycle's last day is before its end.
      runs_out_before_cycle_end: runOut !== null && runOut <= daysRemaining,
    },
  };
}
export type BalanceView = Awaited<ReturnType<typeof getBalance>>;

/**
 * What is left of the org's allowed limit this month in its units (micro-credits, or micro-USD for
 * BYOM, where it is the spend cap); null when it has none.
 */
async function limitLeft(ctx: Ctx, org: OrgRow, now: Date): Promise<bigint | null> {
  const limits = await limitsOf(ctx.db, org, now);
  if (limits.allowed_limit === null) return null;
  return Ratio.parse(limits.allowed_limit)
    .sub(Ratio.parse(limits.spent))
    .div(unitValue(org))
    .roundHalfEven(CREDIT_SCALE);
}
