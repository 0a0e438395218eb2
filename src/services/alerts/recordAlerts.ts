/**
 * Stores alerts and their webhook messages in the caller's transaction, each exactly once per
 * (org, type, scope, period, threshold): the unique key turns every later attempt, from any
 * process, into a no-op, and the message is written only with the alert row that was inserted.
 */

import { newId } from '../../domain/ids.ts';
import type { Queryable } from '../../store/db.ts';
import { FAN_OUT } from '../webhooks/emitWebhookEvent.ts';
import { type AlertCandidate, alertView } from './shape.ts';

// Alerts known to be committed already, so the hot path (every event batch past a threshold)
// skips the insert. Only conflicts are remembered: a row this transaction inserted may roll back.
const known = new Set<string>();
const KNOWN_MAX = 100_000;

const keyOf = (orgId: string, c: AlertCandidate) =>
  [orgId, c.type, c.scope, c.periodStart.toISOString(), c.thresholdPercent].join('\u0000');

/** Forgets which alerts exist (tests: to show the database alone keeps them unique). */
export function forgetKnownAlerts(): void {
  known.clear();
}

/**
 * The candidates not known to be stored already: those recordAlerts would still write. Spend
 * that keeps the same alerts reached (past 75 % of a limit, say) thus needs no statement for them.
 */
export function unrecordedAlerts(orgId: string, candidates: AlertCandidate[]): AlertCandidate[] {
  return candidates.filter((c) => !known.has(keyOf(orgId, c)));
}

/** Returns the ids of the alerts fired now (those that did not exist yet). */
export async function recordAlerts(
  tx: Queryable,
  orgId: string,
  candidates: AlertCandidate[],
  now = new Date(),
): Promise<string[]> {
  const fresh = [...new Map(candidates.map((c) => [keyOf(orgId, c), c])).entries()].filter(
    ([key]) => !known.has(key),
  );
  if (fresh.length === 0) return [];
  const rows = fresh.map(([key, c], ord) => {
    const id = newId('alt');
    const alert = {
      org_id: orgId,
      id,
      type: c.type,
      scope: c.scope,
      period_start: c.periodStart,
      threshold_percent: c.thresholdPercent,
      details: c.details,
      created_at: now,
    };
    return {
      key,
      ord,
      id,
      message_id: newId('msg'),
      type: c.type,
      scope: c.scope,
      period_start: c.periodStart.toISOString(),
      threshold_percent: c.thresholdPercent,
      details: c.details,
      payload: { type: c.type, timestamp: now.toISOString(), data: alertView(alert) },
    };
  });
  const inserted = await tx.query<{ id: string }>(
    `WITH x AS (
       SELECT * FROM jsonb_to_recordset($2::jsonb) AS x(ord int, id text, message_id text, type text, scope text,
         period_start timestamptz, threshold_percent int, details jsonb, payload jsonb)
     ), a AS (
       INSERT INTO alerts (org_id, id, type, scope, period_start, threshold_percent, details, created_at)
       SELECT $1, id, type, scope, period_start, threshold_percent, details, $3 FROM x ORDER BY ord
       ON CONFLICT (org_id, type, scope, period_start, threshold_percent) DO NOTHING
       RETURNING id
     ), m AS (
       INSERT INTO webhook_messages (org_id, id, type, payload, created_at)
       SELECT $1, x.message_id, x.type, x.payload, $3 FROM a JOIN x ON x.id = a.id ORDER BY x.ord
       RETURNING org_id, id, type, seq
     ), d AS (${FAN_OUT})
     SELECT id FROM a`,
    [orgId, JSON.stringify(rows.map(({ key: _key, ...row }) => row)), now.toISOString()],
  );
  const fired = new Set(inserted.map((r) => r.id));
  if (known.size > KNOWN_MAX) known.clear();
  for (const row of rows) if (!fired.has(row.id)) known.add(row.key);
  return rows.filter((r) => fired.has(r.id)).map((r) => r.id);
}
