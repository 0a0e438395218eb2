import { type Ctx, scopeOrg } from '../context.ts';
import { loadOrg } from '../orgs/shape.ts';
import { decodeCursor, type Page, toPage } from '../pagination.ts';
import type { AlertType } from '../webhooks/eventTypes.ts';
import { ALERT_COLUMNS, type AlertRow, type AlertView, alertView } from './shape.ts';

/** The org's alerts, newest first (the dashboard's list). */
export async function listAlerts(
  ctx: Ctx,
  orgId: string,
  query: { limit: number; cursor?: string; type?: AlertType },
): Promise<Page<AlertView>> {
  scopeOrg(ctx, orgId, 'usage:read');
  await loadOrg(ctx.db, orgId);
  const before = decodeCursor(query.cursor, ['integer']);
  const rows = await ctx.db.query<AlertRow>(
    `SELECT ${ALERT_COLUMNS} FROM alerts
      WHERE org_id = $1 AND ($2::bigint IS NULL OR seq < $2) AND ($3::text IS NULL OR type = $3)
      ORDER BY seq DESC LIMIT $4`,
    [orgId, before?.[0] ?? null, query.type ?? null, query.limit + 1],
  );
  return toPage(rows, query.limit, (r) => [r.seq], alertView);
}
