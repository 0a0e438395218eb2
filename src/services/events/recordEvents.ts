/**
 * Stores priced events once each: members and workspaces seen for the first time, the event rows,
 * the rollups, the draw-down from grants and the limit counters, in the caller's transaction.
 * Lock order (members, events with their wide rollup rows, workspaces, balance row, org-wide
 * rollups, grants, counters) is the same for every batch, so concurrent batches of one org queue
 * instead of deadlocking. A call's event takes its workspace and its wide rollup row under the
 * balance lock: its wide rows are not a batch's (migration 0033), and the rare deadlock with a
 * batch creating the same workspace is retried. A call billed
 * through an authorization is recorded by the statement that bills it (`callEventWrites`).
 */
import { newId } from '../../domain/ids.ts';
import { decimalUnits, formatCredits, formatUnits, Ratio } from '../../domain/money.ts';
import { anchorDayOf, billingCycle } from '../../domain/periods.ts';
import { BUILT_IN_SURFACES, normalizedUsage, ROLLUP_DIMENSIONS } from '../../domain/usageEvent.ts';
import { addTotals, COST_SCALE, PCOST_SCALE, SUM_NAMES, type Totals } from '../../domain/usageTotals.ts';
import type { Queryable } from '../../store/db.ts';
import { evaluateSpendAlerts } from '../alerts/evaluateSpendAlerts.ts';
import type { Ctx } from '../context.ts';
import { lockOrgsForSpend, type SpendLock } from '../ledger/lockForSpend.ts';
import { type Charge, type ChargeOutcome, chargeCtes, planCharges } from '../ledger/planCharges.ts';
import {
  COUNTER_DELTAS,
  COUNTER_UPSERT,
  counterDeltas,
  type Dimensions,
  type LimitScope,
  type LimitSettings,
  scopesFor,
} from '../limits/scopes.ts';
import { keptSpendTerms, reloadSpendTerms, type SpendTerms } from '../limits/spendTerms.ts';
import { ensureMembers, memberKey } from '../members/ensureMembers.ts';
import type { OrgRow } from '../orgs/shape.ts';
import { type EventResult, type PricedEvent, rejected, type StorableEvent } from './priceUsageEvent.ts';

type StoredRow = Dimensions & {
  org_id: string;
  id: string;
  occurred_at: string;
  credits: string;
  units: string;
  [column: string]: unknown;
};

export interface RecordOptions {
  /** A trusted import of history: events before the current billing cycle draw no credits. */
  history?: boolean;
  /** The events' member ids by `memberKey`, when the caller made sure of them before the transaction. */
  memberIds?: Map<string, string>;
}

