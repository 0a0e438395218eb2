import { audit, type Ctx } from '../context.ts';
import { notFound, ServiceError } from '../errors.ts';
import { requireEndpoint } from './listWebhookDeliveries.ts';
import {
  DELIVERY_COLUMNS,
  type DeliveryRow,
  type DeliveryView,
  deliveryView,
  type EndpointOwner,
  requireEndpointOwner,
} from './shape.ts';

/**
 * Sends a delivery again: it is pending and due now, with a fresh 24 hours of retries from its next
 * attempt. It keeps its place in the endpoint's order, so it goes out before the endpoint's later
 * pending messages.
 * The message id (webhook-id) stays the same, so a receiver can tell a replay from a new message.
 */
export async function replayWebhookDelivery(
  ctx: Ctx,
  owner: EndpointOwner,
  endpointId: string,
  deliveryId: string,
): Promise<DeliveryView> {
  requireEndpointOwner(ctx, owner);
  return ctx.db.transaction(async (tx) => {
    const endpoint = await requireEndpoint(tx, owner, endpointId);
    if (endpoint.deleted) {
      throw new ServiceError(409, 'endpoint_deleted', 'The webhook endpoint was deleted', 'endpoint');
    }
    if (endpoint.disabled) {
      throw new ServiceError(
        409,
        'endpoint_disabled',
        'The webhook endpoint is disabled: enable it first (PATCH {"disabled": false}), which sends its pending deliveries',
        'endpoint',
      );
    }
    const [row] = await tx.query<DeliveryRow>(
      `WITH d AS (
         UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(),
                retry_until = NULL, last_error = NULL, locked_by = NULL, locked_until = NULL
          WHERE endpoint_id = $1 AND id = $2
          RETURNING *
       )
       SELECT ${DELIVERY_COLUMNS} FROM d JOIN webhook_messages m ON m.org_id = d.org_id AND m.id = d.message_id`,
      [endpointId, deliveryId],
    );
    if (!row) throw notFound('Webhook delivery', 'delivery');
    await audit(tx, ctx, row.org_id, 'webhook_delivery.replayed', deliveryId, { endpoint_id: endpointId });
    return deliveryView(row);
  });
}
