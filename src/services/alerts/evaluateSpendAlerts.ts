/**
 * Judges, in the transaction that changed spend, which alerts the change fired: 75/90/95/100 % of
 * the org's monthly allowed limit and of each budget, the alert threshold itself, quota.exceeded
 * when a hard limit is reached, 75/90/95/100 % of the cycle's plan allowance, and credits.low when
 * available credits fall under 10 % of the plan allowance (of the active grants' credits for an org
 * without one). A change that jumps past several percentages fires each of them. Each alert is
 * stored once per scope and period.
 */
import { formatCredits } from '../../domain/money.ts';
import { anchorDayOf, billingCycle, calendarMonth } from '../../domain/periods.ts';
import { creditsToMoney } from '../../domain/pricing.ts';
import type { Queryable } from '../../store/db.ts';
import { available } from '../ledger/balances.ts';
import type { ChargeOutcome } from '../ledger/planCharges.ts';
import { unitValue } from '../limits/getLimits.ts';
import { type CounterValue, counterKey, type LimitScope } from '../limits/scopes.ts';
import type { OrgRow } from '../orgs/shape.ts';
import { recordAlerts } from './recordAlerts.ts';
import type { AlertCandidate } from './shape.ts';

export const ALERT_PERCENTAGES = [75, 90, 95, 100] as const;
/** credits.low fires when available credits fall under this share of the plan allowance (or active grants). */
export const CREDITS_LOW_PERCENT = 10;

/**
 * Every alert percentage `used` has reached of `total`. A change that jumps past several fires
 * each of them (each once per scope and period: recordAlerts keeps the first), so a subscriber to
 * the 75 % alert still gets it when spend goes from 70 % to 96 % at once.
 */
export function reachedPercents(used: bigint, total: bigint): number[] {
  if (used <= 0n) return [];
  return ALERT_PERCENTAGES.filter((p) => used * 100n >= BigInt(p) * total);
}

export interface SpendChange {
  /** The scopes whose spend went up, with their limits. */
  scopes: LimitScope[];
  /** The counters' values after the change. */
  counters: CounterValue[];
  /** What the draw-down left (credits orgs), or null when nothing was drawn. */
  charged: ChargeOutcome | null;
}

export async function evaluateSpendAlerts(
  tx: Queryable,
  org: OrgRow,
  change: SpendChange,
  now = new Date(),
): Promise<string[]> {
  const candidates = spendAlerts(org, change, now);
  return candidates.length === 0 ? [] : recordAlerts(tx, org.id, candidates, now);
}

/** The alerts a spend change reaches, before recordAlerts keeps only those not fired yet. */
export function spendAlerts(org: OrgRow, change: SpendChange, now: Date): AlertCandidate[] {
  return [
    ...limitAlerts(org, change.scopes, change.counters),
    ...(change.charged ? creditAlerts(org, change.charged, now) : []),
  ];
}

export const alertScopeOf = (s: LimitScope) => (s.kind === 'org' ? 'monthly_limit' : `budget:${s.budgetId}`);

export function periodEndOf(org: OrgRow, s: LimitScope): Date {
  return s.period === 'cycle'
    ? billingCycle(org.timezone, anchorDayOf(org.billing_cycle_anchor), s.periodStart).end
    : calendarMonth(org.timezone, s.periodStart).end;
}

/** What an alert on a limited scope says: the scope, its period and spend against the amount. */
export function limitDetails(org: OrgRow, s: LimitScope, spent: bigint, amount: bigint) {
  const value = unitValue(org);
  const inCredits = org.billing_mode === 'credits';
  return {
    scope_kind: s.kind === 'org' ? 'monthly_limit' : 'budget',
    budget_id: s.budgetId ?? null,
    name: s.name,
    hard: s.hard,
    period_start: s.periodStart.toISOString(),
    period_end: periodEndOf(org, s).toISOString(),
    currency: org.billing_mode === 'byom' ? 'USD' : org.currency,
    spent_amount: creditsToMoney(spent, value),
    limit_amount: creditsToMoney(amount, value),
    spent_credits: inCredits ? formatCredits(spent) : null,
    limit_credits: inCredits ? formatCredits(amount) : null,
  };
}

