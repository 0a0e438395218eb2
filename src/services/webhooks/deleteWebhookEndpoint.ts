import { audit, type Ctx } from '../context.ts';
import { notFound } from '../errors.ts';
import {
  ENDPOINT_COLUMNS,
  type EndpointOwner,
  type EndpointRow,
  type EndpointView,
  endpointView,
  requireEndpointOwner,
} from './shape.ts';

/** Deletes an endpoint; what was still waiting for it is marked failed, so nothing is sent after. */
export async function deleteWebhookEndpoint(
  ctx: Ctx,
  owner: EndpointOwner,
  endpointId: string,
): Promise<EndpointView> {
  requireEndpointOwner(ctx, owner);
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx.query<EndpointRow>(
      `UPDATE webhook_endpoints SET deleted_at = now()
        WHERE id = $1 AND org_id IS NOT DISTINCT FROM $2 AND deleted_at IS NULL
        RETURNING ${ENDPOINT_COLUMNS}`,
      [endpointId, owner],
    );
    if (!row) throw notFound('Webhook endpoint', 'endpoint');
    await tx.query(
      `UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint deleted', locked_by = NULL, locked_until = NULL
        WHERE endpoint_id = $1 AND status = 'pending'`,
      [endpointId],
    );
    await audit(tx, ctx, owner ?? 'operator', 'webhook_endpoint.deleted', endpointId);
    return endpointView(row);
  });
}
