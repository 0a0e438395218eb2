import { audit, type Ctx, scopeOrg } from '../context.ts';
import { loadMember, MEMBER_COLUMNS, type MemberRow, type MemberView, memberView } from './shape.ts';

/**
 * Erases a member's personal data (name, email, the host app's id). Events point at the member
 * row by its Tally id only, so every amount and total stays as it was.
 */
export async function eraseMember(ctx: Ctx, orgId: string, memberId: string): Promise<MemberView> {
  scopeOrg(ctx, orgId, 'members:write');
  return ctx.db.transaction(async (tx) => {
    await loadMember(tx, orgId, memberId);
    const [row] = await tx.query<MemberRow>(
      `UPDATE members SET name = NULL, email = NULL, external_id = NULL, status = 'removed',
              removed_at = COALESCE(removed_at, now()), erased_at = COALESCE(erased_at, now())
        WHERE org_id = $1 AND id = $2 RETURNING ${MEMBER_COLUMNS}`,
      [orgId, memberId],
    );
    await audit(tx, ctx, orgId, 'member.erased', memberId);
    return memberView(row!);
  });
}