function limitAlerts(org: OrgRow, scopes: LimitScope[], counters: CounterValue[]): AlertCandidate[] {
  // A batch repeats the same few scopes once per event: judge each scope and period once.
  const unique = new Map(scopes.map((s) => [`${s.scope}\u0000${s.periodStart.getTime()}`, s]));
  const values = new Map(counters.map((c) => [counterKey(c), c]));
  const out: AlertCandidate[] = [];
  for (const s of unique.values()) {
    const counter = values.get(counterKey(s));
    if (!counter) continue;
    const spent = counter.spent;
    if (s.limit !== null) {
      for (const percent of reachedPercents(spent, s.limit)) {
        out.push({
          type: 'alert.threshold_crossed',
          scope: alertScopeOf(s),
          periodStart: s.periodStart,
          thresholdPercent: percent,
          details: limitDetails(org, s, spent, s.limit),
        });
      }
      if (s.hard && spent > 0n && spent >= s.limit) {
        out.push({
          type: 'quota.exceeded',
          scope: alertScopeOf(s),
          periodStart: s.periodStart,
          thresholdPercent: 100,
          details: {
            ...limitDetails(org, s, spent, s.limit),
            reason: s.kind === 'org' ? 'quota_exceeded' : 'budget_exceeded',
          },
        });
      }
    }
    if (
      s.kind === 'org' &&
      s.alertAt !== undefined &&
      s.alertAt !== null &&
      spent > 0n &&
      spent >= s.alertAt
    ) {
      out.push({
        type: 'alert.threshold_crossed',
        scope: 'alert_threshold',
        periodStart: s.periodStart,
        thresholdPercent: 100,
        details: {
          ...limitDetails(org, s, spent, s.alertAt),
          scope_kind: 'alert_threshold',
          name: 'alert threshold',
        },
      });
    }
  }
  return out;
}

function creditAlerts(org: OrgRow, charged: ChargeOutcome, now: Date): AlertCandidate[] {
  if (org.billing_mode !== 'credits') return [];
  const allowance = BigInt(org.plan_allowance_credits);
  const cycle = billingCycle(org.timezone, anchorDayOf(org.billing_cycle_anchor), now);
  const out: AlertCandidate[] = [];
  const plan = charged.grants.find((g) => g.kind === 'plan');
  if (plan && allowance > 0n) {
    for (const percent of reachedPercents(plan.consumed, plan.amount)) {
      out.push({
        type: 'alert.threshold_crossed',
        scope: 'plan_allowance',
        periodStart: cycle.start,
        thresholdPercent: percent,
        details: {
          scope_kind: 'plan_allowance',
          name: 'plan allowance',
          period_start: cycle.start.toISOString(),
          period_end: cycle.end.toISOString(),
          allowance_credits: formatCredits(plan.amount),
          used_credits: formatCredits(plan.consumed),
          remaining_credits: formatCredits(plan.remaining),
        },
      });
    }
  }
  const reference = lowCreditsReference(allowance, charged);
  const free = available(charged.balance);
  if (reference && (free <= 0n || free * 100n < BigInt(CREDITS_LOW_PERCENT) * reference.credits)) {
    out.push({
      type: 'credits.low',
      scope: 'credits',
      periodStart: cycle.start,
      thresholdPercent: CREDITS_LOW_PERCENT,
      details: {
        period_start: cycle.start.toISOString(),
        period_end: cycle.end.toISOString(),
        available_credits: formatCredits(free > 0n ? free : 0n),
        overage_credits: formatCredits(charged.balance.overage),
        basis: reference.basis,
        plan_allowance_credits: formatCredits(allowance),
        reference_credits: formatCredits(reference.credits),
        threshold_credits: formatCredits((reference.credits * BigInt(CREDITS_LOW_PERCENT)) / 100n),
      },
    });
  }
  return out;
}

/**
 * What "low" is measured against: the plan allowance, or for an org without one (prepaid top-ups
 * only) the credits of its active grants that have some left. When none has any left, every
 * credit is gone, which is low whatever the reference. No active grant at all: nothing to run low on.
 */
function lowCreditsReference(
  allowance: bigint,
  charged: ChargeOutcome,
): { basis: 'plan_allowance' | 'active_grants'; credits: bigint } | null {
  if (allowance > 0n) return { basis: 'plan_allowance', credits: allowance };
  const active = charged.grants.filter((g) => g.status === 'active');
  if (active.length === 0) return null;
  const funded = active.reduce((sum, g) => sum + (g.remaining > 0n ? g.amount : 0n), 0n);
  return { basis: 'active_grants', credits: funded };
}
