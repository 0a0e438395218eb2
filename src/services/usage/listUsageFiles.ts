/**
 * Uploaded files and what they cost: every file the org's calls used in the range (events name the
 * files a call used in `metadata.files`: [{id, name, size_bytes, extracted_tokens, processed}]),
 * with its extracted tokens, its processing cost and how often it was reused (conversations and
 * calls that used it). Most recently used first, keyset-paginated.
 *
 * Processing cost: the cost of the calls that processed the file (extracted its text: the entry
 * says `"processed": true`). A call that processed several files is shared among them in
 * proportion to their extracted tokens (equally when none says), by largest remainder, so the
 * files' shares add up to the call exactly. Read through the partial index of events with files
 * (migration 0012).
 */
import { allocate, decimalUnits, formatCredits, formatUnits, Ratio } from '../../domain/money.ts';
import { COST_SCALE, PCOST_SCALE } from '../../domain/usageTotals.ts';
import type { Ctx } from '../context.ts';
import { cursorTime, decodeCursor, toPage } from '../pagination.ts';
import { loadScope, rangeView, type UsageQuery, whereOf } from './scope.ts';

export interface FilesQuery extends UsageQuery {
  limit: number;
  cursor?: string | undefined;
}

/** The file entries of an event's metadata that name an id. */
const FILE_ITEMS = `CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(e.metadata -> 'files') = 'array' THEN e.metadata -> 'files' ELSE '[]'::jsonb END) AS x (item)`;
const number = (path: string) =>
  `CASE WHEN jsonb_typeof(x.item -> '${path}') = 'number' THEN (x.item ->> '${path}')::numeric END`;

export async function listUsageFiles(ctx: Ctx, orgId: string, query: FilesQuery, now = new Date()) {
  const scope = await loadScope(ctx, orgId, query, now);
  const after = decodeCursor(query.cursor, ['time', 'text']);
  const params: unknown[] = [];
  // `metadata ? 'files'` matches the partial index events_with_files.
  const where = `${whereOf('events', orgId, scope.range, query, params)} AND e.metadata ? 'files'
    AND jsonb_typeof(x.item -> 'id') = 'string'`;
  const n = params.length;
  const files = await ctx.db.read.query<{
    id: string;
    name: string | null;
    size_bytes: string | null;
    extracted_tokens: string | null;
    conversations: string;
    calls: string;
    first_at: string;
    last_at: string;
  }>(
    `WITH g AS (
       SELECT x.item ->> 'id' AS id, max(x.item ->> 'name') AS name, max(${number('size_bytes')}) AS size_bytes,
              max(${number('extracted_tokens')}) AS extracted_tokens,
              count(DISTINCT e.conversation_id) AS conversations, count(DISTINCT e.seq) AS calls,
              min(e.occurred_at) AS first_used, max(e.occurred_at) AS last_used
         FROM events e ${FILE_ITEMS}
        WHERE ${where}
        GROUP BY 1
     )
     SELECT id, name, trunc(size_bytes)::text AS size_bytes, trunc(extracted_tokens)::text AS extracted_tokens,
            conversations::text AS conversations, calls::text AS calls,
            ${cursorTime('first_used')} AS first_at,
            ${cursorTime('last_used')} AS last_at
       FROM g
      WHERE $${n + 1}::timestamptz IS NULL OR (last_used, id) < ($${n + 1}::timestamptz, $${n + 2}::text)
      ORDER BY last_used DESC, id DESC
      LIMIT $${n + 3}`,
    [...params, after?.[0] ?? null, after?.[1] ?? null, query.limit + 1],
  );
  const page = files.slice(0, query.limit);
  const processing = await processingOf(
    ctx,
    where,
    params,
    page.map((f) => f.id),
  );
  const view = toPage(
    files,
    query.limit,
    (f) => [f.last_at, f.id],
    (f) => {
      const p = processing.get(f.id) ?? { calls: 0, credits: 0n, cost: 0n, providerCost: 0n };
      return {
        id: f.id,
        object: 'usage_file' as const,
        name: f.name,
        size_bytes: f.size_bytes === null ? null : Number(f.size_bytes),
        extracted_tokens: f.extracted_tokens === null ? null : Number(f.extracted_tokens),
        processing: {
          calls: p.calls,
          credits: formatCredits(p.credits),
          cost: formatUnits(p.cost, COST_SCALE),
          provider_cost_usd: scope.operator ? formatUnits(p.providerCost, PCOST_SCALE) : null,
        },
        conversations: Number(f.conversations),
        calls: Number(f.calls),
        first_used_at: `${f.first_at.slice(0, 23)}Z`,
        last_used_at: `${f.last_at.slice(0, 23)}Z`,
      };
    },
  );
  return {
    object: 'usage_files' as const,
    org_id: orgId,
    range: rangeView(scope.range),
    unit: scope.unit,
    currency: scope.currency,
    ...view,
  };
}
export type UsageFiles = Awaited<ReturnType<typeof listUsageFiles>>;

interface Processing {
  calls: number;
  credits: bigint;
  cost: bigint;
  providerCost: bigint;
}

/** The processing cost of each of `ids`: its share of every call of the range that processed it. */
async function processingOf(
  ctx: Ctx,
  where: string,
  params: unknown[],
  ids: string[],
): Promise<Map<string, Processing>> {
  const out = new Map<string, Processing>();
  if (ids.length === 0) return out;
  const calls = await ctx.db.read.query<{
    credits: string;
    cost: string;
    provider_cost_usd: string;
    files: { id: string; tokens: number | null }[];
  }>(
    `SELECT e.credits::text AS credits, e.cost::text AS cost, e.provider_cost_usd::text AS provider_cost_usd,
            jsonb_agg(jsonb_build_object('id', x.item ->> 'id', 'tokens', ${number('extracted_tokens')})) AS files
       FROM events e ${FILE_ITEMS}
      WHERE ${where} AND x.item -> 'processed' = 'true'::jsonb
      GROUP BY e.seq, e.credits, e.cost, e.provider_cost_usd
     HAVING bool_or(x.item ->> 'id' = ANY($${params.length + 1}::text[]))`,
    [...params, ids],
  );
  const wanted = new Set(ids);
  for (const call of calls) {
    // One share per file, weighted by its extracted tokens (all equal when none says).
    const weights = new Map<string, bigint>();
    for (const f of call.files) {
      const tokens = f.tokens !== null && f.tokens > 0 ? BigInt(Math.trunc(f.tokens)) : 0n;
      weights.set(f.id, (weights.get(f.id) ?? 0n) + tokens);
    }
    const named = [...weights.keys()];
    const total = [...weights.values()].reduce((a, w) => a + w, 0n);
    const shares = named.map((id) => Ratio.int(total > 0n ? weights.get(id)! : 1n));
    const credits = allocate(BigInt(call.credits), shares);
    const cost = allocate(decimalUnits(call.cost, COST_SCALE), shares);
    const providerCost = allocate(decimalUnits(call.provider_cost_usd, PCOST_SCALE), shares);
    named.forEach((id, i) => {
      if (!wanted.has(id)) return;
      const p = out.get(id) ?? { calls: 0, credits: 0n, cost: 0n, providerCost: 0n };
      p.calls += 1;
      p.credits += credits[i]!;
      p.cost += cost[i]!;
      p.providerCost += providerCost[i]!;
      out.set(id, p);
    });
  }
  return out;
}
