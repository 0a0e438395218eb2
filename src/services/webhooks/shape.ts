/** Webhook endpoints and deliveries as stored and as the API shows them (never the secret). */
import { randomBytes } from 'node:crypto';
import type { Queryable } from '../../store/db.ts';
import type { Ctx } from '../context.ts';
import { requireOperator, scopeOrg } from '../context.ts';
import { invalid } from '../errors.ts';
import type { WebhookEventType } from './eventTypes.ts';
import { refusedTarget } from './webhookTargets.ts';

/** Standard Webhooks secret: `whsec_` and 32 random bytes in base64 (the spec allows 24 to 64). */
export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;

/** Who owns an endpoint: an org, or the operator (null: every org's messages). */
export type EndpointOwner = string | null;

/** Checks the caller may manage the owner's endpoints; another org is answered as missing (404). */
export function requireEndpointOwner(ctx: Ctx, owner: EndpointOwner): void {
  if (owner === null) requireOperator(ctx);
  else scopeOrg(ctx, owner, 'webhooks:write');
}

/**
 * Refuses a URL (422 naming `url`) unless every address its host resolves to now is public
 * (webhookTargets.ts); each delivery checks again, as DNS changes. TALLY_WEBHOOK_ALLOW_PRIVATE=1
 * (development) takes any URL, unresolved.
 */
export async function requirePublicUrl(ctx: Ctx, url: string): Promise<void> {
  const refused = ctx.config.TALLY_WEBHOOK_ALLOW_PRIVATE === '1' ? null : await refusedTarget(url);
  if (refused) throw invalid('url', `url must reach a public address: ${refused}`);
}

/** 'failing': disabled by the delivery worker after failing for TALLY_WEBHOOK_DISABLE_AFTER_DAYS; 'manual': by its owner. */
export type DisabledReason = 'failing' | 'manual';

export interface EndpointRow {
  id: string;
  org_id: string | null;
  url: string;
  description: string | null;
  event_types: WebhookEventType[];
  disabled: boolean;
  disabled_at: Date | null;
  disabled_reason: DisabledReason | null;
  failing_since: Date | null;
  created_at: Date;
}

export const ENDPOINT_COLUMNS =
  'id, org_id, url, description, event_types, disabled, disabled_at, disabled_reason, failing_since, created_at';

export const endpointView = (e: EndpointRow) => ({
  id: e.id,
  object: 'webhook_endpoint' as const,
  org_id: e.org_id,
  url: e.url,
  description: e.description,
  event_types: e.event_types,
  disabled: e.disabled,
  disabled_at: e.disabled_at?.toISOString() ?? null,
  disabled_reason: e.disabled_reason,
  failing_since: e.failing_since?.toISOString() ?? null,
  created_at: e.created_at.toISOString(),
});
export type EndpointView = ReturnType<typeof endpointView>;

export interface DeliveryRow {
  org_id: string;
  id: string;
  seq: string;
  endpoint_id: string;
  message_id: string;
  type: WebhookEventType;
  payload: Record<string, unknown>;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: number;
  /** Null while it waits for its disabled endpoint. */
  next_attempt_at: Date | null;
  last_attempt_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Date;
}

/**
 * A pending delivery of a disabled endpoint waits with this next_attempt_at: the worker's scan of due
 * deliveries (next_attempt_at <= now(), in index order) then never walks through the backlog of
 * endpoints that are off.
 */
export const UNSCHEDULED = `'infinity'::timestamptz`;

/** Makes an endpoint's pending deliveries wait for it to be enabled, in the transaction that disables it. */
export async function holdPendingDeliveries(tx: Queryable, endpointId: string): Promise<void> {
  await tx.query(
    `UPDATE webhook_deliveries SET next_attempt_at = ${UNSCHEDULED} WHERE endpoint_id = $1 AND status = 'pending'`,
    [endpointId],
  );
}

/** Columns of a delivery `d` joined with its message `m`. */
export const DELIVERY_COLUMNS = `d.org_id, d.id, d.seq, d.endpoint_id, d.message_id, m.type, m.payload, d.status,
  d.attempts, NULLIF(d.next_attempt_at, ${UNSCHEDULED}) AS next_attempt_at, d.last_attempt_at,
  d.last_status_code, d.last_error, d.delivered_at, d.created_at`;

export const deliveryView = (d: DeliveryRow) => ({
  id: d.id,
  object: 'webhook_delivery' as const,
  org_id: d.org_id,
  endpoint_id: d.endpoint_id,
  message_id: d.message_id,
  event_type: d.type,
  status: d.status,
  attempts: d.attempts,
  next_attempt_at: d.status === 'pending' ? (d.next_attempt_at?.toISOString() ?? null) : null,
  last_attempt_at: d.last_attempt_at?.toISOString() ?? null,
  last_status_code: d.last_status_code,
  last_error: d.last_error,
  delivered_at: d.delivered_at?.toISOString() ?? null,
  created_at: d.created_at.toISOString(),
  payload: d.payload,
});
export type DeliveryView = ReturnType<typeof deliveryView>;
