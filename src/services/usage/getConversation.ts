/**
 * One conversation (a chat): its totals (calls, input and output tokens, credits, cost, first and
 * last call, duration), and per message (the events sharing a `message_id`; an event without one
 * is a message of its own) the input and output tokens with the input split into the message
 * itself, context and files when the event says so in `metadata.input_tokens` ({message, context,
 * files}), and the files uploaded (`metadata.files`: [{id, name, size_bytes, extracted_tokens}])
 * with their extracted tokens and how many messages of the conversation used each.
 *
 * Every figure is summed from raw events (index `events_conversation`), so messages add up to the
 * totals exactly. Messages are keyset-paginated, oldest first.
 */
import { decimalUnits, formatCredits, formatUnits } from '../../domain/money.ts';
import type { Ctx } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { cursorTime, decodeCursor, encodeCursor } from '../pagination.ts';
import { COST_SCALE, loadScope, PCOST_SCALE } from './scope.ts';

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
}

const SUMS = `count(*)::text AS calls, sum(credits)::text AS credits, sum(cost)::text AS cost,
  sum(provider_cost_usd)::text AS provider_cost_usd, sum(input_tokens)::text AS input_tokens,
  sum(output_tokens)::text AS output_tokens, sum(cache_read_tokens)::text AS cache_read_tokens,
  sum(cache_write_tokens)::text AS cache_write_tokens,
  sum(CASE WHEN jsonb_typeof(metadata->'input_tokens'->'message') = 'number'
           THEN (metadata->'input_tokens'->>'message')::numeric END)::text AS in_message,
  sum(CASE WHEN jsonb_typeof(metadata->'input_tokens'->'context') = 'number'
           THEN (metadata->'input_tokens'->>'context')::numeric END)::text AS in_context,
  sum(CASE WHEN jsonb_typeof(metadata->'input_tokens'->'files') = 'number'
           THEN (metadata->'input_tokens'->>'files')::numeric END)::text AS in_files`;

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
    credits: formatCredits(BigInt(r.credits)),
    cost: formatUnits(decimalUnits(r.cost, COST_SCALE), COST_SCALE),
    provider_cost_usd: operator
      ? formatUnits(decimalUnits(r.provider_cost_usd, PCOST_SCALE), PCOST_SCALE)
      : null,
  };
}

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
    Sums & { first_at: string | null; last_at: string | null; members: string[] }
  >(
    `SELECT ${SUMS}, ${AT} AS first_at, ${LAST} AS last_at, array_agg(DISTINCT member_id) AS members
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
            max(CASE WHEN jsonb_typeof(f->'size_bytes') = 'number' THEN (f->>'size_bytes')::numeric END)::text AS size_bytes,
            max(CASE WHEN jsonb_typeof(f->'extracted_tokens') = 'number' THEN (f->>'extracted_tokens')::numeric END)::text
              AS extracted_tokens,
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
  const first = total.first_at!;
  const end = total.last_at!;
  return {
    object: 'conversation_usage' as const,
    id: conversationId,
    org_id: orgId,
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
    })),
    has_more,
    next_cursor: has_more && last ? encodeCursor([last.first_at, last.key]) : null,
  };
}
export type ConversationUsage = Awaited<ReturnType<typeof getConversation>>;
