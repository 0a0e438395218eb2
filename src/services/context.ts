/** Who is calling, for which tenant, and the shared parts every verb needs. */
import type { Config } from '../config.ts';
import {
  embedPermissions,
  PERMISSIONS,
  type Permission,
  ROLE_PERMISSIONS,
  type Role,
} from '../domain/permissions.ts';
import type { Db, Queryable } from '../store/db.ts';
import { ServiceError } from './errors.ts';
import type { PriceBook } from './pricing/priceBook.ts';

export type Principal =
  | { kind: 'operator'; id: string }
  | { kind: 'org_key'; id: string; orgId: string; role: Role }
  /** A member on the usage page the host app opened with an embed token; `id` is the member's. */
  | { kind: 'embed'; id: string; orgId: string; memberId: string; role: Role; expiresAt: Date };

export interface Ctx {
  db: Db;
  config: Config;
  prices: PriceBook;
  principal: Principal;
  requestId: string;
}

/** Who audit rows name: the operator key, the API key, or the member behind an embed token. */
export const actorOf = (ctx: Ctx): string => ctx.principal.id;

/** Everything the principal may do, from the role table (an embed token withholds what a browser must not). */
export function permissionsOf(principal: Principal): readonly Permission[] {
  if (principal.kind === 'operator') return Object.keys(PERMISSIONS) as Permission[];
  return principal.kind === 'embed' ? embedPermissions(principal.role) : ROLE_PERMISSIONS[principal.role];
}

export function requireOperator(ctx: Ctx): void {
  if (ctx.principal.kind !== 'operator') {
    throw new ServiceError(403, 'forbidden', 'This action needs the operator key');
  }
}

/**
 * The org id a caller may act on. Another org's id is answered exactly like a missing one (404),
 * so a key never learns which other orgs exist. `param` names where the id came from.
 */
export function scopeOrg(ctx: Ctx, orgId: string, permission: Permission, param = 'org'): string {
  const p = ctx.principal;
  if (p.kind === 'operator') return orgId;
  if (p.orgId !== orgId) throw new ServiceError(404, 'not_found', 'Organization not found', param);
  if (!permissionsOf(p).includes(permission)) {
    const who = p.kind === 'embed' ? `An embed token with the ${p.role} role` : `The ${p.role} role`;
    throw new ServiceError(403, 'forbidden', `${who} may not do this (needs ${permission})`);
  }
  return orgId;
}

export async function audit(
  tx: Queryable,
  ctx: Ctx,
  orgId: string,
  action: string,
  target: string | null,
  data: Record<string, unknown> = {},
): Promise<void> {
  await writeAudit(tx, { orgId, actor: actorOf(ctx), action, target, data, requestId: ctx.requestId });
}

/**
 * One audit row, in the caller's transaction. Work Tally does on its own (a job, a payment
 * provider's webhook) has no request and names itself as the actor.
 */
export async function writeAudit(
  tx: Queryable,
  entry: {
    orgId: string;
    actor: string;
    action: string;
    target: string | null;
    data: object;
    requestId?: string;
  },
): Promise<void> {
  await tx.query(
    'INSERT INTO audit_log (org_id, actor, action, target, data, request_id) VALUES ($1, $2, $3, $4, $5, $6)',
    [
      entry.orgId,
      entry.actor,
      entry.action,
      entry.target,
      JSON.stringify(entry.data),
      entry.requestId ?? null,
    ],
  );
}
