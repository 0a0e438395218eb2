import type { Queryable } from '../../store/db.ts';
import type { Ctx } from '../context.ts';
import { notFound } from '../errors.ts';
import { decodeCursor, type Page, toPage } from '../pagination.ts';
import {
  DELIVERY_COLUMNS,
  type DeliveryRow,
  type DeliveryView,
  deliveryView,
  type EndpointOwner,
  requireEndpointOwner,
} from './shape.ts';

/** The owner's endpoint, or 404; deleted endpoints keep their delivery log. */
export async function requireEndpoint(
  q: Queryable,
  owner: EndpointOwner,
  endpointId: string,
): Promise<{ deleted: boolean; disabled: boolean }> {
  const [found] = await q.query<{ deleted: boolean; disabled: boolean }>(
    `SELECT deleted_at IS NOT NULL AS deleted, disabled FROM webhook_endpoints
      WHERE id = $1 AND org_id IS NOT DISTINCT FROM $2`,
    [endpointId, owner],
  );
  if (!found) throw notFound('Webhook endpoint', 'endpoint');
  return found;
}

/** The delivery log of an endpoint, newest first: status, attempts, last answer, the payload. */
export async function listWebhookDeliveries(
  ctx: Ctx,
  owner: EndpointOwner,
  endpointId: string,
  query: { limit: number; cursor?: string; status?: DeliveryRow['status'] },
): Promise<Page<DeliveryView>> {
  requireEndpointOwner(ctx, owner);
  await requireEndpoint(ctx.db, owner, endpointId);
  const before = decodeCursor(query.cursor, ['integer']);
  const rows = await ctx.db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries d
       JOIN webhook_messages m ON m.org_id = d.org_id AND m.id = d.message_id
      WHERE d.endpoint_id = $1 AND ($2::bigint IS NULL OR d.seq < $2) AND ($3::text IS NULL OR d.status = $3)
      ORDER BY d.seq DESC LIMIT $4`,
    [endpointId, before?.[0] ?? null, query.status ?? null, query.limit + 1],
  );
  return toPage(rows, query.limit, (r) => [r.seq], deliveryView);
}
