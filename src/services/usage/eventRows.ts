/**
 * Raw events with their member, read on the (occurred_at, seq) keyset: the one query behind the
 * activity log (newest first, a page) and the export (oldest first, batch after batch).
 */

import type { Usage } from '../../domain/pricing.ts';
import type { Queryable } from '../../store/db.ts';
import { cursorTime } from '../pagination.ts';
import { errorCodeSql, failedSql } from './failures.ts';
import { JOINED_MEMBER_COLUMNS, type JoinedMember } from './scope.ts';

export interface EventRow extends JoinedMember {
  id: string;
  /** occurred_at in UTC with microseconds: the cursor's first half. */
  at: string;
  seq: string;
  api_key_id: string | null;
  feature: string;
  provider: string;
  model: string;
  surface: string;
  workspace: string;
  workspace_group: string;
  project: string;
  conversation_id: string | null;
  /** The error of a call that failed (its metadata.error), else null. */
  error: string | null;
  input_tokens: string;
  output_tokens: string;
  cache_read_tokens: string;
  cache_write_tokens: string;
  /** Every quantity the event recorded (normalizedUsage: zero counts left out). */
  usage: Usage;
  credits: string;
  cost: string;
  currency: string;
  provider_cost_usd: string;
}

/**
 * Up to `limit` events matching `where` (built by whereOf with `params`, org_id first) after the
 * cursor `after`, in the given direction.
 */
export function readEventRows(
  db: Queryable,
  where: string,
  params: unknown[],
  after: [string, string] | null,
  order: 'newest' | 'oldest',
  limit: number,
): Promise<EventRow[]> {
  const n = params.length;
  const [cmp, dir] = order === 'newest' ? ['<', 'DESC'] : ['>', 'ASC'];
  return db.query<EventRow>(
    `SELECT e.id, ${cursorTime('e.occurred_at')} AS at,
            e.seq::text AS seq, e.member_id, ${JOINED_MEMBER_COLUMNS}, e.api_key_id, e.feature, e.provider,
            e.model, e.surface, e.workspace, e.workspace_group, e.project, e.conversation_id,
            CASE WHEN ${failedSql('e.metadata')} THEN ${errorCodeSql('e.metadata')} END AS error,
            e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_write_tokens, e.usage, e.credits,
            e.cost::text AS cost, e.currency, e.provider_cost_usd::text AS provider_cost_usd
       FROM events e
       LEFT JOIN members m ON m.org_id = e.org_id AND m.id = e.member_id
      WHERE ${where}
        AND ($${n + 1}::timestamptz IS NULL OR (e.occurred_at, e.seq) ${cmp} ($${n + 1}::timestamptz, $${n + 2}::bigint))
      ORDER BY e.occurred_at ${dir}, e.seq ${dir}
      LIMIT $${n + 3}`,
    [...params, after?.[0] ?? null, after?.[1] ?? null, limit],
  );
}