export async function recordEvents(
  tx: Queryable,
  ctx: Ctx,
  events: PricedEvent[],
  options: RecordOptions = {},
): Promise<Map<number, EventResult>> {
  const sorted = events
    .map((e) => ({ e, key: eventKey(e.org.id, e.input.id) }))
    .sort((a, b) => compare(a.key, b.key))
    .map(({ e }) => e);
  const orgs = [...new Map(sorted.map((e) => [e.org.id, e.org])).values()];
  const memberIds = options.memberIds ?? (await ensureMembers(tx, memberRefs(sorted)));
  const rows = storedRows(ctx, sorted, memberIds);
  const [inserted] = await tx.query<{ skipped: number[] }>(INSERT_EVENTS, insertParams(rows));
  // The org balance row is locked before the rows every writer of the org shares (org-wide
  // rollups, grants, counters), as holds and captures do, so they queue there instead of
  // deadlocking. The event rows and their wide rollup rows come first: they are the bulk of the
  // work, calls never share them and batches seldom do, so batches of one org overlap while
  // inserting and only queue for the short rest.
  const taken = new Set(inserted!.skipped);
  const isNew = (i: number) => !taken.has(i);
  const fresh = rows.filter((_, i) => isNew(i));
  // Only the orgs of events stored here spend: a batch repeating recorded events (a client's
  // retry) takes no balance lock, so it never waits for the org's batches and holds in flight.
  const storedFor = new Set(fresh.map((r) => r.org_id));
  const spending = orgs.filter((org) => storedFor.has(org.id));
  // Limits and budgets come from this process's copy, as a hold's do, checked under the lock.
  const terms = new Map<string, SpendTerms>();
  for (const org of spending) terms.set(org.id, await keptSpendTerms(tx, org.id));
  // Only stored events name workspaces: a duplicate or conflicting one writes nothing.
  await ensureWorkspaces(
    tx,
    sorted.filter((_, i) => isNew(i)),
  );
  const days = await localDaysOf(tx, orgs, fresh);
  // Everything JavaScript works out is done before the lock, which is held until commit.
  const rollups = fresh.length > 0 ? rollupParams(fresh, days) : null;
  const spendIn = (org: OrgRow, settings: LimitSettings) =>
    spendOf(
      org,
      settings,
      fresh.filter((r) => r.org_id === org.id),
      options.history ?? false,
    );
  const spends = new Map(spending.map((org) => [org.id, spendIn(org, terms.get(org.id)!.settings)]));
  const now = new Date();
  const locks = await lockOrgsForSpend(tx, spending, now);
  for (const org of spending) {
    // A limit or budget changed since the copy was read (a budget made meanwhile counts this
    // batch only so): the spend is worked out again with them, under the lock.
    if (locks.get(org.id)!.spendVersion !== terms.get(org.id)!.version) {
      spends.set(org.id, spendIn(org, (await reloadSpendTerms(tx, org.id)).settings));
    }
  }
  await chargeAndCount(tx, [...spends.values()], locks, rollups);

  const earlier = await loadExisting(
    tx,
    sorted.filter((_, i) => !isNew(i)),
  );
  const out = new Map<number, EventResult>();
  for (const [i, e] of sorted.entries()) {
    if (isNew(i)) {
      out.set(e.index, {
        id: e.input.id,
        status: 'accepted',
        credits: formatCredits(e.credits),
        cost: e.cost,
        currency: e.currency,
        error: null,
      });
      continue;
    }
    out.set(e.index, answerFromRecord(e, earlier.get(eventKey(e.org.id, e.input.id))!));
  }
  return out;
}

/** The answer to an event whose id was recorded before: a duplicate of it, or a conflict. */
export function answerFromRecord(e: StorableEvent, prior: RecordedEvent): EventResult {
  return prior.content_hash === e.hash
    ? {
        id: e.input.id,
        status: 'duplicate',
        credits: formatCredits(BigInt(prior.credits)),
        cost: Ratio.parse(prior.cost).toDecimal(12),
        currency: prior.currency,
        error: null,
      }
    : rejected(
        e.input.id,
        'idempotency_conflict',
        'An event with this id and other content was recorded before',
      );
}

/**
 * The CTEs that record the event of a call billed through an authorization (its capture, or its
 * void or expiry after streaming) and add it to the rollups, for the statement that bills the call
 * (settle.ts) under the spend lock its caller holds: the credits were drawn as it was billed. Their
 * parameters are numbered from `$at`. CTE `ins` then holds the event if it was stored, and nothing
 * if its id was taken: the caller's statement then fails (tally_require_recorded), rollups and all.
 */
export async function callEventWrites(
  tx: Queryable,
  ctx: Ctx,
  event: StorableEvent,
  memberId: string,
  at: number,
): Promise<{ ctes: string; params: string[] }> {
  const rows = storedRows(ctx, [event], new Map([[memberKey(event.org.id, event.input.member), memberId]]));
  await ensureWorkspaces(tx, [event]);
  const days = await localDaysOf(tx, [event.org], rows);
  const [hourly, daily] = rollupParams(rows, days);
  return {
    ctes: `${insertEventsCtes(`$${at}`, `$${at + 1}`, true)},
     ${rollupCtes(`$${at + 2}`, `$${at + 3}`)}`,
    params: [...insertParams(rows), hourly, daily],
  };
}

