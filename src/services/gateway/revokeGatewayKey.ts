import { audit, type Ctx, scopeOrg } from '../context.ts';
import { notFound } from '../errors.ts';
import { forgetGatewayKey } from './resolveCaller.ts';
import { GATEWAY_KEY_COLUMNS, type GatewayKeyRow, type GatewayKeyView, gatewayKeyView } from './shape.ts';

export async function revokeGatewayKey(ctx: Ctx, orgId: string, keyId: string): Promise<GatewayKeyView> {
  scopeOrg(ctx, orgId, 'keys:write');
  const view = await ctx.db.transaction(async (tx) => {
    const [row] = await tx.query<GatewayKeyRow>(
      `UPDATE gateway_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE org_id = $1 AND id = $2
       RETURNING ${GATEWAY_KEY_COLUMNS}`,
      [orgId, keyId],
    );
    if (!row) throw notFound('Gateway key', 'key');
    await audit(tx, ctx, orgId, 'gateway_key.revoked', keyId);
    return gatewayKeyView(row);
  });
  forgetGatewayKey(keyId);
  return view;
}
