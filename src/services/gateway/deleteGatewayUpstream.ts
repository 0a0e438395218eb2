import { audit, type Ctx, scopeOrg } from '../context.ts';
import { notFound } from '../errors.ts';
import { forgetUpstream } from './upstream.ts';
import type { ProviderName } from './wire.ts';

/** Gateway calls of the org go back to the operator's provider account. */
export async function deleteGatewayUpstream(ctx: Ctx, orgId: string, provider: ProviderName) {
  scopeOrg(ctx, orgId, 'keys:write');
  const result = await ctx.db.transaction(async (tx) => {
    const deleted = await tx.query(
      'DELETE FROM gateway_upstreams WHERE org_id = $1 AND provider = $2 RETURNING provider',
      [orgId, provider],
    );
    if (deleted.length === 0) throw notFound('Upstream setting', 'provider');
    await audit(tx, ctx, orgId, 'gateway_upstream.deleted', provider);
    return { object: 'gateway_upstream' as const, provider, deleted: true as const };
  });
  // Committed: this process's gateway calls use the new setting from now on.
  forgetUpstream(orgId, provider);
  return result;
}