/** The `events` row of each event, in the events' order. */
function storedRows(ctx: Ctx, events: StorableEvent[], memberIds: Map<string, string>): StoredRow[] {
  const apiKeyId = ctx.principal.kind === 'org_key' ? ctx.principal.id : '';
  return events.map((e) => ({
    org_id: e.org.id,
    id: e.input.id,
    member_id: memberIds.get(memberKey(e.org.id, e.input.member))!,
    api_key_id: apiKeyId,
    feature: e.input.feature,
    provider: e.input.provider.toLowerCase(),
    model: e.input.model,
    surface: e.input.surface ?? '',
    workspace: e.input.workspace ?? '',
    workspace_group: e.input.workspace_group ?? '',
    project: e.input.project ?? '',
    conversation_id: e.input.conversation_id ?? null,
    message_id: e.input.message_id ?? null,
    parent_id: e.input.parent_id ?? null,
    occurred_at: new Date(e.input.occurred_at).toISOString(),
    input_tokens: e.input.usage.input_tokens ?? 0,
    output_tokens: e.input.usage.output_tokens ?? 0,
    cache_read_tokens: e.input.usage.cache_read_tokens ?? 0,
    cache_write_tokens: e.input.usage.cache_write_tokens ?? 0,
    usage: normalizedUsage(e.input.usage),
    credits: e.credits.toString(),
    units: e.units.toString(),
    cost: e.cost,
    currency: e.currency,
    provider_cost_usd: e.providerCostUsd,
    components: e.components,
    provider_price_id: e.providerPriceId,
    pricing: e.pricing,
    content_hash: e.hash,
    metadata: e.input.metadata ?? null,
  }));
}

/** What a batch adds to one org's spend: the draws from its grants, and its limit counters' deltas. */
interface OrgSpend {
  org: OrgRow;
  /** Credits to draw (credits orgs), one charge per event. */
  charges: Charge[] | null;
  /** The spend per scope and period. */
  changes: (LimitScope & { spent: bigint; held: bigint })[];
}

/** The new events' charges and counter deltas, worked out before the lock is taken. */
function spendOf(org: OrgRow, settings: LimitSettings, rows: StoredRow[], history: boolean): OrgSpend {
  let charges: Charge[] | null = null;
  if (org.billing_mode === 'credits') {
    // Imported history from before the current cycle was paid for in its own cycle.
    const cycleStart = billingCycle(org.timezone, anchorDayOf(org.billing_cycle_anchor), new Date()).start;
    const payable = history ? rows.filter((r) => new Date(r.occurred_at) >= cycleStart) : rows;
    charges = payable.map((r) => ({ amount: BigInt(r.credits), eventId: r.id }));
  }
  // Summed per scope and period here: a batch repeats the same few once per event. In time order:
  // consecutive events then fall in the period computed last (periods.ts keeps one per zone),
  // instead of alternating between two months around a month's start.
  const perScope = new Map<string, LimitScope & { spent: bigint; held: bigint }>();
  for (const r of [...rows].sort((a, b) => compare(a.occurred_at, b.occurred_at))) {
    const spent = BigInt(r.units);
    for (const s of scopesFor(org, settings, r, new Date(r.occurred_at))) {
      const key = `${s.scope}\u0000${s.periodStart.getTime()}`;
      const change = perScope.get(key);
      if (change) change.spent += spent;
      else perScope.set(key, { ...s, spent, held: 0n });
    }
  }
  return { org, charges, changes: [...perScope.values()] };
}

/**
 * Adds the batch to its orgs' rollups (`rollups`: rollupParams), draws each org's credits from its
 * grants and adds its spend to its limit counters: one statement under the orgs' balance locks
 * (each org took two round trips, the rollups one). Then judges each org's alerts on its counters.
 */
