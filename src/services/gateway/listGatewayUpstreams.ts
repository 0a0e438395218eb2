import { type Ctx, scopeOrg } from '../context.ts';
import { GATEWAY_UPSTREAM_COLUMNS, type GatewayUpstreamRow, gatewayUpstreamView } from './shape.ts';

/** At most one row per provider, so the list is never paginated. */
export async function listGatewayUpstreams(ctx: Ctx, orgId: string) {
  scopeOrg(ctx, orgId, 'keys:write');
  const rows = await ctx.db.query<GatewayUpstreamRow>(
    `SELECT ${GATEWAY_UPSTREAM_COLUMNS} FROM gateway_upstreams WHERE org_id = $1 ORDER BY provider`,
    [orgId],
  );
  return { data: rows.map(gatewayUpstreamView), has_more: false, next_cursor: null };
}
