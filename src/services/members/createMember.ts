import { newId } from '../../domain/ids.ts';
import type { Role } from '../../domain/permissions.ts';
import { audit, type Ctx, scopeOrg } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { loadOrg } from '../orgs/shape.ts';
import { MEMBER_COLUMNS, type MemberRow, type MemberView, memberView } from './shape.ts';

export interface CreateMemberInput {
  external_id: string;
  name?: string | null;
  email?: string | null;
  role?: Role;
}

export async function createMember(ctx: Ctx, orgId: string, input: CreateMemberInput): Promise<MemberView> {
  scopeOrg(ctx, orgId, 'members:write');
  return ctx.db.transaction(async (tx) => {
    await loadOrg(tx, orgId);
    const [row] = await tx.query<MemberRow>(
      `INSERT INTO members (org_id, id, external_id, name, email, role) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (org_id, external_id) DO NOTHING RETURNING ${MEMBER_COLUMNS}`,
      [
        orgId,
        newId('mem'),
        input.external_id,
        input.name ?? null,
        input.email ?? null,
        input.role ?? 'member',
      ],
    );
    if (!row) throw new ServiceError(409, 'conflict', 'A member with this external_id exists', 'external_id');
    await audit(tx, ctx, orgId, 'member.created', row.id, { role: row.role });
    return memberView(row);
  });
}