async function chargeAndCount(
  tx: Queryable,
  spends: OrgSpend[],
  locks: Map<string, SpendLock>,
  rollups: [string, string] | null,
): Promise<void> {
  const params: string[] = [];
  const param = (value: string) => {
    params.push(value);
    return `$${params.length}`;
  };
  const ctes = rollups ? [rollupCtes(param(rollups[0]), param(rollups[1]))] : [];
  const counted: string[] = [];
  const charged = new Map<string, ChargeOutcome | null>();
  spends.forEach(({ org, charges, changes }, k) => {
    const deltas = counterDeltas(changes);
    if (deltas === null) return;
    const orgId = param(org.id);
    const lock = locks.get(org.id)!;
    const plan = charges ? planCharges(lock.balance, lock.grants, charges) : null;
    charged.set(org.id, plan?.outcome ?? null);
    if (plan) ctes.push(chargeCtes(orgId, plan, `_${k}`, param));
    ctes.push(`counters_${k} AS (
       ${COUNTER_UPSERT(orgId, COUNTER_DELTAS(param(deltas)))}
       RETURNING org_id, scope, period_start, spent, held
     )`);
    counted.push(`SELECT * FROM counters_${k}`);
  });
  if (ctes.length === 0) return;
  const counters = await tx.query<{
    org_id: string;
    scope: string;
    period_start: Date;
    spent: string;
    held: string;
  }>(
    `WITH ${ctes.join(', ')} ${counted.length > 0 ? counted.join(' UNION ALL ') : 'SELECT NULL WHERE false'}`,
    params,
  );
  for (const { org, changes } of spends) {
    if (!charged.has(org.id)) continue;
    // Alerts fire in this transaction, so they exist exactly when the spend that fired them does.
    await evaluateSpendAlerts(tx, org, {
      scopes: changes.filter((c) => c.spent > 0n),
      counters: counters
        .filter((c) => c.org_id === org.id)
        .map((c) => ({
          scope: c.scope,
          periodStart: c.period_start,
          spent: BigInt(c.spent),
          held: BigInt(c.held),
        })),
      charged: charged.get(org.id)!,
    });
  }
}

/** The columns of `events` ingest writes, with their SQL types (text when not given). */
const EVENT_COLUMNS: [keyof StoredRow & string, string?][] = [
  ['org_id'],
  ['id'],
  ['member_id'],
  ['api_key_id'],
  ['feature'],
  ['provider'],
  ['model'],
  ['surface'],
  ['workspace'],
  ['workspace_group'],
  ['project'],
  ['conversation_id'],
  ['message_id'],
  ['parent_id'],
  ['occurred_at', 'timestamptz'],
  ['input_tokens', 'bigint'],
  ['output_tokens', 'bigint'],
  ['cache_read_tokens', 'bigint'],
  ['cache_write_tokens', 'bigint'],
  ['usage', 'jsonb'],
  ['credits', 'bigint'],
  ['cost', 'numeric'],
  ['currency'],
  ['provider_cost_usd', 'numeric'],
  ['components', 'jsonb'],
  ['provider_price_id', 'bigint'],
  ['pricing', 'jsonb'],
  ['content_hash'],
  ['metadata', 'jsonb'],
];

/** Where `pricing` sits in EVENT_COLUMNS: rows carry an index into the batch's distinct pricing terms. */
const PRICING_AT = EVENT_COLUMNS.findIndex(([column]) => column === 'pricing');

/**
 * The rows as JSON arrays of the column values in EVENT_COLUMNS order ($1: a third less to send
 * and to parse than objects repeating every column name), and the distinct pricing terms ($2): a
 * batch repeats a few of them a thousand times, and every byte sent costs (PGlite copies a
 * parameter through its protocol at about 15 ms per megabyte).
 */
