/**
 * One conversation (a chat): its title, its totals (calls, input and output tokens, credits, cost,
 * processing time, first and last call, duration), and per message (the events sharing a
 * `message_id`; an event without one is a message of its own) the same figures with the exact
 * pricing breakdown of its calls (`events.components`), and the files uploaded.
 *
 * What only the host app knows comes from the events' `metadata`, each key read when its type is
 * right and ignored otherwise (a figure no event says is null):
 * - `input_tokens` {message, context, files}: the input split into the message itself, context and files;
 * - `output_tokens` {response, tools}: the output split into the model's response and tool outputs;
 * - `processing_ms`: how long the model took for the call;
 * - `conversation_title`: the chat's title, the latest non-empty one, trimmed and cut as a tool name is;
 * - `files` [{id, name, size_bytes, extracted_tokens}]: the files uploaded, with their extracted tokens
 *   and how many messages of the conversation used each.
 * Counts must be whole, non-negative numbers that JavaScript holds exactly; a duration may have a fraction.
 *
 * Every figure is summed from raw events (index `events_conversation`), so messages add up to the
 * totals exactly, and a message's components add up to its credits and cost exactly: each event's
 * components carry credits allocated to add up to its own (ingest and settled holds alike), valued at
 * the event's credit value as its cost was, and a BYOM event's rounded cost is split over its
 * components as the daily items split it (getDayItems.ts ITEM_FROM). Messages are keyset-paginated,
 * oldest first.
 */
import { CREDIT_SCALE, decimalUnits, formatCredits, formatUnits } from '../../domain/money.ts';
import { COMPONENTS } from '../../domain/pricing.ts';
import { COST_SCALE, PCOST_SCALE } from '../../domain/usageTotals.ts';
import type { Ctx } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { cursorTime, decodeCursor, encodeCursor } from '../pagination.ts';
import { ITEM_FROM, ITEM_SUMS } from './getDayItems.ts';
import { loadScope, metadataTextSql } from './scope.ts';

export interface ConversationQuery {
  limit: number;
  cursor?: string | undefined;
}

interface Sums {
  calls: string;
  credits: string;
  cost: string;
  provider_cost_usd: string;
  input_tokens: string;
  output_tokens: string;
  cache_read_tokens: string;
  cache_write_tokens: string;
  in_message: string | null;
  in_context: string | null;
  in_files: string | null;
  out_response: string | null;
  out_tools: string | null;
  processing_ms: string | null;
}

/**
 * A metadata figure (`json`, a jsonb expression) as a number, or null where it is no number, is
 * negative, is beyond what JavaScript holds exactly or, for a count (tokens, bytes), is no whole
 * number. The nested CASE keeps the cast from ever seeing a string.
 */
const metadataFigure = (json: string, kind: 'count' | 'duration') => {
  const value = `(${json})::numeric`;
  const whole = kind === 'count' ? ` AND ${value} = trunc(${value})` : '';
  return `CASE WHEN jsonb_typeof(${json}) = 'number' THEN
    CASE WHEN ${value} BETWEEN 0 AND ${Number.MAX_SAFE_INTEGER}${whole} THEN ${value} END END`;
};

/** The sum of a metadata figure over the events that give a valid one (metadataFigure). */
const metadataSum = (path: string, kind: 'count' | 'duration') =>
  `sum(${metadataFigure(`metadata${path}`, kind)})::text`;

const SUMS = `count(*)::text AS calls, sum(credits)::text AS credits, sum(cost)::text AS cost,
  sum(provider_cost_usd)::text AS provider_cost_usd, sum(input_tokens)::text AS input_tokens,
  sum(output_tokens)::text AS output_tokens, sum(cache_read_tokens)::text AS cache_read_tokens,
  sum(cache_write_tokens)::text AS cache_write_tokens,
  ${metadataSum("->'input_tokens'->'message'", 'count')} AS in_message,
  ${metadataSum("->'input_tokens'->'context'", 'count')} AS in_context,
  ${metadataSum("->'input_tokens'->'files'", 'count')} AS in_files,
  ${metadataSum("->'output_tokens'->'response'", 'count')} AS out_response,
  ${metadataSum("->'output_tokens'->'tools'", 'count')} AS out_tools,
  ${metadataSum("->'processing_ms'", 'duration')} AS processing_ms`;

