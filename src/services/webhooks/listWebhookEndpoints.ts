import type { Ctx } from '../context.ts';
import { decodeCursor, type Page, toPage } from '../pagination.ts';
import {
  ENDPOINT_COLUMNS,
  type EndpointOwner,
  type EndpointRow,
  type EndpointView,
  endpointView,
  requireEndpointOwner,
} from './shape.ts';

/** An org's endpoints (or the operator-wide ones), without their secrets. */
export async function listWebhookEndpoints(
  ctx: Ctx,
  owner: EndpointOwner,
  query: { limit: number; cursor?: string },
): Promise<Page<EndpointView>> {
  requireEndpointOwner(ctx, owner);
  const after = decodeCursor(query.cursor, ['text']);
  const rows = await ctx.db.query<EndpointRow>(
    `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints
      WHERE org_id IS NOT DISTINCT FROM $1 AND deleted_at IS NULL AND ($2::text IS NULL OR id > $2)
      ORDER BY id LIMIT $3`,
    [owner, after?.[0] ?? null, query.limit + 1],
  );
  return toPage(rows, query.limit, (r) => [r.id], endpointView);
}