function insertParams(rows: StoredRow[]): [string, string] {
  const pricings = new Map<unknown, number>();
  const values = rows.map((r) => {
    const row = EVENT_COLUMNS.map(([column]) => r[column]);
    let at = pricings.get(r.pricing);
    if (at === undefined) {
      at = pricings.size;
      pricings.set(r.pricing, at);
    }
    row[PRICING_AT] = at;
    return row;
  });
  return [JSON.stringify(values), JSON.stringify([...pricings.keys()])];
}

/**
 * CTEs `src` (the rows sent, parameters `values` and `pricings` as insertParams makes them), `ins`
 * (those new to `events`, inserted) and `wide` (adding them to the wide hourly rollup, in the rows
 * of calls or of batches: migration 0033). A JSON null is SQL NULL; '' as the API key is the
 * operator's (none).
 */
const insertEventsCtes = (values: string, pricings: string, fromCalls: boolean) => `src AS (
       SELECT r, n FROM jsonb_array_elements(${values}::jsonb) WITH ORDINALITY AS x (r, n)
     ), ins AS (
       INSERT INTO events (${EVENT_COLUMNS.map(([column]) => column).join(', ')})
       SELECT ${EVENT_COLUMNS.map(([column, type], i) =>
         column === 'pricing'
           ? `${pricings}::jsonb -> (r ->> ${i})::int`
           : type === 'jsonb'
             ? `nullif(r -> ${i}, 'null')`
             : column === 'api_key_id'
               ? `nullif(r ->> ${i}, '')`
               : `(r ->> ${i})${type ? `::${type}` : ''}`,
       ).join(', ')}
         FROM src
       ON CONFLICT (org_id, id) DO NOTHING
       RETURNING id, ${ROLLED_UP}
     ), wide AS (
       INSERT INTO usage_hourly AS t (org_id, bucket, ${DIMS}, from_calls, ${SUM_NAMES})
       SELECT org_id, bucket, ${DIMS}, ${fromCalls}, ${SUMS} FROM ins GROUP BY org_id, bucket, ${DIMS}
        ORDER BY org_id, bucket, ${DIMS}
       ON CONFLICT (org_id, bucket, ${DIMS}, from_calls) DO UPDATE SET ${SUM_UPDATES}
     )`;

/** The (org, external id) of each event's member, as `ensureMembers` takes them. */
export const memberRefs = (events: PricedEvent[]) =>
  events.map((e) => ({ orgId: e.org.id, externalId: e.input.member }));

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

async function ensureWorkspaces(tx: Queryable, events: StorableEvent[]): Promise<void> {
  const named = events.filter((e) => e.input.workspace);
  if (named.length === 0) return;
  const rows = [...new Map(named.map((e) => [`${e.org.id}\u0000${e.input.workspace}`, e])).values()]
    .map((e) => ({
      org_id: e.org.id,
      id: newId('ws'),
      external_id: e.input.workspace!,
      workspace_group: e.input.workspace_group ?? null,
    }))
    .sort((a, b) => compare(a.org_id + '\u0000' + a.external_id, b.org_id + '\u0000' + b.external_id));
  await tx.query(
    `INSERT INTO workspaces (org_id, id, external_id, name, workspace_group)
     SELECT org_id, id, external_id, external_id, workspace_group
       FROM jsonb_to_recordset($1::jsonb) AS x(org_id text, id text, external_id text, workspace_group text)
     ON CONFLICT (org_id, external_id) DO NOTHING`,
    [JSON.stringify(rows)],
  );
}

/** Surfaces Tally knows (and none); any other surface names an integration (the `integration` rollup dimension). */
const NO_INTEGRATION = new Set(['', ...Object.keys(BUILT_IN_SURFACES)]);
const TOOL_MAX_CHARS = 200;
/** ASCII whitespace only, so migration 0011 (btrim) trims exactly as ingest does. */
const EDGE_SPACE = /^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g;

