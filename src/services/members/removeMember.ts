import { audit, type Ctx, scopeOrg } from '../context.ts';
import { loadMember, MEMBER_COLUMNS, type MemberRow, type MemberView, memberView } from './shape.ts';

/** A removed member keeps its usage, which pages show as "Unknown user". */
export async function removeMember(ctx: Ctx, orgId: string, memberId: string): Promise<MemberView> {
  scopeOrg(ctx, orgId, 'members:write');
  return ctx.db.transaction(async (tx) => {
    await loadMember(tx, orgId, memberId);
    const [row] = await tx.query<MemberRow>(
      `UPDATE members SET status = 'removed', removed_at = COALESCE(removed_at, now())
        WHERE org_id = $1 AND id = $2 RETURNING ${MEMBER_COLUMNS}`,
      [orgId, memberId],
    );
    await audit(tx, ctx, orgId, 'member.removed', memberId);
    return memberView(row!);
  });
}
