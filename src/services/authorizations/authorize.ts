/**
 * Places a hold before a model call, as a card authorization does: the estimate is reserved
 * against credits and every hard limit and budget the call falls under, under the org's balance
 * lock, so concurrent holds (from any number of Tally processes) can never promise the same room.
 * A denial is an answer (`approved: false` with the reason), not an error.
 */

import { newId } from '../../domain/ids.ts';
import { CREDIT_SCALE, parseUnits } from '../../domain/money.ts';
import type { Usage } from '../../domain/pricing.ts';
import { rollupKeyProblem } from '../../domain/usageEvent.ts';
import type { Queryable } from '../../store/db.ts';
import { withRetry } from '../../store/retry.ts';
import { recordDeniedHold } from '../alerts/recordDeniedHold.ts';
import { type Ctx, scopeOrg } from '../context.ts';
import { invalid, ServiceError } from '../errors.ts';
import { priceUsage } from '../events/priceUsageEvent.ts';
import { lockForSpend } from '../ledger/lockForSpend.ts';
import {
  COUNTER_UPSERT,
  type Dimensions,
  type LimitScope,
  type LimitSettings,
  scopesFor,
} from '../limits/scopes.ts';
import { requireCurrent, type SpendTerms, StaleSpendTerms, withSpendTerms } from '../limits/spendTerms.ts';
import { ensureMembers, memberKey } from '../members/ensureMembers.ts';
import type { OrgRow } from '../orgs/shape.ts';
import { headroom, UNLIMITED } from './headroom.ts';
import { HOLDS_IN_FLIGHT_PER_ORG, placeHold as placeHoldInBatch } from './holdBatches.ts';
import {
  type AuthorizationRow,
  type CallAttribution,
  credits,
  keepAuthorization,
  storedAttribution,
} from './shape.ts';

export interface AuthorizeInput extends CallAttribution {
  org_id?: string;
  member: string;
  feature: string;
  provider: string;
  model: string;
  estimate: { input_tokens: number; max_output_tokens: number } | { credits: string };
  ttl_seconds?: number;
}

export const DEFAULT_HOLD_TTL_SECONDS = 600;

/** Prices usage for an authorization's model at `now`; an unpriced model is the caller's error. */
export function unitsFor(
  ctx: Ctx,
  org: OrgRow,
  call: { provider: string; model: string },
  usage: Usage,
  now: Date,
) {
  const priced = priceUsage(
    ctx,
    {
      id: 'authorization',
      member: '-',
      feature: '-',
      provider: call.provider,
      model: call.model,
      occurred_at: now.toISOString(),
      usage,
    },
    org,
    now,
    {},
  );
  if ('status' in priced) throw new ServiceError(422, priced.error.code, priced.error.message, 'model');
  return priced;
}

/**
 * The price in units of a call's usage, with the org's kept terms, as its increments price it: for
 * deciding when to ask Tally, never for billing (which prices again under the lock).
 */
export function callPricer(
  ctx: Ctx,
  orgId: string,
  call: { provider: string; model: string },
): Promise<(usage: Usage) => bigint> {
  return withSpendTerms(
    ctx.db,
    orgId,
    async ({ org }) =>
      (usage: Usage) =>
        unitsFor(ctx, org, call, { requests: 0, ...usage }, new Date()).units,
  );
}

/** The largest value of a Postgres bigint (the spend counters' type). */
const MAX_BIGINT = 2n ** 63n - 1n;

interface Turns {
  running: number;
  waiting: (() => void)[];
}
const turns = new Map<string, Turns>();

/**
 * Runs a hold's full path (a transaction on the org's balance lock) when the org has fewer than
 * HOLDS_IN_FLIGHT_PER_ORG of them in Postgres, else when one ends (holdBatches.ts says why).
 */
