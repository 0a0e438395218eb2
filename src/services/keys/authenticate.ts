/** Turns a bearer secret into the principal it stands for, or refuses it with the reason. */
import { hashSecret } from '../../domain/ids.ts';
import type { Role } from '../../domain/permissions.ts';
import type { Queryable } from '../../store/db.ts';
import type { Principal } from '../context.ts';
import { ServiceError } from '../errors.ts';

const unauthorized = (detail: string) => new ServiceError(401, 'unauthorized', detail);

export async function authenticate(db: Queryable, secret: string | undefined): Promise<Principal> {
  if (!secret) throw unauthorized('Send an API key as "Authorization: Bearer <key>"');
  const hash = hashSecret(secret);
  if (secret.startsWith('tally_op_') || !secret.startsWith('tally_sk_')) {
    const [op] = await db.query<{ id: string }>(
      'SELECT id FROM operator_keys WHERE key_hash = $1 AND revoked_at IS NULL',
      [hash],
    );
    if (op) return { kind: 'operator', id: op.id };
    throw unauthorized('The API key is not valid');
  }
  const [key] = await db.query<{
    id: string;
    org_id: string;
    role: Role;
    revoked: boolean;
    expired: boolean;
  }>(
    `SELECT id, org_id, role, revoked_at IS NOT NULL AS revoked, COALESCE(expires_at <= now(), false) AS expired
       FROM api_keys WHERE key_hash = $1`,
    [hash],
  );
  if (!key) throw unauthorized('The API key is not valid');
  if (key.revoked) throw unauthorized('The API key was revoked');
  if (key.expired) throw unauthorized('The API key has expired');
  return { kind: 'org_key', id: key.id, orgId: key.org_id, role: key.role };
}
