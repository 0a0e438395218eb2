/** The event types Tally sends to webhook endpoints; the alert types are also the alerts' own types. */
import { newId } from '../../domain/ids.ts';

export const ALERT_TYPES = [
  'alert.threshold_crossed',
  'quota.exceeded',
  'credits.low',
  'credits.projected_run_out',
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

export const WEBHOOK_EVENT_TYPES = [...ALERT_TYPES, 'grant.created', 'usage.daily_summary'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/**
 * Prefixed ids for alerts (`alt_`), endpoints (`we_`) and messages (`msg_`): the body of a fresh
 * random id under this module's own prefixes (deliveries get theirs in SQL, see `FAN_OUT`).
 */
export const newObjectId = (prefix: 'alt' | 'we' | 'msg'): string =>
  newId('req').replace(/^req_/, `${prefix}_`);