async function inTurn<T>(orgId: string, work: () => Promise<T>): Promise<T> {
  let org = turns.get(orgId);
  if (!org) {
    org = { running: 0, waiting: [] };
    turns.set(orgId, org);
  }
  if (org.running < HOLDS_IN_FLIGHT_PER_ORG) org.running++;
  // A finishing hold hands its turn over without giving it back.
  else await new Promise<void>((resolve) => org.waiting.push(resolve));
  try {
    return await work();
  } finally {
    const next = org.waiting.shift();
    if (next) next();
    else if (--org.running === 0) turns.delete(orgId);
  }
}

export async function authorize(ctx: Ctx, input: AuthorizeInput) {
  const orgId = ctx.principal.kind === 'operator' ? input.org_id : ctx.principal.orgId;
  if (!orgId) throw invalid('org_id', 'org_id is required with an operator key');
  scopeOrg(ctx, orgId, 'events:write');
  // Checked here, not in the route's schema: the gateway's holds come this way too.
  const tooLong = rollupKeyProblem(input);
  if (tooLong) throw invalid(tooLong.field, tooLong.message);
  await ctx.prices.refresh(ctx.db);
  // The org's terms and limits come from this process's copy, checked under the lock.
  return withSpendTerms(ctx.db, orgId, (terms) => authorizeOn(ctx, terms, input));
}

async function authorizeOn(ctx: Ctx, { org, settings, version }: SpendTerms, input: AuthorizeInput) {
  const orgId = org.id;
  const now = new Date();
  // Priced even for a credits estimate: a call whose model has no price could never be billed,
  // so it is refused here (422 model_unpriced), before it is made.
  const tokens = unitsFor(
    ctx,
    org,
    input,
    'credits' in input.estimate
      ? { requests: 0 }
      : { input_tokens: input.estimate.input_tokens, output_tokens: input.estimate.max_output_tokens },
    now,
  ).units;
  const priced = 'credits' in input.estimate ? parseUnits(input.estimate.credits, CREDIT_SCALE) : tokens;
  const expiresAt = new Date(now.getTime() + (input.ttl_seconds ?? DEFAULT_HOLD_TTL_SECONDS) * 1000);
  const id = newId('auth');
  const apiKeyId = ctx.principal.kind === 'org_key' ? ctx.principal.id : '';
  const untracked = org.billing_mode === 'byok';
  // A tracked hold reserves at least one unit: an estimate of nothing would be approved where a
  // hard limit is already reached, and the call's usage would then go unbilled.
  const estimate = untracked || priced > 0n ? priced : 1n;

  const placed = await placeHoldAtOnce(ctx, org, settings, input, {
    id,
    apiKeyId,
    estimate,
    expiresAt,
    now,
    version,
  });
  if (placed) return placed;
  return inTurn(orgId, () =>
    withRetry(() =>
      ctx.db.transaction(async (tx) => {
        // In the transaction, so a hold refused with an error creates no member; before the lock.
        const members = await ensureMembers(tx, [{ orgId, externalId: input.member }]);
        const dims = {
          member_id: members.get(memberKey(orgId, input.member))!,
          workspace: input.workspace ?? '',
          workspace_group: input.workspace_group ?? '',
          project: input.project ?? '',
          api_key_id: apiKeyId,
        };
        const scopes = scopesFor(org, settings, dims, now);
        const { balance, counters, spendVersion } = await lockForSpend(tx, org, scopes, now);
        requireCurrent(version, spendVersion);
        const room = untracked ? null : headroom(org, balance, scopes, counters);
        // Never more than the estimate, never less than nothing (room is negative in overage).
        const free = room === null || room.room < 0n ? 0n : room.room;
        const hold = untracked ? 0n : estimate < free ? estimate : free;
        if (room && hold <= 0n && estimate > 0n) {
          const tightest = room.tightest!;
          // A denial by a limit or budget is committed with its quota.exceeded alert (once per period).
          await recordDeniedHold(tx, org, scopes, tightest, {
            member: input.member,
            feature: input.feature,
            estimate,
          });
          return {
            id: null,
            object: 'authorization' as const,
            approved: false,
            reason: tightest.reason,
            budget: tightest.budget ?? null,
            held_credits: '0',
            available_credits: credits(room.room > 0n ? room.room : 0n),
            expires_at: null,
          };
        }
        await placeHold(tx, org, {
          id,
          input,
          dims,
          hold,
          scopes,
          placedAt: now,
          expiresAt,
        });
        return approved(id, { untracked, estimate, hold, room: room?.room ?? null, expiresAt });
      }),
    ),
  );
}

