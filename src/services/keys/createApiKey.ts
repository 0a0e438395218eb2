import { hashSecret, newId, newSecret } from '../../domain/ids.ts';
import type { Role } from '../../domain/permissions.ts';
import { audit, type Ctx, scopeOrg } from '../context.ts';
import { invalid } from '../errors.ts';
import { loadOrg } from '../orgs/shape.ts';
import { API_KEY_COLUMNS, type ApiKeyRow, type ApiKeyView, apiKeyView } from './shape.ts';

export interface CreateApiKeyInput {
  name: string;
  role?: Role;
  expires_at?: string | null;
}

/** The secret is in this answer only; Tally keeps its SHA-256 hash and the last four characters. */
export async function createApiKey(
  ctx: Ctx,
  orgId: string,
  input: CreateApiKeyInput,
): Promise<ApiKeyView & { key: string }> {
  scopeOrg(ctx, orgId, 'keys:write');
  if (input.expires_at && new Date(input.expires_at) <= new Date()) {
    throw invalid('expires_at', 'expires_at must be in the future');
  }
  const secret = newSecret('sk');
  return ctx.db.transaction(async (tx) => {
    await loadOrg(tx, orgId);
    const [row] = await tx.query<ApiKeyRow>(
      `INSERT INTO api_keys (org_id, id, name, role, key_hash, key_hint, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${API_KEY_COLUMNS}`,
      [
        orgId,
        newId('key'),
        input.name,
        input.role ?? 'admin',
        hashSecret(secret),
        secret.slice(-4),
        input.expires_at ?? null,
      ],
    );
    await audit(tx, ctx, orgId, 'api_key.created', row!.id, { role: row!.role });
    return { ...apiKeyView(row!), key: secret };
  });
}
