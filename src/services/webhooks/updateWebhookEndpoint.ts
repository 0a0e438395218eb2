import { audit, type Ctx } from '../context.ts';
import { notFound } from '../errors.ts';
import type { CreateWebhookEndpointInput } from './createWebhookEndpoint.ts';
import {
  ENDPOINT_COLUMNS,
  type EndpointOwner,
  type EndpointRow,
  type EndpointView,
  endpointView,
  holdPendingDeliveries,
  requireEndpointOwner,
  requirePublicUrl,
} from './shape.ts';

export interface UpdateWebhookEndpointInput extends Partial<CreateWebhookEndpointInput> {
  disabled?: boolean;
}

/**
 * Changes an endpoint; absent fields stay as they are. Disabling it keeps its pending deliveries,
 * and every new message still gets one, but nothing is sent until it is enabled again. Enabling it
 * makes them due now, to go out in order, each with its backoff and 24 hours of retries starting
 * again (as a replay does). Enabling it or changing its url starts its failing period afresh.
 */
export async function updateWebhookEndpoint(
  ctx: Ctx,
  owner: EndpointOwner,
  endpointId: string,
  input: UpdateWebhookEndpointInput,
): Promise<EndpointView> {
  requireEndpointOwner(ctx, owner);
  if (input.url !== undefined) await requirePublicUrl(ctx, input.url);
  return ctx.db.transaction(async (tx) => {
    // FOR UPDATE, which a plain UPDATE does not take: it waits for messages being written to the
    // endpoint (emitWebhookEvent's FAN_OUT), so enabling it sees every delivery they gave it.
    const [current] = await tx.query<EndpointRow>(
      `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints
        WHERE id = $1 AND org_id IS NOT DISTINCT FROM $2 AND deleted_at IS NULL FOR UPDATE`,
      [endpointId, owner],
    );
    if (!current) throw notFound('Webhook endpoint', 'endpoint');
    const disabled = input.disabled ?? current.disabled;
    const enabling = current.disabled && !disabled;
    const freshStart = enabling || (input.url !== undefined && input.url !== current.url);
    const [row] = await tx.query<EndpointRow>(
      `UPDATE webhook_endpoints
          SET url = $2, description = $3, event_types = $4, disabled = $5,
              disabled_at = CASE WHEN $5 THEN COALESCE(disabled_at, now()) END,
              disabled_reason = CASE WHEN $5 THEN COALESCE(disabled_reason, 'manual') END,
              failing_since = CASE WHEN $6 THEN NULL ELSE failing_since END
        WHERE id = $1 RETURNING ${ENDPOINT_COLUMNS}`,
      [
        endpointId,
        input.url ?? current.url,
        input.description !== undefined ? input.description : current.description,
        input.event_types ? [...new Set(input.event_types)].sort() : current.event_types,
        disabled,
        freshStart,
      ],
    );
    if (disabled && !current.disabled) await holdPendingDeliveries(tx, endpointId);
    if (enabling) {
      await tx.query(
        `UPDATE webhook_deliveries SET next_attempt_at = now(), retry_until = NULL, attempts = 0
          WHERE endpoint_id = $1 AND status = 'pending'`,
        [endpointId],
      );
    }
    await audit(tx, ctx, owner ?? 'operator', 'webhook_endpoint.updated', endpointId, { ...input });
    return endpointView(row!);
  });
}
