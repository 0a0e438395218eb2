/** Alerts as stored and as the API (and the webhook message's `data`) shows them. */
import type { AlertType } from '../webhooks/eventTypes.ts';

export interface AlertCandidate {
  type: AlertType;
  /** 'monthly_limit', 'alert_threshold', 'budget:<id>', 'plan_allowance' or 'credits'. */
  scope: string;
  periodStart: Date;
  thresholdPercent: number;
  details: Record<string, unknown>;
}

export interface AlertRow {
  org_id: string;
  id: string;
  seq: string;
  type: AlertType;
  scope: string;
  period_start: Date;
  threshold_percent: number;
  details: Record<string, unknown>;
  created_at: Date;
}

export const ALERT_COLUMNS =
  'org_id, id, seq, type, scope, period_start, threshold_percent, details, created_at';

export const alertView = (a: Omit<AlertRow, 'seq'>) => ({
  id: a.id,
  object: 'alert' as const,
  org_id: a.org_id,
  type: a.type,
  scope: a.scope,
  threshold_percent: a.threshold_percent,
  period_start: a.period_start.toISOString(),
  details: a.details,
  created_at: a.created_at.toISOString(),
});
export type AlertView = ReturnType<typeof alertView>;
