/** The event types Tally sends to webhook endpoints; the alert types are also the alerts' own types. */

export const ALERT_TYPES = [
  'alert.threshold_crossed',
  'quota.exceeded',
  'credits.low',
  'credits.projected_run_out',
  // One of the org's webhook endpoints failed every attempt for days and was disabled.
  'webhook_endpoint.disabled',
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

export const WEBHOOK_EVENT_TYPES = [
  ...ALERT_TYPES,
  'grant.created',
  'usage.daily_summary',
  // After each local month: its totals, top features and models, limit against spend, PDF report.
  'usage.monthly_summary',
  'anomaly.detected',
  'auto_topup.succeeded',
  'auto_topup.failed',
  // A top-up paid (its grant and invoice made), and a refund or dispute that took credits back.
  'payment.completed',
  'payment.reversed',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
