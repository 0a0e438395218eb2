import type { Role } from '../../domain/permissions.ts';

export interface ApiKeyRow {
  org_id: string;
  id: string;
  name: string;
  role: Role;
  key_hint: string;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
}

export const API_KEY_COLUMNS = 'org_id, id, name, role, key_hint, created_at, expires_at, revoked_at';

export const apiKeyView = (row: ApiKeyRow) => ({
  id: row.id,
  object: 'api_key' as const,
  org_id: row.org_id,
  name: row.name,
  role: row.role,
  key_hint: row.key_hint,
  created_at: row.created_at.toISOString(),
  expires_at: row.expires_at?.toISOString() ?? null,
  revoked_at: row.revoked_at?.toISOString() ?? null,
});
export type ApiKeyView = ReturnType<typeof apiKeyView>;