/**
 * Writes an approved hold in one statement: the authorization, the held units on every limit
 * counter it falls under and, for credits orgs, the `hold` ledger entry and the balance's held sum.
 */
async function placeHold(
  tx: Queryable,
  org: OrgRow,
  hold: {
    id: string;
    input: AuthorizeInput;
    dims: Dimensions;
    hold: bigint;
    scopes: LimitScope[];
    placedAt: Date;
    expiresAt: Date;
  },
): Promise<void> {
  const { input, dims } = hold;
  const counted = hold.hold > 0n;
  const inLedger = counted && org.billing_mode === 'credits';
  const scopeRefs = hold.scopes.map((s) => ({ scope: s.scope, period_start: s.periodStart.toISOString() }));
  const call = storedAttribution(input);
  await tx.query(
    `WITH hold AS (
       INSERT INTO authorizations (org_id, id, member_id, member_external_id, api_key_id, feature, provider, model,
         workspace, workspace_group, project, status, held, scopes, expires_at, surface, conversation_id, message_id,
         parent_id, metadata)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'active', $12, $13, $14, $17, $18, $19, $20, $21::jsonb)
     ), counters AS (
       ${COUNTER_UPSERT(
         '$1',
         `(SELECT scope, period_start, 0 AS spent, $12::bigint AS held
             FROM jsonb_to_recordset($13::jsonb) AS x(scope text, period_start timestamptz)
            WHERE $15 ORDER BY scope, period_start) AS x`,
       )}
     ), ledger AS (
       INSERT INTO ledger_entries (org_id, kind, amount, authorization_id, memo)
       SELECT $1, 'hold', $12, $2, 'hold placed' WHERE $16
     )
     UPDATE org_balances SET held = held + $12, updated_at = now() WHERE org_id = $1 AND $16`,
    [
      org.id,
      hold.id,
      dims.member_id,
      input.member,
      dims.api_key_id || null,
      input.feature,
      input.provider.toLowerCase(),
      input.model,
      dims.workspace,
      dims.workspace_group,
      dims.project,
      String(hold.hold),
      JSON.stringify(scopeRefs),
      hold.expiresAt.toISOString(),
      counted,
      inLedger,
      call.surface,
      call.conversation_id,
      call.message_id,
      call.parent_id,
      call.metadata === null ? null : JSON.stringify(call.metadata),
    ],
  );
  keepAuthorization(
    placedRow(org.id, hold.id, input, dims, hold.hold, scopeRefs, hold.placedAt, hold.expiresAt),
  );
}

/**
 * The authorization row a hold wrote, kept so that the stream's increments and capture do not read
 * it back (they take its changing state from the lock anyway).
 */
function placedRow(
  orgId: string,
  id: string,
  input: AuthorizeInput,
  dims: Dimensions,
  held: bigint,
  scopes: AuthorizationRow['scopes'],
  placedAt: Date,
  expiresAt: Date,
): AuthorizationRow {
  return {
    org_id: orgId,
    id,
    member_id: dims.member_id,
    member_external_id: input.member,
    api_key_id: dims.api_key_id || null,
    feature: input.feature,
    provider: input.provider.toLowerCase(),
    model: input.model,
    workspace: dims.workspace,
    workspace_group: dims.workspace_group,
    project: dims.project,
    ...storedAttribution(input),
    status: 'active',
    held: String(held),
    charged: '0',
    usage: {},
    scopes,
    event_id: null,
    result: null,
    created_at: placedAt,
    expires_at: expiresAt,
  };
}

