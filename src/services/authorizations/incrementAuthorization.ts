/**
 * Bills the usage streamed since the previous increment, as it happens, and renews the hold for
 * its TTL: a stream that keeps reporting is alive however long it runs. Answers `stop` once the
 * next increment (by default one of the same size, prompt aside) would not fit in the hold plus
 * what limits still allow.
 */
import type { Usage } from '../../domain/pricing.ts';
import { addUsage, usageAtLeast, usageBeyond, withoutInput } from '../../domain/usageCounts.ts';
import { withRetry } from '../../store/retry.ts';
import type { Ctx } from '../context.ts';
import { lockForSpend } from '../ledger/lockForSpend.ts';
import { requireCurrent, withSpendTerms } from '../limits/spendTerms.ts';
import { unitsFor } from './authorize.ts';
import { bill, scopesOf } from './settle.ts';
import { credits, findAuthorization, lockedState, requireActive } from './shape.ts';

/**
 * What a stream reports: its usage since the previous increment, or its running totals. Totals are
 * billed only past what the call recorded already, so sending the same totals again (a retry whose
 * first answer was lost) bills nothing twice.
 */
export type StreamReport = { usage: Usage } | { usage_total: Usage };

/**
 * `next` is the usage the stop decision is judged on (by default, the step just reported): the
 * gateway, which bills several steps of output (and the input) at once, asks whether one more step
 * of output still fits.
 */
export async function incrementAuthorization(ctx: Ctx, id: string, report: StreamReport, next?: Usage) {
  // What needs no lock is read first and side by side; under the lock: one read, the draw-down
  // and one write.
  const [found] = await Promise.all([findAuthorization(ctx, id), ctx.prices.refresh(ctx.db)]);
  return withSpendTerms(ctx.db, found.org_id, ({ org, settings, version }) =>
    withRetry(() =>
      ctx.db.transaction(async (tx) => {
        const now = new Date();
        const scopes = scopesOf(org, settings, found);
        const lock = await lockForSpend(tx, org, scopes, now, found.id);
        requireCurrent(version, lock.spendVersion);
        const auth = lockedState(found, lock.authorization);
        requireActive(auth, now);
        // Priced on the running total and billed the difference, so a call's increments add up to
        // its exact price (rounding each on its own could pass it a little every time). A request
        // fee is charged once per call, at capture, not on every increment.
        const total =
          'usage_total' in report
            ? usageAtLeast(report.usage_total, auth.usage)
            : addUsage(auth.usage, report.usage);
        const priced = (u: Usage) => unitsFor(ctx, org, auth, { requests: 0, ...u }, now).units;
        const totalUnits = priced(total);
        // Billed past the most the call was worth so far: what was billed stays billed, so a total
        // priced lower than an earlier one (parts split otherwise) does not start a new climb.
        const before = priced(auth.usage);
        const charged = BigInt(auth.charged);
        const step = totalUnits - (before > charged ? before : charged);
        const wanted = step > 0n ? step : 0n;
        // By default, one more step like this report's, prompt aside: a stream's next steps are
        // output, and a first report that carries the whole prompt would otherwise be judged as if
        // every step brought another prompt.
        const ahead = next ?? withoutInput(usageBeyond(total, auth.usage));
        const nextUnits = priced(addUsage(total, ahead)) - totalUnits;
        const result = await bill({ tx, ctx, org, auth, scopes, lock }, wanted, {
          eventId: null,
          usage: total,
          release: false,
          renew: true,
          last: true,
        });
        return {
          object: 'authorization_increment' as const,
          charged_credits: credits(result.billed),
          total_charged_credits: credits(BigInt(auth.charged)),
          unbilled_credits: credits(result.unbilled),
          held_credits: credits(BigInt(auth.held)),
          action:
            result.unbilled > 0n || result.capacity < nextUnits ? ('stop' as const) : ('continue' as const),
        };
      }),
    ),
  );
}
