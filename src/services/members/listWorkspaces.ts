import { type Ctx, scopeOrg } from '../context.ts';
import { decodeCursor, type Page, toPage } from '../pagination.ts';
import { type WorkspaceRow, type WorkspaceView, workspaceView } from './workspaceShape.ts';

export async function listWorkspaces(
  ctx: Ctx,
  orgId: string,
  query: { limit: number; cursor?: string },
): Promise<Page<WorkspaceView>> {
  scopeOrg(ctx, orgId, 'members:read');
  const after = decodeCursor(query.cursor, ['text']);
  const rows = await ctx.db.query<WorkspaceRow>(
    `SELECT org_id, id, external_id, name, workspace_group, created_at FROM workspaces
      WHERE org_id = $1 AND ($2::text IS NULL OR external_id > $2) ORDER BY external_id LIMIT $3`,
    [orgId, after?.[0] ?? null, query.limit + 1],
  );
  return toPage(rows, query.limit, (r) => [r.external_id], workspaceView);
}
