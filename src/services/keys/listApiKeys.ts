import { type Ctx, scopeOrg } from '../context.ts';
import { decodeCursor, type Page, toPage } from '../pagination.ts';
import { API_KEY_COLUMNS, type ApiKeyRow, type ApiKeyView, apiKeyView } from './shape.ts';

export async function listApiKeys(
  ctx: Ctx,
  orgId: string,
  query: { limit: number; cursor?: string },
): Promise<Page<ApiKeyView>> {
  scopeOrg(ctx, orgId, 'keys:write');
  const after = decodeCursor(query.cursor, ['text']);
  const rows = await ctx.db.query<ApiKeyRow>(
    `SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE org_id = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3`,
    [orgId, after?.[0] ?? null, query.limit + 1],
  );
  return toPage(rows, query.limit, (r) => [r.id], apiKeyView);
}
