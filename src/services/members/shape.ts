import type { Role } from '../../domain/permissions.ts';
import type { Queryable } from '../../store/db.ts';
import { notFound } from '../errors.ts';

export interface MemberRow {
  org_id: string;
  id: string;
  external_id: string | null;
  name: string | null;
  email: string | null;
  role: Role;
  status: 'active' | 'removed';
  created_at: Date;
  removed_at: Date | null;
  erased_at: Date | null;
}

export const MEMBER_COLUMNS =
  'org_id, id, external_id, name, email, role, status, created_at, removed_at, erased_at';

export function memberView(row: MemberRow) {
  return {
    id: row.id,
    object: 'member' as const,
    org_id: row.org_id,
    external_id: row.external_id,
    name: row.name,
    email: row.email,
    role: row.role,
    status: row.status,
    erased: row.erased_at !== null,
    created_at: row.created_at.toISOString(),
    removed_at: row.removed_at?.toISOString() ?? null,
  };
}
export type MemberView = ReturnType<typeof memberView>;

export async function loadMember(q: Queryable, orgId: string, memberId: string): Promise<MemberRow> {
  const [row] = await q.query<MemberRow>(
    `SELECT ${MEMBER_COLUMNS} FROM members WHERE org_id = $1 AND id = $2`,
    [orgId, memberId],
  );
  if (!row) throw notFound('Member', 'member');
  return row;
}
