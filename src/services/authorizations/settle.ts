/**
 * Moving an authorization's money: billing usage from its hold (and beyond it only as far as
 * credits, limits and budgets allow), releasing what is left of the hold, and recording the
 * call as a usage event when it ends. Callers hold the org's balance lock and the row lock
 * (lockForSpend with the authorization).
 */
import { allocate, CREDIT_SCALE, Ratio } from '../../domain/money.ts';
import { creditsToMoney, type Usage } from '../../domain/pricing.ts';
import { contentHash, HOLD_ID_METADATA_KEY, type UsageEventInput } from '../../domain/usageEvent.ts';
import type { Queryable } from '../../store/db.ts';
import { spendAlerts } from '../alerts/evaluateSpendAlerts.ts';
import { recordAlerts, unrecordedAlerts } from '../alerts/recordAlerts.ts';
import type { Ctx } from '../context.ts';
import { ServiceError } from '../errors.ts';
import type { PricedUsage, StorableEvent } from '../events/priceUsageEvent.ts';
import { callEventWrites } from '../events/recordEvents.ts';
import type { SpendLock } from '../ledger/lockForSpend.ts';
import { DRAW_FROM_GRANTS, ENTRY_COLUMNS, PLANNED_ENTRIES, planCharges } from '../ledger/planCharges.ts';
import {
  COUNTER_UPSERT,
  type CounterValue,
  counterKey,
  type LimitScope,
  type LimitSettings,
  toUnits,
} from '../limits/scopes.ts';
import type { OrgRow } from '../orgs/shape.ts';
import { unitsFor } from './authorize.ts';
import { headroom } from './headroom.ts';
import type { AuthorizationRow } from './shape.ts';

