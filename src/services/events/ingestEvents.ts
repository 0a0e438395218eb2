/**
 * Records a batch of usage events: each priced once, stored once, counted once.
 * The event id is the idempotency key within the org: a retry with the same content answers
 * `duplicate`, another event reusing the id is rejected. Events, rollups and charges are written in
 * one transaction; members seen for the first time are created just before it.
 */
import { contentHash, type UsageEventInput } from '../../domain/usageEvent.ts';
import { withRetry } from '../../store/retry.ts';
import { type Ctx, scopeOrg } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { rawEventsKeptFrom } from '../maintenance/rawEventsKeptFrom.ts';
import { ensureMembers, findMembers, memberKey } from '../members/ensureMembers.ts';
import { ORG_COLUMNS, type OrgRow } from '../orgs/shape.ts';
import { callEventIds } from './callEventIds.ts';
import {
  type EventResult,
  type IngestOptions,
  type PricedEvent,
  priceUsageEvent,
  rejected,
} from './priceUsageEvent.ts';
import { answerFromRecord, eventKey, loadExisting, memberRefs, recordEvents } from './recordEvents.ts';

export type { EventResult, IngestOptions };

/** The org of each event, and each org once. */
async function resolveOrgs(
  ctx: Ctx,
  events: UsageEventInput[],
): Promise<{ perEvent: OrgRow[]; distinct: OrgRow[] }> {
  const ids = events.map((e, i) => {
    if (ctx.principal.kind !== 'operator') return e.org_id ?? ctx.principal.orgId;
    if (!e.org_id)
      throw new ServiceError(
        422,
        'invalid_field',
        'org_id is required with an operator key',
        `events[${i}].org_id`,
      );
    return e.org_id;
  });
  ids.forEach((id, i) => {
    try {
      scopeOrg(ctx, id, 'events:write');
    } catch (error) {
      if (error instanceof ServiceError && error.status === 404) {
        throw new ServiceError(404, 'not_found', 'Organization not found', `events[${i}].org_id`);
      }
      throw error;
    }
  });
  const unique = [...new Set(ids)];
  const rows = await ctx.db.query<OrgRow>(`SELECT ${ORG_COLUMNS} FROM orgs WHERE id = ANY($1::text[])`, [
    unique,
  ]);
  const byId = new Map(rows.map((r) => [r.id, r]));
  const missing = ids.findIndex((id) => !byId.has(id));
  if (missing >= 0)
    throw new ServiceError(404, 'not_found', 'Organization not found', `events[${missing}].org_id`);
  return { perEvent: ids.map((id) => byId.get(id)!), distinct: rows };
}

export async function ingestEvents(
  ctx: Ctx,
  events: UsageEventInput[],
  options: IngestOptions = {},
): Promise<EventResult[]> {
  const { perEvent: orgs, distinct } = await resolveOrgs(ctx, events);
  await ctx.prices.refresh(ctx.db);
  const now = new Date();
  const results: EventResult[] = new Array(events.length);
  let toStore: PricedEvent[] = [];
  const firstInBatch = new Map<string, PricedEvent>();
  const repeats: { index: number; of: PricedEvent; hash: string }[] = [];
  const keptFrom = options.backfill ? await rawEventsKeptFrom(ctx.db, distinct, now) : null;
  const callIds = await callEventIds(ctx.db, events, orgs);
  events.forEach((input, index) => {
    const org = orgs[index]!;
    const key = eventKey(org.id, input.id);
    const earlier = firstInBatch.get(key);
    if (earlier) {
      repeats.push({ index, of: earlier, hash: contentHash(input) });
      return;
    }
    if (callIds.has(key)) {
      results[index] = rejected(
        input.id,
        'reserved_id',
        'This id names an authorization of the org: the call it holds is recorded under it at capture, void or expiry',
      );
      return;
    }
    const purgedUntil = keptFrom?.get(org.id);
    if (purgedUntil && Date.parse(input.occurred_at) < purgedUntil.getTime()) {
      results[index] = rejected(
        input.id,
        'retention_purged',
        `Raw events before ${purgedUntil.toISOString()} are removed by retention; an event from then cannot be told from one already counted`,
      );
      return;
    }
    const outcome = priceUsageEvent(ctx, input, org, index, now, options);
    if ('status' in outcome) results[index] = outcome;
    else {
      firstInBatch.set(key, outcome);
      toStore.push(outcome);
    }
  });

  // Members seen for the first time are created before the batch's transaction, in statements of
  // their own: created in it, a member new to concurrent batches too held them until it committed
  // (on the server, 0.3 member inserts a batch waited 77 ms a batch in the bench, 4 orgs x 250 members).
  const known = await findMembers(ctx.db, memberRefs(toStore));
  const unsure = toStore.filter((e) => !known.has(memberKey(e.org.id, e.input.member)));
  if (unsure.length > 0) {
    // An event recorded before that names a member never seen is answered from its record now:
    // creating the member for it would be a write for an event that is not stored.
    const recorded = await loadExisting(ctx.db, unsure);
    const answered = new Set<PricedEvent>();
    for (const e of unsure) {
      const prior = recorded.get(eventKey(e.org.id, e.input.id));
      if (prior) {
        results[e.index] = answerFromRecord(e, prior);
        answered.add(e);
      }
    }
    toStore = toStore.filter((e) => !answered.has(e));
  }
  // Retried like the transaction: creating members may deadlock with a batch of holds creating the same ones.
  const memberIds =
    toStore.length > 0 ? await withRetry(() => ensureMembers(ctx.db, memberRefs(toStore), known)) : null;
  const stored = memberIds
    ? await withRetry(() =>
        ctx.db.transaction((tx) =>
          recordEvents(tx, ctx, toStore, { history: options.backfill ?? false, memberIds }),
        ),
      )
    : new Map();
  for (const event of toStore) results[event.index] = stored.get(event.index)!;
  for (const { index, of, hash } of repeats) {
    const first = results[of.index]!;
    results[index] =
      hash !== of.hash
        ? rejected(
            events[index]!.id,
            'idempotency_conflict',
            'Another event in this batch has the same id and other content',
          )
        : first.status === 'rejected'
          ? first
          : { ...first, status: 'duplicate' };
  }
  return results;
}
