/**
 * The anomaly job: for every org with usage in the last day, today's and yesterday's spikes (as
 * `GET .../usage/anomalies` reports them) each fire one `anomaly.detected` webhook. The job runs
 * often and in any process: the message's dedupe key (metric, date, scope and key of the spike) makes each
 * anomaly one message, even when its score moves as the day goes on.
 */
import type { Db } from '../../store/db.ts';
import type { Ctx } from '../context.ts';
import { emitWebhookEvent } from '../webhooks/emitWebhookEvent.ts';
import { getUsageAnomalies } from './getUsageAnomalies.ts';

const DAY_MS = 86_400_000;

export async function detectAnomalies(ctx: Ctx, now = new Date()): Promise<{ sent: number }> {
  const active = await ctx.db.query<{ org_id: string }>(
    `SELECT DISTINCT org_id FROM usage_hourly_total WHERE bucket >= $1 ORDER BY org_id`,
    [new Date(now.getTime() - DAY_MS).toISOString()],
  );
  let sent = 0;
  for (const { org_id } of active) {
    const found = await getUsageAnomalies(ctx, org_id, { days: 2 }, now);
    sent += await emitAll(ctx.db, org_id, found.unit, found.currency, found.data);
  }
  return { sent };
}

async function emitAll(
  db: Db,
  orgId: string,
  unit: string,
  currency: string,
  anomalies: Awaited<ReturnType<typeof getUsageAnomalies>>['data'],
): Promise<number> {
  if (anomalies.length === 0) return 0;
  return db.transaction(async (tx) => {
    let sent = 0;
    for (const a of anomalies) {
      const id = await emitWebhookEvent(
        tx,
        orgId,
        'anomaly.detected',
        { org_id: orgId, unit, currency, ...a },
        // Spend spikes keep the key they had before error rates were scored: none is sent twice.
        {
          dedupeKey: `anomaly.detected:${a.metric === 'spend' ? '' : `${a.metric}:`}${a.date}:${a.scope}:${a.key}`,
        },
      );
      if (id) sent++;
    }
    return sent;
  });
}