/** The conversation's title of an event: its `metadata.conversation_title`, trimmed as a tool name is. */
const TITLE = metadataTextSql('metadata', 'conversation_title');
/**
 * A conversation's title as an aggregate over its events (`occurred_at`, `id`, `metadata` of
 * events): the latest non-empty one, so a blank title sent later keeps the earlier one.
 */
export const LATEST_TITLE = `(array_agg(${TITLE} ORDER BY occurred_at DESC, id DESC) FILTER (WHERE ${TITLE} <> ''))[1]`;

const int = (s: string | null) => (s === null ? null : Number(s.split('.')[0]));

function figures(r: Sums, operator: boolean) {
  const input = BigInt(r.input_tokens);
  const output = BigInt(r.output_tokens);
  return {
    calls: Number(r.calls),
    tokens: {
      input: Number(input),
      output: Number(output),
      cache_read: Number(r.cache_read_tokens),
      cache_write: Number(r.cache_write_tokens),
      total: Number(input + output),
    },
    input_breakdown: { message: int(r.in_message), context: int(r.in_context), files: int(r.in_files) },
    output_breakdown: { response: int(r.out_response), tools: int(r.out_tools) },
    processing_ms: int(r.processing_ms),
    credits: formatCredits(BigInt(r.credits)),
    cost: formatUnits(decimalUnits(r.cost, COST_SCALE), COST_SCALE),
    provider_cost_usd: operator
      ? formatUnits(decimalUnits(r.provider_cost_usd, PCOST_SCALE), PCOST_SCALE)
      : null,
  };
}

/**
 * Each message's calls by priced component, summed as the daily detail's lines are (ITEM_SUMS:
 * BYOM and BYOK components take no credits, a BYOK one no cost, a BYOM one its share of the
 * rounded provider cost), the credits of events priced before events kept their credit value at
 * the org's ($4). Exact decimals: the rounding only drops zeros.
 */
const MESSAGE_COMPONENTS = `SELECT key, component, quantity::text, round(credits, ${CREDIT_SCALE})::text AS credits,
       round(coalesce(valued_cost, 0) + coalesce(unvalued_credits, 0) * $4::numeric, ${COST_SCALE})::text AS cost
  FROM (SELECT coalesce(e.message_id, e.id) AS key, coalesce(c.component, 'call') AS component, ${ITEM_SUMS}
          FROM ${ITEM_FROM}
         WHERE e.org_id = $1 AND e.conversation_id = $2 AND coalesce(e.message_id, e.id) = ANY($3::text[])
         GROUP BY 1, 2) AS m`;

/** Components in the order prices list them, unpriced calls last. */
const componentRank = (component: string) => {
  const rank = (COMPONENTS as readonly string[]).indexOf(component);
  return rank === -1 ? COMPONENTS.length : rank;
};

const AT = cursorTime('min(occurred_at)');
const LAST = cursorTime('max(occurred_at)');
const ms = (iso: string) => `${iso.slice(0, 23)}Z`;