/** The scopes an authorization counted its hold in, with the limits in force now. */
export function scopesOf(org: OrgRow, settings: LimitSettings, auth: AuthorizationRow): LimitScope[] {
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

/** An authorization locked with its org's balance (lockForSpend), in the transaction that holds the lock. */
export interface LockedCall {
  tx: Queryable;
  ctx: Ctx;
  org: OrgRow;
  auth: AuthorizationRow;
  scopes: LimitScope[];
  lock: SpendLock;
}

export interface Billed {
  billed: bigint;
  unbilled: bigint;
  /** Room left for this call after billing: its remaining hold plus what limits still allow. */
  capacity: bigint;
}

/** How an authorization ends: its final status and answer, and the usage event it is recorded as. */
export interface AuthorizationEnd<R> {
  status: 'captured' | 'voided' | 'expired';
  result: R;
  /** What the authorization keeps as its result, when more than the answer (`result`, kept by default). */
  kept?: object;
  event: StorableEvent | null;
}

export interface BillOptions<R> {
  eventId: string | null;
  /** The call's usage so far, stored on the authorization; null leaves it as it is. */
  usage: Usage | null;
  /** The call ends: release whatever is left of the hold as well. */
  release: boolean;
  /** The call reported usage and goes on: its hold is renewed for its TTL from now. */
  renew?: boolean;
  /**
   * The call ends here: its end, decided once the amounts are known (`charged`: the call's total),
   * and its event, if it has one, are written by the same statement.
   */
  end?: (billed: Billed & { charged: bigint }) => AuthorizationEnd<R>;
  /**
   * The caller sends nothing after this in its transaction: when no alert is to be recorded, the
   * statement carries the COMMIT (QueryOptions.closing), and the org's lock is let go a round trip
   * sooner.
   */
  last?: boolean;
}

/**
 * Bills `wanted` units of an authorization locked with the org's balance (`lockForSpend`, which
 * gives `lock`): from the hold first, then past it as far as hard limits and budgets allow (past
 * the credits into overage); what a limit refuses is reported. The
 * draw-down (planned on the grants the lock read), the hold release, the counters and the
 * authorization (with its end and the call's event, if it ends) are written by one statement. An
 * event id recorded before is refused (409), and the caller's transaction then writes nothing.
 */
export async function bill<R = never>(
  call: LockedCall,
  wanted: bigint,
  options: BillOptions<R>,
): Promise<Billed & { end: AuthorizationEnd<R> | null }> {
  const { tx, ctx, org, auth, scopes, lock } = call;
  const held = BigInt(auth.held);
  // Usage past the hold happened: it is billed as far as hard limits and budgets allow, past the
  // org's credits if need be (into overage, as ingest does). Only what a limit refuses is unbilled.
  // Whether the call may go on also needs credits left: a stream stops when they run out.
  const nonNegative = (room: bigint) => (room > 0n ? room : 0n);
  const limitFree = nonNegative(headroom(org, lock.balance, scopes, lock.counters, { credits: false }).room);
  const free = nonNegative(headroom(org, lock.balance, scopes, lock.counters).room);
  const fromHold = wanted < held ? wanted : held;
  const beyond = wanted - fromHold < limitFree ? wanted - fromHold : limitFree;
  const billed = fromHold + beyond;
  const released = options.release ? held : fromHold;
  const outcome: Billed = {
    billed,
    unbilled: wanted - billed,
    capacity: held - fromHold + nonNegative(free - beyond),
  };
  const charged = BigInt(auth.charged) + billed;
  const end = options.end ? options.end({ ...outcome, charged }) : null;
  const eventId = end?.event ? end.event.input.id : null;
  const credits = org.billing_mode === 'credits';
  // The draw-down is planned in JS on the grants the lock read, and written by the same statement
  // as the release, the authorization and the counters: one round trip under the lock.
  const plan = credits
    ? planCharges({ ...lock.balance, held: lock.balance.held - released }, lock.grants, [
        { amount: billed, eventId: options.eventId, authorizationId: auth.id },
      ])
    : null;
  const drawn = plan?.outcome ?? null;
  // Judged before the statement, on the counters the lock read plus this change (whatever writes
  // them holds the same lock), so that with nothing to record after it the statement can commit.
  const now = new Date();
  const alerts =
    billed > 0n
      ? unrecordedAlerts(
          org.id,
          spendAlerts(
            org,
            { scopes, counters: countersAfter(scopes, lock, billed, released), charged: drawn },
            now,
          ),
        )
      : [];
  // The member is the one the hold was placed for, by id: an external id erased since then must
  // not bring a member back.
  const recording = end?.event ? await callEventWrites(tx, ctx, end.event, auth.member_id, 16) : null;
  await tx
    .query(
      `WITH ${DRAW_FROM_GRANTS('$1', '$11')}, entries AS (
       INSERT INTO ledger_entries ${ENTRY_COLUMNS}
       ${PLANNED_ENTRIES('$1', '$12')}
       UNION ALL
       SELECT $1, 'hold_release', NULL, -$3::bigint, NULL, $2, 'hold used or released' WHERE $5 AND $3::bigint > 0
     ), balance AS (
       UPDATE org_balances SET consumed = consumed + $13::bigint, remaining = remaining - $13::bigint,
              overage = overage + $14::bigint, held = held - $3::bigint, updated_at = now()
        WHERE org_id = $1 AND $5 AND ($3::bigint > 0 OR $13::bigint > 0 OR $14::bigint > 0)
     ), authorization_row AS (
       UPDATE authorizations SET held = held - $3::bigint, charged = charged + $4::bigint,
              usage = COALESCE($6::jsonb, usage), status = COALESCE($8::text, status),
              result = COALESCE($9::jsonb, result),
              event_id = CASE WHEN $8::text IS NULL THEN event_id ELSE $10::text END,
              finished_at = CASE WHEN $8::text IS NULL THEN finished_at ELSE now() END,
              -- The TTL is whole seconds: rounding drops the skew between the clock that set
              -- expires_at (Tally's) and created_at's (the database's).
              expires_at = CASE WHEN $15 THEN now() + make_interval(secs => round(extract(epoch FROM
                             expires_at - COALESCE(renewed_at, created_at)))) ELSE expires_at END,
              renewed_at = CASE WHEN $15 THEN now() ELSE renewed_at END
        WHERE org_id = $1 AND id = $2
     ), ${recording ? `${recording.ctes}, ` : ''}counters AS (
       ${COUNTER_UPSERT(
         '$1',
         `(SELECT scope, period_start, $4::bigint AS spent, -$3::bigint AS held
             FROM jsonb_to_recordset($7::jsonb) AS c(scope text, period_start timestamptz)
            WHERE $3::bigint <> 0 OR $4::bigint <> 0 ORDER BY scope, period_start) AS c`,
       )}
     )
     -- An event id recorded before fails the statement (SQLSTATE TL409, migration 0028).
     SELECT ${recording ? 'tally_require_recorded(count(*), $10) FROM ins' : '1'}`,
      [
        org.id,
        auth.id,
        String(released),
        String(billed),
        credits,
        options.usage === null ? null : JSON.stringify(options.usage),
        JSON.stringify(auth.scopes),
        end?.status ?? null,
        end ? JSON.stringify(end.kept ?? end.result) : null,
        eventId,
        plan?.draws ?? '[]',
        plan?.entries ?? '[]',
        String(plan?.drawn ?? 0n),
        String(plan?.overage ?? 0n),
        options.renew === true,
        ...(recording?.params ?? []),
      ],
      { closing: options.last === true && alerts.length === 0 },
    )
    .catch((error: unknown) => {
      if ((error as { code?: string }).code !== EVENT_ID_TAKEN) throw error;
      throw new ServiceError(
        409,
        'event_id_taken',
        `An event with id "${eventId}" was recorded before`,
        'event_id',
      );
    });
  if (alerts.length > 0) await recordAlerts(tx, org.id, alerts, now);
  auth.held = String(held - released);
  auth.charged = String(charged);
  if (options.usage !== null) auth.usage = options.usage;
  if (end) auth.event_id = eventId;
  return { ...outcome, end };
}

/** The SQLSTATE of `tally_require_recorded` (migration 0028): the call's event id was taken. */
const EVENT_ID_TAKEN = 'TL409';

/** The call's limit counters once this bill is written: what the lock read, plus its change. */
function countersAfter(
  scopes: LimitScope[],
  lock: SpendLock,
  billed: bigint,
  released: bigint,
): CounterValue[] {
  return scopes.map(({ scope, periodStart }) => {
    const before = lock.counters.get(counterKey({ scope, periodStart })) ?? { spent: 0n, held: 0n };
    return { scope, periodStart, spent: before.spent + billed, held: before.held - released };
  });
}

/**
 * The call's usage event, priced as usual but carrying exactly `billed`, what the call was charged
 * in all; `error` marks a call that failed (its metadata.error).
 */
export function callEvent(
  ctx: Ctx,
  org: OrgRow,
  auth: AuthorizationRow,
  usage: Usage,
  eventId: string,
  now: Date,
  billed: bigint,
  error?: string,
): StorableEvent {
  const priced = unitsFor(ctx, org, auth, usage, now);
  const input: UsageEventInput = {
    id: eventId,
    member: auth.member_external_id,
    feature: auth.feature,
    provider: auth.provider,
    model: auth.model,
    // Dated when the call began: in the month (and cycle) its hold counted it, however late it ends.
    occurred_at: new Date(auth.created_at).toISOString(),
    // Attributed as the hold was, so the rollups count it as they count an ingested event.
    ...(auth.surface ? { surface: auth.surface } : {}),
    ...(auth.workspace ? { workspace: auth.workspace } : {}),
    ...(auth.workspace_group ? { workspace_group: auth.workspace_group } : {}),
    ...(auth.project ? { project: auth.project } : {}),
    ...(auth.conversation_id ? { conversation_id: auth.conversation_id } : {}),
    ...(auth.message_id ? { message_id: auth.message_id } : {}),
    ...(auth.parent_id ? { parent_id: auth.parent_id } : {}),
    usage,
    // The hold refuses a client's own authorization_id (routes/authorizations.ts).
    metadata: { ...auth.metadata, ...(error ? { error } : {}), [HOLD_ID_METADATA_KEY]: auth.id },
  };
  // The fingerprint is the recorded event's own, not that of the usage priced for it.
  return {
    ...priced,
    input,
    hash: contentHash(input),
    ...withBilled(org, priced, billed),
  };
}

/**
 * Credits, cost and per-component parts for the billed units (capped billing may differ from the
 * price). The rest of a late capture may count no usage of its own yet bill something: the final
 * count split a part differently from the streamed one (cached input reported as uncached), or
 * the price rose since. That amount has no component to go to, and is recorded without any.
 */
function withBilled(org: OrgRow, priced: PricedUsage, billed: bigint) {
  const cost = callCost(org, billed);
  if (org.billing_mode !== 'credits') return { credits: 0n, units: billed, cost };
  const components = priced.components as { credits: string }[];
  if (components.length === 0) return { credits: billed, units: billed, cost };
  const parts = allocate(
    billed,
    components.map((c) => Ratio.parse(c.credits)),
  );
  return {
    credits: billed,
    units: billed,
    cost,
    components: components.map((c, i) => ({
      ...c,
      credits: Ratio.fromUnits(parts[i]!, CREDIT_SCALE).toDecimal(CREDIT_SCALE),
    })),
  };
}

/** What `units` billed to a call cost in the org's currency: credits at their value, else money units. */
export function callCost(org: OrgRow, units: bigint): string {
  return org.billing_mode === 'credits'
    ? creditsToMoney(units, Ratio.parse(org.credit_value))
    : Ratio.fromUnits(units, CREDIT_SCALE).toDecimal(CREDIT_SCALE);
}
