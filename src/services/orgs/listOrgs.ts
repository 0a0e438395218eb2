import type { Ctx } from '../context.ts';
import { decodeCursor, type Page, toPage } from '../pagination.ts';
import { ORG_COLUMNS, type OrgRow, type OrgView, orgView } from './shape.ts';

/** The operator sees every org; an org key sees its own org only. */
export async function listOrgs(ctx: Ctx, query: { limit: number; cursor?: string }): Promise<Page<OrgView>> {
  const after = decodeCursor(query.cursor, 1);
  const own = ctx.principal.kind === 'operator' ? null : ctx.principal.orgId;
  const rows = await ctx.db.query<OrgRow>(
    `SELECT ${ORG_COLUMNS} FROM orgs
      WHERE ($1::text IS NULL OR id = $1) AND ($2::text IS NULL OR id > $2)
      ORDER BY id LIMIT $3`,
    [own, after?.[0] ?? null, query.limit + 1],
  );
  return toPage(rows, query.limit, (r) => [r.id], orgView);
}