/** The `tool` rollup key of an event: its string `metadata.tool`, trimmed and cut to 200 characters. */
function toolOf(metadata: unknown): string | null {
  const tool = (metadata as Record<string, unknown> | null)?.tool;
  if (typeof tool !== 'string') return null;
  const trimmed = tool.replace(EDGE_SPACE, '');
  if (trimmed === '') return null;
  return trimmed.length > TOOL_MAX_CHARS ? Array.from(trimmed).slice(0, TOOL_MAX_CHARS).join('') : trimmed;
}

/**
 * The narrow daily dimensions (migration 0005; 'integration' and 'tool', migration 0011, only for
 * events that have one): each event's key per dimension, as services/usage/source.ts reads them.
 */
const DAILY_KEYS: [string, (r: StoredRow) => string | null][] = [
  ['all', () => ''],
  ['member', (r) => r.member_id],
  ['feature', (r) => r.feature as string],
  ['model', (r) => `${r.provider}/${r.model}`],
  ['provider', (r) => r.provider as string],
  ['workspace', (r) => r.workspace],
  ['workspace_group', (r) => r.workspace_group],
  ['surface', (r) => r.surface as string],
  ['project', (r) => r.project],
  ['api_key', (r) => r.api_key_id],
  ['integration', (r) => (NO_INTEGRATION.has(r.surface as string) ? null : (r.surface as string))],
  ['tool', (r) => toolOf(r.metadata)],
];

const SUM_UPDATES = `calls = t.calls + EXCLUDED.calls,
       credits = t.credits + EXCLUDED.credits,
       cost = t.cost + EXCLUDED.cost,
       provider_cost_usd = t.provider_cost_usd + EXCLUDED.provider_cost_usd,
       input_tokens = t.input_tokens + EXCLUDED.input_tokens,
       output_tokens = t.output_tokens + EXCLUDED.output_tokens,
       cache_read_tokens = t.cache_read_tokens + EXCLUDED.cache_read_tokens,
       cache_write_tokens = t.cache_write_tokens + EXCLUDED.cache_write_tokens`;
const SUMS = `sum(calls), sum(credits), sum(cost), sum(provider_cost_usd), sum(input_tokens), sum(output_tokens),
         sum(cache_read_tokens), sum(cache_write_tokens)`;
const DIMS = ROLLUP_DIMENSIONS.join(', ');

/** What the wide rollup sums of an event, from the `events` columns. */
const ROLLED_UP = `org_id, date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket,
   ${ROLLUP_DIMENSIONS.filter((d) => d !== 'api_key_id').join(', ')},
   coalesce(api_key_id, '') AS api_key_id, 1 AS calls, credits, cost, provider_cost_usd,
   input_tokens, output_tokens, cache_read_tokens, cache_write_tokens`;

/** The columns of a summed row as rollupParams sends them, from its JSON array `r` at `from`. */
const sentSums = (r: string, from: number) =>
  `(${r} ->> ${from})::bigint, (${r} ->> ${from + 1})::bigint, (${r} ->> ${from + 2})::numeric,
   (${r} ->> ${from + 3})::numeric, (${r} ->> ${from + 4})::bigint, (${r} ->> ${from + 5})::bigint,
   (${r} ->> ${from + 6})::bigint, (${r} ->> ${from + 7})::bigint`;

/**
 * CTEs adding events to the rollups every writer of the org shares, summed in JS (rollupParams):
 * the org's total per UTC hour (parameter `hourly`) and the narrow daily rows (`daily`, one
 * dimension per row per day of the org's time zone, 'all' being the org total). They are written
 * under the org's balance lock, each table in key order.
 */
