import { newId } from '../../domain/ids.ts';
import { audit, type Ctx } from '../context.ts';
import { loadOrg } from '../orgs/shape.ts';
import type { WebhookEventType } from './eventTypes.ts';
import {
  ENDPOINT_COLUMNS,
  type EndpointOwner,
  type EndpointRow,
  type EndpointView,
  endpointView,
  newWebhookSecret,
  requireEndpointOwner,
  requirePublicUrl,
} from './shape.ts';

export interface CreateWebhookEndpointInput {
  url: string;
  description?: string | null;
  /** Empty or absent: every event type. */
  event_types?: WebhookEventType[];
}

/**
 * Registers an endpoint for an org's messages (or, owner null, every org's: operator only).
 * The signing secret is in this answer only.
 */
export async function createWebhookEndpoint(
  ctx: Ctx,
  owner: EndpointOwner,
  input: CreateWebhookEndpointInput,
): Promise<EndpointView & { secret: string }> {
  requireEndpointOwner(ctx, owner);
  await requirePublicUrl(ctx, input.url);
  const secret = newWebhookSecret();
  return ctx.db.transaction(async (tx) => {
    if (owner !== null) await loadOrg(tx, owner);
    const [row] = await tx.query<EndpointRow>(
      `INSERT INTO webhook_endpoints (id, org_id, url, description, secret, event_types)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${ENDPOINT_COLUMNS}`,
      [
        newId('we'),
        owner,
        input.url,
        input.description ?? null,
        secret,
        [...new Set(input.event_types ?? [])].sort(),
      ],
    );
    // The operator's own endpoints belong to no org; their audit rows go under 'operator', as prices do.
    await audit(tx, ctx, owner ?? 'operator', 'webhook_endpoint.created', row!.id, {
      url: input.url,
      event_types: row!.event_types,
    });
    return { ...endpointView(row!), secret };
  });
}
