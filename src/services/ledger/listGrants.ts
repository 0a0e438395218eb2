import { type Ctx, scopeOrg } from '../context.ts';
import { cursorTime, decodeCursor, type Page, toPage } from '../pagination.ts';
import { GRANT_COLUMNS, type GrantRecord, type GrantView, grantView } from './shape.ts';

export async function listGrants(
  ctx: Ctx,
  orgId: string,
  query: { limit: number; cursor?: string; status?: 'active' | 'expired' | 'voided' },
): Promise<Page<GrantView>> {
  scopeOrg(ctx, orgId, 'usage:read');
  const after = decodeCursor(query.cursor, ['time', 'text']);
  const rows = await ctx.db.query<GrantRecord & { cursor_at: string }>(
    `SELECT ${GRANT_COLUMNS}, ${cursorTime('created_at')} AS cursor_at FROM grants
      WHERE org_id = $1 AND ($2::text IS NULL OR status = $2)
        AND ($3::timestamptz IS NULL OR (created_at, id) < ($3::timestamptz, $4::text))
      ORDER BY created_at DESC, id DESC LIMIT $5`,
    [orgId, query.status ?? null, after?.[0] ?? null, after?.[1] ?? null, query.limit + 1],
  );
  return toPage(rows, query.limit, (r) => [r.cursor_at, r.id], grantView);
}
