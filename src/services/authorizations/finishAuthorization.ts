/**
 * Ends an authorization: capture (final usage reported), void (caller gave up) or expiry (the
 * caller vanished). Usage already billed through increments is always recorded as the call's
 * event, so a client that disconnects mid-stream still pays for what it streamed.
 */
import type { Usage } from '../../domain/pricing.ts';
import { sameUsage, usageAtLeast, usageBeyond } from '../../domain/usageCounts.ts';
import { withRetry } from '../../store/retry.ts';
import type { Ctx } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { lockForSpend } from '../ledger/lockForSpend.ts';
import { requireCurrent, withSpendTerms } from '../limits/spendTerms.ts';
import { unitsFor } from './authorize.ts';
import { bill, callCost, callEvent, type LockedCall, scopesOf } from './settle.ts';
import { credits, findAuthorization, forgetAuthorization, lockedState } from './shape.ts';

type Ending =
  | { kind: 'capture'; usage: Usage; eventId?: string; error?: string }
  | { kind: 'void' }
  | { kind: 'expire' };

export interface CaptureResult {
  object: 'authorization';
  id: string;
  status: 'captured';
  credits: string;
  cost: string;
  currency: string;
  event_id: string;
  unbilled_credits: string;
  /** The hold had expired: `event_id` records the rest of the call, its streamed part was recorded at expiry. */
  late: boolean;
}

/** A capture's answer as the authorization keeps it, with the call's final usage to compare a capture sent again with. */
type KeptCapture = CaptureResult & { captured_usage?: Usage };

type Outcome =
  | { kind: 'replay' | 'done'; result: CaptureResult | EndResult }
  | { kind: 'refused'; status: string }
  | { kind: 'conflict' };

export interface EndResult {
  object: 'authorization';
  id: string;
  status: 'voided' | 'expired';
  charged_credits: string;
}

export async function finishAuthorization(
  ctx: Ctx,
  id: string,
  ending: Ending,
): Promise<CaptureResult | EndResult> {
  const [found] = await Promise.all([findAuthorization(ctx, id), ctx.prices.refresh(ctx.db)]);
  const outcome = await withSpendTerms(ctx.db, found.org_id, ({ org, settings, version }) =>
    withRetry(() =>
      ctx.db.transaction(async (tx): Promise<Outcome> => {
        const now = new Date();
        const scopes = scopesOf(org, settings, found);
        const lock = await lockForSpend(tx, org, scopes, now, found.id);
        requireCurrent(version, lock.spendVersion);
        const auth = lockedState(found, lock.authorization);
        if (auth.status === 'captured' && ending.kind === 'capture') {
          const { captured_usage: captured, ...first } = auth.result as unknown as KeptCapture;
          // A retry answers the first capture; one that reports more, or names another event, would
          // be billed nowhere, so it is refused instead. Less than was captured is read as the
          // captured usage, as a final count below the streamed one is. A capture kept without its
          // usage (before Tally kept it) answers as it did.
          const same =
            captured === undefined ||
            (sameUsage(usageAtLeast(ending.usage, captured), captured) &&
              (ending.eventId === undefined || ending.eventId === first.event_id));
          return same ? { kind: 'replay', result: first } : { kind: 'conflict' };
        }
        // A capture after the expiry job ended the hold still bills the rest of the call: usage
        // happened, and is never dropped.
        const late = ending.kind === 'capture' && auth.status === 'expired';
        if (auth.status !== 'active' && !late) return { kind: 'refused', status: auth.status };
        if (ending.kind === 'expire' && auth.expires_at > now) return { kind: 'refused', status: 'active' };
        const call = { tx, ctx, org, auth, scopes, lock };
        if (ending.kind === 'capture')
          return { kind: 'done', result: await capture(call, ending, now, late) };
        // Void or expiry: bill nothing more, record what was billed.
        const status = ending.kind === 'void' ? ('voided' as const) : ('expired' as const);
        const { end } = await bill(call, 0n, {
          eventId: null,
          usage: null,
          release: true,
          last: true,
          end: ({ charged }) => {
            const result: EndResult = {
              object: 'authorization' as const,
              id: auth.id,
              status,
              charged_credits: credits(charged),
            };
            // A BYOK call bills nothing, but its tokens are still the org's usage to show.
            const streamed =
              Object.keys(auth.usage).length > 0 && (charged > 0n || org.billing_mode === 'byok');
            const event = streamed ? callEvent(ctx, org, auth, auth.usage, auth.id, now, charged) : null;
            return { status, result, event };
          },
        });
        return { kind: 'done', result: end!.result };
      }),
    ),
  );
  forgetAuthorization(found.id);
  if (outcome.kind === 'conflict') {
    throw new ServiceError(
      409,
      'authorization_captured',
      'The authorization was captured before with other usage or another event id; that capture stands',
    );
  }
  if (outcome.kind === 'refused') {
    throw new ServiceError(409, 'authorization_not_active', `The authorization is ${outcome.status}`);
  }
  return outcome.result;
}

/**
 * Bills the call's final usage past what it was charged, from the hold and then as far as limits
 * allow, and records it as the call's event. A late capture (the hold expired and its streamed
 * part was recorded then) records only the rest, as an event of its own.
 */
async function capture(
  call: LockedCall,
  ending: Extract<Ending, { kind: 'capture' }>,
  now: Date,
  late: boolean,
): Promise<CaptureResult> {
  const { ctx, org, auth } = call;
  // What the stream reported is never taken back: a final count below it is read as the streamed one.
  const final = usageAtLeast(ending.usage, auth.usage);
  const total = unitsFor(ctx, org, auth, final, now).units;
  const already = BigInt(auth.charged);
  // After an expiry that recorded the streamed part as the call's event, this event is the rest.
  const restOnly = late && auth.event_id !== null;
  const usage = restOnly ? usageBeyond(final, auth.usage) : final;
  const eventId = ending.eventId ?? (restOnly ? `${auth.id}:late` : auth.id);
  const { end } = await bill(call, total > already ? total - already : 0n, {
    eventId,
    usage: null,
    release: true,
    last: true,
    end: ({ charged, unbilled }) => {
      const billed = late ? charged - already : charged;
      const event = callEvent(ctx, org, auth, usage, eventId, now, billed, ending.error);
      const result: CaptureResult = {
        object: 'authorization',
        id: auth.id,
        status: 'captured',
        credits: credits(charged),
        cost: callCost(org, charged),
        currency: event.currency,
        event_id: eventId,
        unbilled_credits: credits(unbilled),
        late,
      };
      const kept: KeptCapture = { ...result, captured_usage: final };
      return { status: 'captured', result, kept, event };
    },
  });
  return end!.result;
}

export async function captureAuthorization(
  ctx: Ctx,
  id: string,
  input: { usage: Usage; event_id?: string | undefined; error?: string | undefined },
): Promise<CaptureResult> {
  const result = await finishAuthorization(ctx, id, {
    kind: 'capture',
    usage: input.usage,
    ...(input.event_id ? { eventId: input.event_id } : {}),
    ...(input.error ? { error: input.error } : {}),
  });
  if (result.status !== 'captured')
    throw new ServiceError(409, 'authorization_not_active', `The authorization is ${result.status}`);
  return result;
}

export async function voidAuthorization(ctx: Ctx, id: string): Promise<EndResult & { status: 'voided' }> {
  const result = await finishAuthorization(ctx, id, { kind: 'void' });
  if (result.status !== 'voided')
    throw new ServiceError(409, 'authorization_not_active', `The authorization is ${result.status}`);
  return { ...result, status: 'voided' };
}