export async function getConversation(
  ctx: Ctx,
  orgId: string,
  conversationId: string,
  query: ConversationQuery,
  now = new Date(),
) {
  const scope = await loadScope(ctx, orgId, { range: '1d' }, now);
  const after = decodeCursor(query.cursor, ['time', 'text']) as [string, string] | null;
  const [total] = await ctx.db.read.query<
    Sums & { first_at: string | null; last_at: string | null; members: string[]; title: string | null }
  >(
    // The title in the same pass as the sums.
    `SELECT ${SUMS}, ${AT} AS first_at, ${LAST} AS last_at, array_agg(DISTINCT member_id) AS members,
            ${LATEST_TITLE} AS title
       FROM events WHERE org_id = $1 AND conversation_id = $2`,
    [orgId, conversationId],
  );
  if (!total || Number(total.calls) === 0) {
    throw new ServiceError(404, 'not_found', 'Conversation not found', 'conversation');
  }
  const messages = await ctx.db.read.query<
    Sums & { key: string; first_at: string; last_at: string; models: string[]; features: string[] }
  >(
    `SELECT coalesce(message_id, id) AS key, ${SUMS}, ${AT} AS first_at, ${LAST} AS last_at,
            array_agg(DISTINCT provider || '/' || model) AS models, array_agg(DISTINCT feature) AS features
       FROM events WHERE org_id = $1 AND conversation_id = $2
      GROUP BY 1
     HAVING $3::timestamptz IS NULL OR (min(occurred_at), coalesce(message_id, id)) > ($3::timestamptz, $4::text)
      ORDER BY min(occurred_at), 1
      LIMIT $5`,
    [orgId, conversationId, after?.[0] ?? null, after?.[1] ?? null, query.limit + 1],
  );
  const files = await ctx.db.read.query<{
    id: string;
    name: string | null;
    size_bytes: string | null;
    extracted_tokens: string | null;
    messages: string;
  }>(
    `SELECT f->>'id' AS id, max(f->>'name') AS name,
            max(${metadataFigure("f->'size_bytes'", 'count')})::text AS size_bytes,
            max(${metadataFigure("f->'extracted_tokens'", 'count')})::text AS extracted_tokens,
            count(DISTINCT coalesce(e.message_id, e.id))::text AS messages
       FROM events e
      CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(e.metadata->'files') = 'array' THEN e.metadata->'files' ELSE '[]'::jsonb END) AS f
      WHERE e.org_id = $1 AND e.conversation_id = $2 AND jsonb_typeof(f->'id') = 'string'
      GROUP BY 1 ORDER BY 1 LIMIT 200`,
    [orgId, conversationId],
  );
  const has_more = messages.length > query.limit;
  const kept = has_more ? messages.slice(0, query.limit) : messages;
  const last = kept[kept.length - 1];
  const components = new Map<
    string,
    { component: string; quantity: string; credits: string; cost: string }[]
  >();
  for (const c of await ctx.db.read.query<{
    key: string;
    component: string;
    quantity: string;
    credits: string;
    cost: string;
  }>(MESSAGE_COMPONENTS, [orgId, conversationId, kept.map((m) => m.key), scope.org.credit_value])) {
    const list = components.get(c.key) ?? [];
    list.push({
      component: c.component,
      quantity: c.quantity,
      credits: formatCredits(decimalUnits(c.credits, CREDIT_SCALE)),
      cost: formatUnits(decimalUnits(c.cost, COST_SCALE), COST_SCALE),
    });
    components.set(c.key, list);
  }
  const first = total.first_at!;
  const end = total.last_at!;
  return {
    object: 'conversation_usage' as const,
    id: conversationId,
    org_id: orgId,
    title: total.title,
    unit: scope.unit,
    currency: scope.currency,
    started_at: ms(first),
    ended_at: ms(end),
    duration_seconds: Math.round((Date.parse(ms(end)) - Date.parse(ms(first))) / 1000),
    members: total.members.filter((m) => m !== null).length,
    messages: Number(
      (
        await ctx.db.read.query<{ n: string }>(
          `SELECT count(DISTINCT coalesce(message_id, id))::text AS n FROM events
            WHERE org_id = $1 AND conversation_id = $2`,
          [orgId, conversationId],
        )
      )[0]!.n,
    ),
    ...figures(total, scope.operator),
    files: files.map((f) => ({
      id: f.id,
      name: f.name,
      size_bytes: f.size_bytes === null ? null : int(f.size_bytes),
      extracted_tokens: f.extracted_tokens === null ? null : int(f.extracted_tokens),
      messages: Number(f.messages),
    })),
    data: kept.map((m) => ({
      message_id: m.key,
      started_at: ms(m.first_at),
      ended_at: ms(m.last_at),
      models: m.models,
      features: m.features,
      ...figures(m, scope.operator),
      components: (components.get(m.key) ?? []).sort(
        (a, b) => componentRank(a.component) - componentRank(b.component),
      ),
    })),
    has_more,
    next_cursor: has_more && last ? encodeCursor([last.first_at, last.key]) : null,
  };
}
export type ConversationUsage = Awaited<ReturnType<typeof getConversation>>;
