/**
 * credits.projected_run_out: once per billing cycle, when the balance page's projection (average
 * spend per day this cycle against available credits) says the org runs out before the cycle ends.
 * A job runs it; it may run any number of times, the alert's unique key keeps it to one.
 */
import { anchorDayOf, billingCycle } from '../../domain/periods.ts';
import type { Ctx } from '../context.ts';
import { getBalance } from '../ledger/getBalance.ts';
import { ORG_COLUMNS, type OrgRow } from '../orgs/shape.ts';
import { recordAlerts } from './recordAlerts.ts';

const PAGE = 500;

export async function checkProjectedRunOut(ctx: Ctx, now = new Date()): Promise<{ fired: number }> {
  let after = '';
  let fired = 0;
  for (;;) {
    // Credits orgs with usage in the last cycle's worth of days: the others cannot project anything.
    const orgs = await ctx.db.query<OrgRow>(
      `SELECT ${ORG_COLUMNS} FROM orgs o
        WHERE o.billing_mode = 'credits' AND o.id > $1
          AND EXISTS (SELECT 1 FROM usage_hourly u WHERE u.org_id = o.id AND u.bucket >= $2::timestamptz - interval '32 days')
        ORDER BY o.id LIMIT ${PAGE}`,
      [after, now.toISOString()],
    );
    if (orgs.length === 0) return { fired };
    after = orgs[orgs.length - 1]!.id;
    const cycles = new Map(
      orgs.map((o) => [o.id, billingCycle(o.timezone, anchorDayOf(o.billing_cycle_anchor), now)]),
    );
    const done = new Set(
      (
        await ctx.db.query<{ org_id: string }>(
          `SELECT a.org_id FROM alerts a
             JOIN jsonb_to_recordset($1::jsonb) AS x(org_id text, period_start timestamptz)
               ON a.org_id = x.org_id AND a.period_start = x.period_start
            WHERE a.type = 'credits.projected_run_out' AND a.scope = 'credits'`,
          [JSON.stringify([...cycles].map(([org_id, c]) => ({ org_id, period_start: c.start })))],
        )
      ).map((r) => r.org_id),
    );
    for (const org of orgs) {
      if (done.has(org.id)) continue;
      const balance = await getBalance(ctx, org.id, now);
      const { cycle } = balance;
      // Credits or a spend cap: an allowed limit ahead has alerts of its own (its threshold, quota.exceeded).
      if (!cycle.runs_out_before_cycle_end || cycle.run_out_by === 'allowed_limit') continue;
      const ids = await ctx.db.transaction((tx) =>
        recordAlerts(
          tx,
          org.id,
          [
            {
              type: 'credits.projected_run_out',
              scope: 'credits',
              periodStart: cycles.get(org.id)!.start,
              thresholdPercent: 0,
              details: {
                period_start: cycle.start,
                period_end: cycle.end,
                available_credits: balance.available_credits,
                average_per_day_credits: cycle.average_per_day_credits,
                run_out_in_days: cycle.run_out_in_days,
                days_remaining: cycle.days_remaining,
              },
            },
          ],
          now,
        ),
      );
      fired += ids.length;
    }
  }
}