/**
 * The usual hold in one statement (`tally_place_hold`, migration 0015, with the org's other holds
 * waiting in this process: holdBatches.ts), outside any transaction,
 * so the org's balance lock is held inside Postgres only and never waits on this process. Answers
 * null when the full path must decide: no balance row yet, a plan grant or an expiry due, a
 * denial (recorded there with its alert), or a member budget whose member is not known yet.
 * Throws StaleSpendTerms when the org's terms or limits changed since `hold.version`.
 */
async function placeHoldAtOnce(
  ctx: Ctx,
  org: OrgRow,
  settings: LimitSettings,
  input: AuthorizeInput,
  hold: { id: string; apiKeyId: string; estimate: bigint; expiresAt: Date; now: Date; version: string },
) {
  // The member's id decides scopes only through member budgets: then it must exist already.
  let expectedMember: string | null = null;
  if (settings.budgets.some((b) => b.scope_kind === 'member')) {
    const [member] = await ctx.db.query<{ id: string }>(
      'SELECT id FROM members WHERE org_id = $1 AND external_id = $2',
      [org.id, input.member],
    );
    if (!member) return null;
    expectedMember = member.id;
  }
  const dims = {
    member_id: expectedMember ?? '',
    workspace: input.workspace ?? '',
    workspace_group: input.workspace_group ?? '',
    project: input.project ?? '',
    api_key_id: hold.apiKeyId,
  };
  const scopes = scopesFor(org, settings, dims, hold.now);
  const refs = scopes.map((s) => ({ scope: s.scope, period_start: s.periodStart.toISOString() }));
  const limits = scopes.map((s, i) => ({
    ...refs[i],
    // A limit past the bigint range can never be reached by a bigint counter: it binds nothing.
    limit_units: s.limit === null || s.limit > MAX_BIGINT ? null : String(s.limit),
    hard: s.hard,
  }));
  const untracked = org.billing_mode === 'byok';
  const row = await placeHoldInBatch(ctx.db, {
    org: org.id,
    now: hold.now.toISOString(),
    plan_needed: org.billing_mode === 'credits' && BigInt(org.plan_allowance_credits) > 0n,
    credits: org.billing_mode === 'credits',
    untracked,
    member_external: input.member,
    new_member_id: newId('mem'),
    expected_member_id: expectedMember,
    estimate: String(hold.estimate),
    scopes: limits,
    scope_refs: refs,
    id: hold.id,
    api_key_id: hold.apiKeyId || null,
    feature: input.feature,
    provider: input.provider.toLowerCase(),
    model: input.model,
    workspace: dims.workspace,
    workspace_group: dims.workspace_group,
    project: dims.project,
    ...storedAttribution(input),
    expires_at: hold.expiresAt.toISOString(),
    spend_version: hold.version,
  });
  if (row?.outcome === 'stale') throw new StaleSpendTerms();
  if (row?.outcome !== 'placed') return null;
  const placed = { ...dims, member_id: row.resolved_member_id };
  keepAuthorization(
    placedRow(org.id, hold.id, input, placed, BigInt(row.hold_units), refs, hold.now, hold.expiresAt),
  );
  return approved(hold.id, {
    untracked,
    estimate: hold.estimate,
    hold: BigInt(row.hold_units),
    room: untracked ? null : row.room_units === null ? UNLIMITED : BigInt(row.room_units),
    expiresAt: hold.expiresAt,
  });
}

/** The answer to an approved hold; `room` is what was free before it (null: not tracked). */
function approved(
  id: string,
  h: { untracked: boolean; estimate: bigint; hold: bigint; room: bigint | null; expiresAt: Date },
) {
  return {
    id,
    object: 'authorization' as const,
    approved: true,
    reason: h.untracked ? ('byok_untracked' as const) : h.hold < h.estimate ? ('partial' as const) : null,
    budget: null,
    held_credits: credits(h.hold),
    available_credits: h.room === null ? '0' : credits(h.room - h.hold > 0n ? h.room - h.hold : 0n),
    expires_at: h.expiresAt.toISOString(),
  };
}
