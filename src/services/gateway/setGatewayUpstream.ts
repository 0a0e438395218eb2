/**
 * An org's own provider account for gateway calls (bring your own key). The key is sealed under
 * TALLY_SECRET_KEY; only its last four characters are ever answered. Another base URL may be set by
 * the operator only: an org key pointing Tally at an arbitrary address would let it reach internal hosts.
 */
import { audit, type Ctx, requireOperator, scopeOrg } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { loadOrg } from '../orgs/shape.ts';
import { seal } from './secretBox.ts';
import { GATEWAY_UPSTREAM_COLUMNS, type GatewayUpstreamRow, gatewayUpstreamView } from './shape.ts';
import { forgetUpstream } from './upstream.ts';
import type { ProviderName } from './wire.ts';

export interface SetGatewayUpstreamInput {
  api_key: string;
  base_url?: string | null;
}

export async function setGatewayUpstream(
  ctx: Ctx,
  orgId: string,
  provider: ProviderName,
  input: SetGatewayUpstreamInput,
) {
  scopeOrg(ctx, orgId, 'keys:write');
  if (input.base_url) requireOperator(ctx);
  const secretKey = ctx.config.TALLY_SECRET_KEY;
  if (!secretKey) {
    throw new ServiceError(
      409,
      'secret_key_missing',
      'Set TALLY_SECRET_KEY so Tally can store provider keys encrypted',
    );
  }
  const result = await ctx.db.transaction(async (tx) => {
    await loadOrg(tx, orgId);
    const [row] = await tx.query<GatewayUpstreamRow>(
      `INSERT INTO gateway_upstreams (org_id, provider, base_url, api_key_encrypted, key_hint, updated_by)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (org_id, provider) DO UPDATE SET base_url = EXCLUDED.base_url,
         api_key_encrypted = EXCLUDED.api_key_encrypted, key_hint = EXCLUDED.key_hint,
         updated_by = EXCLUDED.updated_by, updated_at = now()
       RETURNING ${GATEWAY_UPSTREAM_COLUMNS}`,
      [
        orgId,
        provider,
        input.base_url ?? null,
        seal(input.api_key, secretKey),
        input.api_key.slice(-4),
        ctx.principal.id,
      ],
    );
    await audit(tx, ctx, orgId, 'gateway_upstream.set', provider, { base_url: input.base_url ?? null });
    return gatewayUpstreamView(row!);
  });
  // Committed: this process's gateway calls use the new setting from now on.
  forgetUpstream(orgId, provider);
  return result;
}
