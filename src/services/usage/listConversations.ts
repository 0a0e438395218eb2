/**
 * The org's conversations (chats) active in the range, each with its totals: the events carrying a
 * `conversation_id` that fall in the range and match the usage filters, grouped by conversation.
 * Newest activity first (`sort=last_activity`) or most spent first (`sort=credits`: the org's
 * unit, so USD cost for BYOM and tokens for BYOK), keyset-paginated on (rank, conversation_id).
 *
 * Figures, first and last activity and the member (who started the conversation in the range) are
 * those of the matching events, so the items add up to what the other usage reports show for the
 * same range and filters. The title is the conversation's own, as its detail page shows it
 * (getConversation.ts), read for the page's conversations only (index `events_conversation`).
 *
 * No index of its own: the grouping is bounded by org and range through `events_log` (org_id,
 * occurred_at), as the activity log is (the planner may take the org prefix of
 * `events_conversation` instead when the range holds most of the org's conversation events). Its
 * cost grows with the events in the range, not with the org's history; the page's titles and
 * members are then looked up by key.
 */
import type { Ctx } from '../context.ts';
import { type CursorPart, cursorTime, decodeCursor, toPage } from '../pagination.ts';
import { LATEST_TITLE } from './getConversation.ts';
import {
  figuresView,
  JOINED_MEMBER_COLUMNS,
  type JoinedMember,
  loadScope,
  memberView,
  placeholderFor,
  rangeView,
  SUM_COLUMNS,
  type SumRow,
  totalsOf,
  type UsageQuery,
  weightSql,
  whereOf,
} from './scope.ts';

export const CONVERSATION_SORTS = ['last_activity', 'credits'] as const;
export type ConversationSort = (typeof CONVERSATION_SORTS)[number];

export interface ConversationsQuery extends UsageQuery {
  sort: ConversationSort;
  limit: number;
  cursor?: string | undefined;
}

/**
 * Each sort ranks descending, ties broken by conversation id: the column ranked on, its SQL type,
 * the rank as the cursor carries it (to the microsecond, or integer units) and that cursor part.
 */
const SORTS: Record<ConversationSort, { rank: string; type: string; key: string; part: CursorPart }> = {
  last_activity: { rank: 'last_at', type: 'timestamptz', key: cursorTime('page.last_at'), part: 'time' },
  credits: { rank: 'weight', type: 'numeric', key: 'round(page.weight)::text', part: 'digits' },
};

interface ConversationRow extends SumRow, JoinedMember {
  conversation_id: string;
  title: string | null;
  first_at: string;
  last_at: string;
  rank_key: string;
  messages: string;
  members: string;
}

export async function listConversations(
  ctx: Ctx,
  orgId: string,
  query: ConversationsQuery,
  now = new Date(),
) {
  const scope = await loadScope(ctx, orgId, query, now);
  const sort = SORTS[query.sort];
  const after = decodeCursor(query.cursor, [sort.part, 'text']);
  const params: unknown[] = [];
  const where = whereOf('events', orgId, scope.range, query, params);
  const p = placeholderFor(params);
  const org = p(orgId);
  const afterRank = `${p(after?.[0] ?? null)}::${sort.type}`;
  const afterId = `${p(after?.[1] ?? null)}::text`;
  const rows = await ctx.db.read.query<ConversationRow>(
    // `1 AS calls` lets the shared SUM_COLUMNS count events as the rollups count calls.
    `WITH c AS (
       SELECT conversation_id, ${SUM_COLUMNS}, sum(${weightSql(scope.unit)}) AS weight,
              min(occurred_at) AS first_at, max(occurred_at) AS last_at,
              -- An event without a message_id is a message of its own, as on the detail page.
              count(DISTINCT coalesce(message_id, id))::text AS messages,
              count(DISTINCT member_id)::text AS members,
              (array_agg(member_id ORDER BY occurred_at, seq))[1] AS member_id
         FROM (SELECT e.*, 1::bigint AS calls FROM events e WHERE ${where} AND e.conversation_id IS NOT NULL) AS e
        GROUP BY conversation_id
     ), page AS (
       SELECT * FROM c
        WHERE ${afterRank} IS NULL OR (${sort.rank}, conversation_id) < (${afterRank}, ${afterId})
        ORDER BY ${sort.rank} DESC, conversation_id DESC
        LIMIT ${p(query.limit + 1)}
     )
     SELECT page.conversation_id, page.calls, page.credits, page.cost, page.provider_cost_usd,
            page.input_tokens, page.output_tokens, page.cache_read_tokens, page.cache_write_tokens,
            page.messages, page.members, page.member_id, ${JOINED_MEMBER_COLUMNS},
            ${cursorTime('page.first_at')} AS first_at, ${cursorTime('page.last_at')} AS last_at,
            ${sort.key} AS rank_key, t.title
       FROM page
       LEFT JOIN members m ON m.org_id = ${org} AND m.id = page.member_id
       -- Unqualified columns here are the inner events', as LATEST_TITLE expects.
       CROSS JOIN LATERAL (
         SELECT ${LATEST_TITLE} AS title FROM events
          WHERE org_id = ${org} AND conversation_id = page.conversation_id
       ) AS t
      ORDER BY page.${sort.rank} DESC, page.conversation_id DESC`,
    params,
  );
  const page = toPage(
    rows,
    query.limit,
    (r) => [r.rank_key, r.conversation_id],
    (r) => ({
      object: 'usage_conversation' as const,
      conversation_id: r.conversation_id,
      title: r.title,
      member: memberView(r),
      members: Number(r.members),
      first_activity_at: `${r.first_at.slice(0, 23)}Z`,
      last_activity_at: `${r.last_at.slice(0, 23)}Z`,
      messages: Number(r.messages),
      ...figuresView(totalsOf(r), scope.operator),
      currency: scope.currency,
    }),
  );
  return {
    object: 'usage_conversations' as const,
    org_id: orgId,
    range: rangeView(scope.range),
    sort: query.sort,
    unit: scope.unit,
    currency: scope.currency,
    ...page,
  };
}
export type UsageConversations = Awaited<ReturnType<typeof listConversations>>;
