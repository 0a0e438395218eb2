/**
 * Moving an authorization's money: billing usage from its hold (and beyond it only as far as
 * credits, limits and budgets allow), releasing what is left of the hold, and recording the
 * call as a usage event when it ends. Callers hold the org's balance lock and the row lock.
 */
import { allocate, CREDIT_SCALE, Ratio } from '../../domain/money.ts';
import { creditsToMoney, type Usage } from '../../domain/pricing.ts';
import { contentHash, type UsageEventInput } from '../../domain/usageEvent.ts';
import type { Queryable } from '../../store/db.ts';
import { evaluateSpendAlerts } from '../alerts/evaluateSpendAlerts.ts';
import type { Ctx } from '../context.ts';
import { ServiceError } from '../errors.ts';
import type { PricedEvent } from '../events/priceUsageEvent.ts';
import { recordEvents } from '../events/recordEvents.ts';
import { applyCharges, type ChargeOutcome } from '../ledger/applyCharges.ts';
import { addToBalance } from '../ledger/balances.ts';
import { lockForSpend } from '../ledger/lockForSpend.ts';
import { addToCounters, type LimitScope, loadLimitSettings, toUnits } from '../limits/scopes.ts';
import type { OrgRow } from '../orgs/shape.ts';
import { unitsFor } from './authorize.ts';
import { headroom } from './headroom.ts';
import type { AuthorizationRow } from './shape.ts';

/** The scopes an authorization counted its hold in, with the limits in force now. */
async function scopesOf(tx: Queryable, org: OrgRow, auth: AuthorizationRow): Promise<LimitScope[]> {
  const settings = await loadLimitSettings(tx, org.id);
  return auth.scopes.map(({ scope, period_start }) => {
    const periodStart = new Date(period_start);
    if (scope === 'org') {
      const limit = settings.allowedLimit === null ? null : toUnits(org, settings.allowedLimit);
      const alertAt = settings.alertThreshold === null ? null : toUnits(org, settings.alertThreshold);
      return {
        scope,
        periodStart,
        limit,
        hard: true,
        kind: 'org' as const,
        name: 'monthly limit',
        period: 'month' as const,
        alertAt,
      };
    }
    const budget = settings.budgets.find((b) => `budget:${b.id}` === scope);
    return {
      scope,
      periodStart,
      limit: budget ? toUnits(org, budget.amount) : null,
      hard: budget?.enforcement === 'hard',
      kind: 'budget' as const,
      budgetId: budget?.id ?? scope.slice('budget:'.length),
      name: budget?.name ?? 'deleted budget',
      ...(budget ? { period: budget.period } : {}),
    };
  });
}

export interface Billed {
  billed: bigint;
  unbilled: bigint;
  /** Room left for this call after billing: its remaining hold plus what limits still allow. */
  capacity: bigint;
}

/** Bills `wanted` units: from the hold first, then from free room; what does not fit is reported. */
export async function bill(
  tx: Queryable,
  org: OrgRow,
  auth: AuthorizationRow,
  wanted: bigint,
  eventId: string | null,
): Promise<Billed> {
  const held = BigInt(auth.held);
  const scopes = await scopesOf(tx, org, auth);
  const { balance, counters: before } = await lockForSpend(tx, org, scopes, new Date());
  const room = headroom(org, balance, scopes, before).room;
  const free = room > 0n ? room : 0n;
  const fromHold = wanted < held ? wanted : held;
  const beyond = wanted - fromHold < free ? wanted - fromHold : free;
  const billed = fromHold + beyond;
  let charged: ChargeOutcome | null = null;
  if (org.billing_mode === 'credits') {
    await releaseFromBalance(tx, org.id, auth.id, fromHold);
    charged = await applyCharges(tx, org.id, { ...balance, held: balance.held - fromHold }, [
      { amount: billed, eventId, authorizationId: auth.id },
    ]);
  }
  const counters = await addToCounters(
    tx,
    org.id,
    scopes.map((s) => ({ ...s, spent: billed, held: -fromHold })),
  );
  if (billed > 0n) await evaluateSpendAlerts(tx, org, { scopes, counters, charged });
  await tx.query(
    'UPDATE authorizations SET held = held - $3, charged = charged + $4 WHERE org_id = $1 AND id = $2',
    [org.id, auth.id, String(fromHold), String(billed)],
  );
  auth.held = String(held - fromHold);
  auth.charged = String(BigInt(auth.charged) + billed);
  return { billed, unbilled: wanted - billed, capacity: held - fromHold + (free - beyond) };
}

