/** Follows one org's usage, balance and limits for a live page: the caller must be allowed to read them. */
import { type Ctx, scopeOrg } from '../context.ts';
import { loadOrg } from '../orgs/shape.ts';
import { type Listener, onOrgChange } from './orgChanges.ts';

export async function watchOrgUsage(ctx: Ctx, orgId: string, listener: Listener): Promise<() => void> {
  scopeOrg(ctx, orgId, 'usage:read');
  await loadOrg(ctx.db, orgId);
  return onOrgChange(ctx.db, orgId, listener);
}
