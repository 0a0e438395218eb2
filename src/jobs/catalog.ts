/** The typed catalog of scheduled jobs; each handler calls verbs with the operator's authority. */

import { checkProjectedRunOut } from '../services/alerts/checkProjectedRunOut.ts';
import { expireHolds } from '../services/authorizations/expireHolds.ts';
import type { Ctx } from '../services/context.ts';
import { expireGrantsEverywhere } from '../services/ledger/expireGrantsEverywhere.ts';
import { issuePlanGrants } from '../services/ledger/issuePlanGrants.ts';
import { buildHourlyDims } from '../services/maintenance/buildHourlyDims.ts';
import { buildUsagePairs } from '../services/maintenance/buildUsagePairs.ts';
import { purgeExpiredEvents } from '../services/maintenance/purgeExpiredEvents.ts';
import { purgeIdempotencyKeys } from '../services/maintenance/purgeIdempotencyKeys.ts';
import { runAutoTopups } from '../services/payments/runAutoTopups.ts';
import { detectAnomalies } from '../services/usage/detectAnomalies.ts';
import { deliverWebhooks } from '../services/webhooks/deliverWebhooks.ts';
import { sendDailySummaries } from '../services/webhooks/sendDailySummaries.ts';
import { sendMonthlySummaries } from '../services/webhooks/sendMonthlySummaries.ts';
import type { JobDefinition } from './runner.ts';

export function jobCatalog(ctx: Ctx): JobDefinition[] {
  return [
    { name: 'expire_holds', everySeconds: 10, run: () => expireHolds(ctx) },
    { name: 'expire_grants', everySeconds: 60, run: () => expireGrantsEverywhere(ctx.db) },
    { name: 'issue_plan_grants', everySeconds: 60, run: () => issuePlanGrants(ctx.db) },
    { name: 'purge_idempotency_keys', everySeconds: 3600, run: () => purgeIdempotencyKeys(ctx.db) },
    // Its rounds stop starting after 20 s, well inside the scheduler's 60 s lease.
    {
      name: 'deliver_webhooks',
      everySeconds: 2,
      run: () =>
        deliverWebhooks(ctx.db, {
          budgetMs: 20_000,
          allowPrivateAddresses: ctx.config.TALLY_WEBHOOK_ALLOW_PRIVATE === '1',
          disableAfterDays: ctx.config.TALLY_WEBHOOK_DISABLE_AFTER_DAYS,
        }),
    },
    { name: 'daily_usage_summaries', everySeconds: 900, run: () => sendDailySummaries(ctx.db) },
    // Stops starting orgs after 20 s, inside the lease; the next run sends the rest.
    {
      name: 'monthly_usage_summaries',
      everySeconds: 900,
      run: () => sendMonthlySummaries(ctx, new Date(), { budgetMs: 20_000 }),
    },
    { name: 'projected_run_out_alerts', everySeconds: 3600, run: () => checkProjectedRunOut(ctx) },
    { name: 'auto_topups', everySeconds: 15, run: () => runAutoTopups(ctx) },
    { name: 'detect_anomalies', everySeconds: 900, run: () => detectAnomalies(ctx) },
    // Hours, then days, stop starting after 10 s each, inside the lease; the next run goes on.
    {
      name: 'build_usage_rollups',
      everySeconds: 600,
      run: async () => ({
        hours: await buildHourlyDims(ctx.db, { budgetMs: 10_000 }),
        days: await buildUsagePairs(ctx.db, { budgetMs: 10_000 }),
      }),
    },
    // Batches stop starting after 20 s, inside the lease; the next run goes on where it stopped.
    {
      name: 'purge_raw_events',
      everySeconds: 3600,
      run: () => purgeExpiredEvents(ctx.db, { budgetMs: 20_000 }),
    },
  ];
}
