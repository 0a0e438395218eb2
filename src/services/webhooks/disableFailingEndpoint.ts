import type { Queryable } from '../../store/db.ts';
import { recordAlerts } from '../alerts/recordAlerts.ts';
import { writeAudit } from '../context.ts';
import { ENDPOINT_COLUMNS, type EndpointRow, holdPendingDeliveries } from './shape.ts';

/** Who the audit log names for what the delivery worker does. */
const ACTOR = 'webhook_delivery';

/**
 * Disables an endpoint whose every attempt has failed since `failing_since`, in the delivery
 * worker's transaction of the failure that crossed TALLY_WEBHOOK_DISABLE_AFTER_DAYS: its pending
 * deliveries wait for it to be enabled, and the org gets a `webhook_endpoint.disabled` alert (sent
 * to its webhooks too). Only the first caller disables it; later ones find it disabled and do nothing.
 */
export async function disableFailingEndpoint(
  tx: Queryable,
  endpointId: string,
  lastError: string,
): Promise<void> {
  const [endpoint] = await tx.query<EndpointRow>(
    `UPDATE webhook_endpoints SET disabled = true, disabled_at = now(), disabled_reason = 'failing'
      WHERE id = $1 AND NOT disabled AND deleted_at IS NULL
      RETURNING ${ENDPOINT_COLUMNS}`,
    [endpointId],
  );
  if (!endpoint) return;
  await holdPendingDeliveries(tx, endpointId);
  const details = {
    endpoint_id: endpoint.id,
    url: endpoint.url,
    failing_since: endpoint.failing_since!.toISOString(),
    last_error: lastError,
  };
  // The operator's own endpoints belong to no org: their audit rows go under 'operator', and no org is alerted.
  await writeAudit(tx, {
    orgId: endpoint.org_id ?? 'operator',
    actor: ACTOR,
    action: 'webhook_endpoint.disabled',
    target: endpoint.id,
    data: { reason: 'failing', ...details },
  });
  if (endpoint.org_id === null) return;
  await recordAlerts(
    tx,
    endpoint.org_id,
    [
      {
        type: 'webhook_endpoint.disabled',
        scope: `webhook_endpoint:${endpoint.id}`,
        periodStart: endpoint.failing_since!,
        thresholdPercent: 0,
        details,
      },
    ],
    endpoint.disabled_at!,
  );
}
