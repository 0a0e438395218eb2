/** Turns an embed token into the embed principal: its org, its member (who must still be active), role and expiry. */
import type { Queryable } from '../../store/db.ts';
import type { Principal } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { readEmbedSigningSecret } from './signingSecret.ts';
import { decodeEmbedToken } from './token.ts';

export async function authenticateEmbedToken(db: Queryable, token: string): Promise<Principal> {
  const secret = await readEmbedSigningSecret(db);
  const decoded = secret ? decodeEmbedToken(secret, token) : ({ ok: false, reason: 'invalid' } as const);
  if (!decoded.ok) {
    throw new ServiceError(
      401,
      decoded.reason === 'expired' ? 'embed_token_expired' : 'unauthorized',
      decoded.reason === 'expired' ? 'The embed token has expired' : 'The embed token is not valid',
    );
  }
  const { org, member, role, exp } = decoded.claims;
  const [row] = await db.query<{ status: string }>(
    'SELECT status FROM members WHERE org_id = $1 AND id = $2',
    [org, member],
  );
  if (row?.status !== 'active') {
    throw new ServiceError(401, 'unauthorized', 'The embed token belongs to a member who was removed');
  }
  return { kind: 'embed', id: member, orgId: org, memberId: member, role, expiresAt: new Date(exp * 1000) };
}
