/** Mints a short-lived token that opens the usage page for one member with one role. */
import { publicBase } from '../../config.ts';
import type { Role } from '../../domain/permissions.ts';
import { audit, type Ctx, scopeOrg } from '../context.ts';
import { notFound } from '../errors.ts';
import { embedSigningSecret } from './signingSecret.ts';
import { encodeEmbedToken } from './token.ts';

export const EMBED_TTL_DEFAULT_SECONDS = 3600;
export const EMBED_TTL_MAX_SECONDS = 86_400;

export interface CreateEmbedTokenInput {
  /** The member's id (mem_...) or the host app's user id. */
  member: string;
  role: Role;
  ttl_seconds?: number | undefined;
}

export async function createEmbedToken(
  ctx: Ctx,
  orgId: string,
  input: CreateEmbedTokenInput,
  origin: string,
): Promise<{
  object: 'embed_token';
  token: string;
  url: string;
  expires_at: string;
  member: string;
  role: Role;
}> {
  scopeOrg(ctx, orgId, 'embed:create');
  const [member] = await ctx.db.query<{ id: string }>(
    `SELECT id FROM members WHERE org_id = $1 AND (id = $2 OR external_id = $2) AND status = 'active'`,
    [orgId, input.member],
  );
  if (!member) throw notFound('Member', 'member');
  const exp = Math.floor(Date.now() / 1000) + (input.ttl_seconds ?? EMBED_TTL_DEFAULT_SECONDS);
  const token = encodeEmbedToken(await embedSigningSecret(ctx.db), {
    org: orgId,
    member: member.id,
    role: input.role,
    exp,
  });
  await audit(ctx.db, ctx, orgId, 'embed_token.created', member.id, { role: input.role, exp });
  const base = publicBase(ctx.config, origin);
  return {
    object: 'embed_token',
    token,
    // In the fragment: browsers never send it to a server, so it stays out of access logs.
    url: `${base}/embed#token=${token}`,
    expires_at: new Date(exp * 1000).toISOString(),
    member: member.id,
    role: input.role,
  };
}
