/**
 * Bills the usage streamed since the previous increment, as it happens. Answers `stop` once the
 * next increment of the same size would not fit in the hold plus what limits still allow.
 */
import type { Usage } from '../../domain/pricing.ts';
import { withRetry } from '../../store/retry.ts';
import type { Ctx } from '../context.ts';
import { lockBalance } from '../ledger/balances.ts';
import { loadOrg } from '../orgs/shape.ts';
import { unitsFor } from './authorize.ts';
import { bill } from './settle.ts';
import { addUsage, authorizationOrg, credits, lockAuthorization, requireActive } from './shape.ts';

export async function incrementAuthorization(ctx: Ctx, id: string, usage: Usage) {
  await ctx.prices.refresh(ctx.db);
  return withRetry(() =>
    ctx.db.transaction(async (tx) => {
      // Lock order: the org's balance row first, then the authorization (as in authorize and ingest).
      await lockBalance(tx, await authorizationOrg(tx, ctx.principal, id));
      const auth = await lockAuthorization(tx, ctx.principal, id);
      const now = new Date();
      requireActive(auth, now);
      const org = await loadOrg(tx, auth.org_id);
      // A request fee is charged once per call, at capture, not on every increment.
      const wanted = unitsFor(ctx, org, auth, { requests: 0, ...usage }, now).units;
      const result = await bill(tx, org, auth, wanted, null);
      await tx.query('UPDATE authorizations SET usage = $3 WHERE org_id = $1 AND id = $2', [
        org.id,
        auth.id,
        JSON.stringify(addUsage(auth.usage, usage)),
      ]);
      return {
        object: 'authorization_increment' as const,
        charged_credits: credits(result.billed),
        total_charged_credits: credits(BigInt(auth.charged)),
        unbilled_credits: credits(result.unbilled),
        held_credits: credits(BigInt(auth.held)),
        action: result.unbilled > 0n || result.capacity < wanted ? ('stop' as const) : ('continue' as const),
      };
    }),
  );
}
