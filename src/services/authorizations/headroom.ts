/**
 * How many more units an org may commit right now: the smallest room left among its credits
 * (credits orgs) and every hard limit and budget the call falls under. Judged on the balance and
 * counters read with the org's balance row locked (lockForSpend), so no other hold or charge can
 * take the same room meanwhile.
 */
import { available, type BalanceRow } from '../ledger/balances.ts';
import { type CounterTotals, counterKey, type LimitScope } from '../limits/scopes.ts';
import type { OrgRow } from '../orgs/shape.ts';

export type DenialReason = 'insufficient_credits' | 'quota_exceeded' | 'budget_exceeded';

export interface Headroom {
  room: bigint;
  /** What leaves the least room, to name in a denial. */
  tightest: { reason: DenialReason; budget?: { id: string; name: string } } | null;
}

/** The room when nothing limits a call (no credits to run out of, no hard limit). */
export const UNLIMITED = BigInt(Number.MAX_SAFE_INTEGER) * 1_000_000n;

/**
 * `credits: false` leaves the org's credits out: usage that already happened is billed past them
 * (into overage), and only hard limits and budgets stop it.
 */
export function headroom(
  org: OrgRow,
  balance: BalanceRow,
  scopes: LimitScope[],
  counters: CounterTotals,
  { credits = true }: { credits?: boolean } = {},
): Headroom {
  let best: Headroom = { room: -1n, tightest: null };
  const consider = (room: bigint, tightest: Headroom['tightest']) => {
    if (best.tightest === null || room < best.room) best = { room, tightest };
  };
  if (credits && org.billing_mode === 'credits') {
    consider(available(balance), { reason: 'insufficient_credits' });
  }
  for (const s of scopes) {
    if (!s.hard || s.limit === null) continue;
    const c = counters.get(counterKey(s)) ?? { spent: 0n, held: 0n };
    const room = s.limit - c.spent - c.held;
    consider(
      room,
      s.kind === 'org'
        ? { reason: 'quota_exceeded' }
        : { reason: 'budget_exceeded', budget: { id: s.budgetId!, name: s.name } },
    );
  }
  return best.tightest === null ? { room: UNLIMITED, tightest: null } : best;
}
