import type { Role } from '../../domain/permissions.ts';
import { audit, type Ctx, scopeOrg } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { loadMember, MEMBER_COLUMNS, type MemberRow, type MemberView, memberView } from './shape.ts';

export interface UpdateMemberInput {
  name?: string | null;
  email?: string | null;
  role?: Role;
}

export async function updateMember(
  ctx: Ctx,
  orgId: string,
  memberId: string,
  input: UpdateMemberInput,
): Promise<MemberView> {
  scopeOrg(ctx, orgId, 'members:write');
  return ctx.db.transaction(async (tx) => {
    const current = await loadMember(tx, orgId, memberId);
    if (current.erased_at && (input.name || input.email)) {
      throw new ServiceError(
        409,
        'member_erased',
        'This member was erased; personal data cannot be set again',
      );
    }
    const [row] = await tx.query<MemberRow>(
      `UPDATE members SET name = $3, email = $4, role = $5 WHERE org_id = $1 AND id = $2 RETURNING ${MEMBER_COLUMNS}`,
      [
        orgId,
        memberId,
        input.name !== undefined ? input.name : current.name,
        input.email !== undefined ? input.email : current.email,
        input.role ?? current.role,
      ],
    );
    await audit(tx, ctx, orgId, 'member.updated', memberId, { role: row!.role });
    return memberView(row!);
  });
}
