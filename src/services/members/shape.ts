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

/**
 * The Tally id of the org's member that `ref` names: its Tally id first, else the host app's id
 * (`external_id`). Removed members are found, as `loadMember` finds them; an erased one has no
 * external id left, so only its Tally id names it.
 */
export async function findMemberId(q: Queryable, orgId: string, ref: string): Promise<string | null> {
  const [row] = await q.query<{ id: string }>(
    `SELECT id FROM members WHERE org_id = $1 AND (id = $2 OR external_id = $2)
      ORDER BY id = $2 DESC LIMIT 1`,
    [orgId, ref],
  );
  return row?.id ?? null;
}
