import { audit, type Ctx, scopeOrg } from '../context.ts';
import { notFound } from '../errors.ts';
import { forgetApiKey } from './authenticate.ts';
import { API_KEY_COLUMNS, type ApiKeyRow, type ApiKeyView, apiKeyView } from './shape.ts';

export async function revokeApiKey(ctx: Ctx, orgId: string, keyId: string): Promise<ApiKeyView> {
  scopeOrg(ctx, orgId, 'keys:write');
  const view = await ctx.db.transaction(async (tx) => {
    const [row] = await tx.query<ApiKeyRow>(
      `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE org_id = $1 AND id = $2
       RETURNING ${API_KEY_COLUMNS}`,
      [orgId, keyId],
    );
    if (!row) throw notFound('API key', 'key');
    await audit(tx, ctx, orgId, 'api_key.revoked', keyId);
    return apiKeyView(row);
  });
  forgetApiKey(keyId);
  return view;
}