const rollupCtes = (hourly: string, daily: string) => `total AS (
       INSERT INTO usage_hourly_total AS t (org_id, bucket, ${SUM_NAMES})
       SELECT h ->> 0, (h ->> 1)::timestamptz, ${sentSums('h', 2)}
         FROM jsonb_array_elements(${hourly}::jsonb) AS h
        ORDER BY 1, 2
       ON CONFLICT (org_id, bucket) DO UPDATE SET ${SUM_UPDATES}
     ), daily AS (
       INSERT INTO usage_daily_dim AS t (org_id, dimension, bucket, day_end, key, ${SUM_NAMES})
       SELECT g ->> 0, r ->> 0, (g ->> 1)::timestamptz, (g ->> 2)::timestamptz, r ->> 1, ${sentSums('r', 2)}
         FROM jsonb_array_elements(${daily}::jsonb) AS g CROSS JOIN LATERAL jsonb_array_elements(g -> 3) AS r
        ORDER BY 1, 2, 3, 4, 5
       ON CONFLICT (org_id, dimension, bucket, day_end, key) DO UPDATE SET ${SUM_UPDATES}
     )`;

/**
 * Inserts the rows new to `events`, adds them to the wide rollup (before the balance lock: they are
 * the bulk of the work and other batches seldom share their rows, so batches of one org overlap
 * there) and answers the positions (0-based, in the order sent) of those whose key was already
 * taken: usually none, so one short row comes back instead of a key per event.
 */
const INSERT_EVENTS = `WITH ${insertEventsCtes('$1', '$2', false)}
     SELECT coalesce(array_agg((n - 1)::int), '{}') AS skipped FROM src
      WHERE NOT EXISTS (SELECT FROM ins WHERE ins.org_id = src.r ->> 0 AND ins.id = src.r ->> 1)`;

/** A local day [start, end) as ISO strings. */
type LocalDay = [string, string];

/**
 * The local day [start, end) of a UTC hour in a zone, as Postgres computes it (usage_local_day,
 * migration 0005, with the database's zone rules), remembered per zone and hour: a batch then
 * asks only about hours it is the first to see.
 */
const localDays = new Map<string, LocalDay>();
const LOCAL_DAYS_KEPT = 100_000;

/** The local day of each row (in the rows' order): from the cache, asking Postgres for the rest. */
async function localDaysOf(q: Queryable, orgs: OrgRow[], rows: StoredRow[]): Promise<LocalDay[]> {
  const zoneOf = new Map(orgs.map((o) => [o.id, o.timezone]));
  // occurred_at is a normalised ISO string: its first 13 characters name the UTC hour.
  const keys = rows.map((r) => `${zoneOf.get(r.org_id)}\u0000${r.occurred_at.slice(0, 13)}`);
  const days = keys.map((key) => localDays.get(key));
  const missing = new Map<string, number[]>();
  days.forEach((day, i) => {
    if (day) return;
    const key = keys[i]!;
    const at = missing.get(key);
    if (at) at.push(i);
    else missing.set(key, [i]);
  });
  if (missing.size === 0) return days as LocalDay[];
  const asked = [...missing.values()];
  const found = await q.query<{ n: string; day_start: Date; day_end: Date }>(
    `SELECT k.n, l.day_start, l.day_end
       FROM unnest($1::text[], $2::timestamptz[]) WITH ORDINALITY AS k (zone, hour, n)
      CROSS JOIN LATERAL usage_local_day(k.hour, k.zone) AS l`,
    [
      asked.map(([i]) => zoneOf.get(rows[i!]!.org_id)),
      asked.map(([i]) => `${rows[i!]!.occurred_at.slice(0, 13)}:00:00.000Z`),
    ],
  );
  if (localDays.size + found.length > LOCAL_DAYS_KEPT) localDays.clear();
  for (const f of found) {
    const at = asked[Number(f.n) - 1]!;
    const day: LocalDay = [f.day_start.toISOString(), f.day_end.toISOString()];
    localDays.set(keys[at[0]!]!, day);
    for (const i of at) days[i] = day;
  }
  return days as LocalDay[];
}

/** Adds one event's totals to the row of `key` in `byKey`. */
function addTo(byKey: Map<string, Totals>, key: string, add: Totals): void {
  const row = byKey.get(key);
  if (row) addTotals(row, add);
  else byKey.set(key, { ...add });
}

