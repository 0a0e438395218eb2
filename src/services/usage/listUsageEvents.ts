/**
 * The activity log: every call in the range, newest first, 50 a page by default, with a keyset
 * cursor on (occurred_at, seq) so a page costs the same at any depth, and every usage filter.
 * Each row names the member (a removed one as "Unknown user"), feature, provider and model, tokens
 * by kind, credits and cost; BYOK rows carry tokens and no credits. `has_more` is false on the
 * last page ("End of activity for this period").
 */
import { decimalUnits, formatCredits, formatUnits } from '../../domain/money.ts';
import { surfaceLabel } from '../../domain/usageEvent.ts';
import { COST_SCALE, PCOST_SCALE } from '../../domain/usageTotals.ts';
import type { Ctx } from '../context.ts';
import { decodeCursor, toPage } from '../pagination.ts';
import { readEventRows } from './eventRows.ts';
import { loadScope, memberView, rangeView, type UsageQuery, whereOf } from './scope.ts';

export interface EventsQuery extends UsageQuery {
  limit: number;
  cursor?: string | undefined;
}

export async function listUsageEvents(ctx: Ctx, orgId: string, query: EventsQuery, now = new Date()) {
  const scope = await loadScope(ctx, orgId, query, now);
  const after = decodeCursor(query.cursor, ['time', 'integer']);
  const params: unknown[] = [];
  const where = whereOf('events', orgId, scope.range, query, params);
  const rows = await readEventRows(
    ctx.db.read,
    where,
    params,
    after ? [String(after[0]), String(after[1])] : null,
    'newest',
    query.limit + 1,
  );
  const page = toPage(
    rows,
    query.limit,
    (r) => [r.at, r.seq],
    (r) => {
      const input = BigInt(r.input_tokens);
      const output = BigInt(r.output_tokens);
      return {
        id: r.id,
        object: 'usage_event' as const,
        occurred_at: `${r.at.slice(0, 23)}Z`,
        member: memberView(r),
        feature: r.feature,
        provider: r.provider,
        model: r.model,
        surface: r.surface || null,
        surface_label: r.surface ? surfaceLabel(r.surface) : null,
        workspace: r.workspace || null,
        workspace_group: r.workspace_group || null,
        project: r.project || null,
        api_key_id: r.api_key_id,
        conversation_id: r.conversation_id,
        error: r.error,
        tokens: {
          input: Number(input),
          output: Number(output),
          cache_read: Number(r.cache_read_tokens),
          cache_write: Number(r.cache_write_tokens),
          total: Number(input + output),
        },
        usage: r.usage,
        credits: formatCredits(BigInt(r.credits)),
        cost: formatUnits(decimalUnits(r.cost, COST_SCALE), COST_SCALE),
        currency: r.currency,
        provider_cost_usd: scope.operator
          ? formatUnits(decimalUnits(r.provider_cost_usd, PCOST_SCALE), PCOST_SCALE)
          : null,
      };
    },
  );
  return { ...page, range: rangeView(scope.range), unit: scope.unit };
}
export type UsageEventsPage = Awaited<ReturnType<typeof listUsageEvents>>;
