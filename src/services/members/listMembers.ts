import type { Ctx } from '../context.ts';
import { scopeOrg } from '../context.ts';
import { decodeCursor, type Page, toPage } from '../pagination.ts';
import { MEMBER_COLUMNS, type MemberRow, type MemberView, memberView } from './shape.ts';

export async function listMembers(
  ctx: Ctx,
  orgId: string,
  query: { limit: number; cursor?: string; status?: 'active' | 'removed' },
): Promise<Page<MemberView>> {
  scopeOrg(ctx, orgId, 'members:read');
  const after = decodeCursor(query.cursor, ['text']);
  const rows = await ctx.db.query<MemberRow>(
    `SELECT ${MEMBER_COLUMNS} FROM members
      WHERE org_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR id > $3)
      ORDER BY id LIMIT $4`,
    [orgId, query.status ?? null, after?.[0] ?? null, query.limit + 1],
  );
  return toPage(rows, query.limit, (r) => [r.id], memberView);
}