async function releaseFromBalance(
  tx: Queryable,
  orgId: string,
  authId: string,
  amount: bigint,
): Promise<void> {
  if (amount <= 0n) return;
  await tx.query(
    `INSERT INTO ledger_entries (org_id, kind, amount, authorization_id, memo) VALUES ($1, 'hold_release', $2, $3, 'hold used or released')`,
    [orgId, String(-amount), authId],
  );
  await addToBalance(tx, orgId, { held: -amount });
}

/** Releases whatever is left of the hold, everywhere it was counted. */
export async function releaseHold(tx: Queryable, org: OrgRow, auth: AuthorizationRow): Promise<void> {
  const held = BigInt(auth.held);
  if (held === 0n) return;
  if (org.billing_mode === 'credits') await releaseFromBalance(tx, org.id, auth.id, held);
  await addToCounters(
    tx,
    org.id,
    (await scopesOf(tx, org, auth)).map((s) => ({ ...s, spent: 0n, held: -held })),
  );
  await tx.query('UPDATE authorizations SET held = 0 WHERE org_id = $1 AND id = $2', [org.id, auth.id]);
  auth.held = '0';
}

/** The call's usage event, priced as usual but carrying exactly the units that were billed. */
export async function recordCall(
  tx: Queryable,
  ctx: Ctx,
  org: OrgRow,
  auth: AuthorizationRow,
  usage: Usage,
  eventId: string,
  now: Date,
): Promise<PricedEvent> {
  const priced = unitsFor(ctx, org, auth, usage, now);
  const billed = BigInt(auth.charged);
  const input: UsageEventInput = {
    id: eventId,
    member: auth.member_external_id,
    feature: auth.feature,
    provider: auth.provider,
    model: auth.model,
    occurred_at: now.toISOString(),
    ...(auth.workspace ? { workspace: auth.workspace } : {}),
    ...(auth.workspace_group ? { workspace_group: auth.workspace_group } : {}),
    ...(auth.project ? { project: auth.project } : {}),
    usage,
    metadata: { authorization_id: auth.id },
  };
  // The fingerprint is the recorded event's own, not that of the usage priced for it.
  const event: PricedEvent = {
    ...priced,
    input,
    hash: contentHash(input),
    ...withBilled(org, priced, billed),
  };
  const [result] = (await recordEvents(tx, ctx, [event], { charge: false })).values();
  if (result?.status !== 'accepted') {
    throw new ServiceError(
      409,
      'event_id_taken',
      `An event with id "${eventId}" was recorded before`,
      'event_id',
    );
  }
  await tx.query('UPDATE authorizations SET event_id = $3 WHERE org_id = $1 AND id = $2', [
    org.id,
    auth.id,
    eventId,
  ]);
  return event;
}

/** Credits, cost and per-component parts for the billed units (capped billing may differ from the price). */
function withBilled(org: OrgRow, priced: PricedEvent, billed: bigint) {
  const components = priced.components as { credits: string }[];
  const parts = allocate(
    billed,
    components.map((c) => Ratio.parse(c.credits)),
  );
  if (org.billing_mode === 'credits') {
    return {
      credits: billed,
      units: billed,
      cost: creditsToMoney(billed, Ratio.parse(org.credit_value)),
      components: components.map((c, i) => ({
        ...c,
        credits: Ratio.fromUnits(parts[i]!, CREDIT_SCALE).toDecimal(CREDIT_SCALE),
      })),
    };
  }
  return { credits: 0n, units: billed, cost: Ratio.fromUnits(billed, CREDIT_SCALE).toDecimal(CREDIT_SCALE) };
}
