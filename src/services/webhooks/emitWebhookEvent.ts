/**
 * Writes a message to the webhook outbox and one pending delivery for every endpoint that takes its
 * type (the org's own and the operator-wide ones), in the caller's transaction: the message exists
 * exactly when the change it reports was committed.
 */

import { newId } from '../../domain/ids.ts';
import type { Queryable } from '../../store/db.ts';
import type { WebhookEventType } from './eventTypes.ts';
import { UNSCHEDULED } from './shape.ts';

/**
 * The deliveries for the messages a CTE named `m` returned (`org_id, id, type, seq`), one per
 * endpoint in message order, so each endpoint's queue keeps the order the messages were written in.
 * A disabled endpoint's delivery waits, unscheduled, until it is enabled. FOR KEY SHARE: enabling
 * takes the endpoint FOR UPDATE, so it waits for this transaction and then sees its deliveries,
 * or this statement waits for it and sees the endpoint enabled; none is left waiting for good.
 */
export const FAN_OUT = `INSERT INTO webhook_deliveries (org_id, id, endpoint_id, message_id, next_attempt_at)
  SELECT m.org_id, 'dlv_' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 20), e.id, m.id,
         CASE WHEN e.disabled THEN ${UNSCHEDULED} ELSE now() END
    FROM m JOIN webhook_endpoints e
      ON (e.org_id = m.org_id OR e.org_id IS NULL) AND e.deleted_at IS NULL
     AND (cardinality(e.event_types) = 0 OR m.type = ANY (e.event_types))
   ORDER BY m.seq, e.id
   FOR KEY SHARE OF e`;

/** The body every endpoint receives: `{type, timestamp, data}`. */
export const envelope = (type: WebhookEventType, at: Date, data: unknown) => ({
  type,
  timestamp: at.toISOString(),
  data,
});

export interface EmitOptions {
  /** A message with this key is written once per org (jobs that may run more than once). */
  dedupeKey?: string;
  at?: Date;
}

/** Returns the message id, or null when a message with the same dedupe key exists already. */
export async function emitWebhookEvent(
  tx: Queryable,
  orgId: string,
  type: WebhookEventType,
  data: unknown,
  options: EmitOptions = {},
): Promise<string | null> {
  const at = options.at ?? new Date();
  const [row] = await tx.query<{ id: string }>(
    `WITH m AS (
       INSERT INTO webhook_messages (org_id, id, type, payload, dedupe_key, created_at)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (org_id, dedupe_key) DO NOTHING
       RETURNING org_id, id, type, seq
     ), d AS (${FAN_OUT})
     SELECT id FROM m`,
    [
      orgId,
      newId('msg'),
      type,
      JSON.stringify(envelope(type, at, data)),
      options.dedupeKey ?? null,
      at.toISOString(),
    ],
  );
  return row?.id ?? null;
}
