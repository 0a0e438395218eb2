import { type Ctx, scopeOrg } from '../context.ts';
import { loadOrg, type OrgView, orgView } from './shape.ts';

export async function getOrg(ctx: Ctx, orgId: string): Promise<OrgView> {
  return orgView(await loadOrg(ctx.db, scopeOrg(ctx, orgId, 'org:read')));
}