/** A summed row's columns as SQL reads them (sentSums). */
const sentValues = (s: Totals) => [
  s.calls.toString(),
  s.credits.toString(),
  formatUnits(s.cost, COST_SCALE),
  formatUnits(s.providerCost, PCOST_SCALE),
  s.input.toString(),
  s.output.toString(),
  s.cacheRead.toString(),
  s.cacheWrite.toString(),
];

/**
 * The org-wide rollup rows of the rows' events, as the JSON parameters of rollupCtes: the hourly
 * totals, [org, hour, sums...] per org and UTC hour; and the narrow daily rows, summed per org and
 * local day, then per dimension and key (short map keys: a batch adds each event to a dozen rows):
 * one [org, day start, day end, rows] group per org and day, each row [dimension, key, sums...], so
 * the org and the day are sent once per group rather than once per row (they were a third of the
 * bytes).
 */
function rollupParams(rows: StoredRow[], days: LocalDay[]): [string, string] {
  const hours = new Map<string, Totals>();
  const groups = new Map<string, { orgId: string; day: LocalDay; byKey: Map<string, Totals>[] }>();
  rows.forEach((r, i) => {
    const sums: Totals = {
      calls: 1n,
      credits: BigInt(r.credits),
      cost: decimalUnits(r.cost as string, COST_SCALE),
      providerCost: decimalUnits(r.provider_cost_usd as string, PCOST_SCALE),
      input: BigInt(r.input_tokens as number),
      output: BigInt(r.output_tokens as number),
      cacheRead: BigInt(r.cache_read_tokens as number),
      cacheWrite: BigInt(r.cache_write_tokens as number),
    };
    // occurred_at is a normalised ISO string: its first 13 characters name the UTC hour.
    addTo(hours, `${r.org_id}\u0000${r.occurred_at.slice(0, 13)}`, sums);
    const day = days[i]!;
    const groupId = `${r.org_id}\u0000${day[0]}`;
    let group = groups.get(groupId);
    if (!group) {
      group = { orgId: r.org_id, day, byKey: DAILY_KEYS.map(() => new Map()) };
      groups.set(groupId, group);
    }
    for (let d = 0; d < DAILY_KEYS.length; d++) {
      const key = DAILY_KEYS[d]![1](r);
      if (key !== null) addTo(group.byKey[d]!, key, sums);
    }
  });
  const hourly = [...hours].map(([key, s]) => {
    const [orgId, hour] = key.split('\u0000');
    return [orgId, `${hour}:00:00Z`, ...sentValues(s)];
  });
  const daily = [...groups.values()].map(({ orgId, day, byKey }) => [
    orgId,
    day[0],
    day[1],
    byKey.flatMap((sums, d) => [...sums].map(([key, s]) => [DAILY_KEYS[d]![0], key, ...sentValues(s)])),
  ]);
  return [JSON.stringify(hourly), JSON.stringify(daily)];
}

/** An event's id is unique within its org: the key of a batch's events and of `loadExisting`. */
export const eventKey = (orgId: string, id: string) => `${orgId}\u0000${id}`;

interface RecordedEvent {
  content_hash: string;
  credits: string;
  cost: string;
  currency: string;
}

/** The events recorded under the given ids, by `eventKey`. */
export async function loadExisting(
  tx: Queryable,
  events: StorableEvent[],
): Promise<Map<string, RecordedEvent>> {
  if (events.length === 0) return new Map();
  const rows = await tx.query<RecordedEvent & { org_id: string; id: string }>(
    `SELECT e.org_id, e.id, e.content_hash, e.credits, e.cost, e.currency FROM events e
       JOIN jsonb_to_recordset($1::jsonb) AS x(org_id text, id text) ON e.org_id = x.org_id AND e.id = x.id`,
    [JSON.stringify(events.map((e) => ({ org_id: e.org.id, id: e.input.id })))],
  );
  return new Map(rows.map((r) => [eventKey(r.org_id, r.id), r]));
}
