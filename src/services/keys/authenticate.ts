/** Turns a bearer secret into the principal it stands for, or refuses it with the reason. */
import { hashSecret } from '../../domain/ids.ts';
import type { Role } from '../../domain/permissions.ts';
import type { Queryable } from '../../store/db.ts';
import type { Principal } from '../context.ts';
import { ServiceError } from '../errors.ts';

const unauthorized = (detail: string) => new ServiceError(401, 'unauthorized', detail);

/** The key of an `Authorization: Bearer <key>` header; undefined for any other header. */
export const bearerToken = (header: string | null | undefined): string | undefined =>
  header?.match(/^Bearer\s+(\S+)\s*$/i)?.[1];

/**
 * How long a process keeps a key it has just checked, so that a busy key is not looked up on
 * every request. A key revoked through this process stops working at once (`forget`); revoked
 * through another Tally process, within this time. An expiring key is never kept past its expiry.
 */
export const KEY_KEPT_MS = 2_000;
/** Keys kept per process; past this the copies are dropped and looked up again as used. */
const MAX_KEPT = 10_000;

export class KeptKeys<T> {
  private readonly kept = new Map<string, { id: string; value: T; until: number }>();
  /** Lookups under way, by key hash: requests arriving meanwhile share one instead of reading again. */
  private readonly reading = new Map<string, Promise<T>>();

  /** The key kept for `hash`, else the lookup already under way for it, else a new one (`read`). */
  lookup(hash: string, read: () => Promise<T>): Promise<T> {
    const kept = this.get(hash);
    if (kept !== undefined) return Promise.resolve(kept);
    const shared = this.reading.get(hash);
    if (shared) return shared;
    const pending: Promise<T> = read().finally(() => {
      if (this.reading.get(hash) === pending) this.reading.delete(hash);
    });
    this.reading.set(hash, pending);
    return pending;
  }

  get(hash: string, now = Date.now()): T | undefined {
    const entry = this.kept.get(hash);
    if (entry && entry.until > now) return entry.value;
    if (entry) this.kept.delete(hash);
    return undefined;
  }

  keep(hash: string, id: string, value: T, expiresAt: Date | null, now = Date.now()): void {
    if (this.kept.size >= MAX_KEPT) this.kept.clear();
    const until = Math.min(now + KEY_KEPT_MS, expiresAt?.getTime() ?? Number.POSITIVE_INFINITY);
    this.kept.set(hash, { id, value, until });
  }

  /**
   * Drops the key with this id (revoked through this process); lookups from now on read afresh
   * rather than join one begun before the revocation.
   */
  forget(id: string): void {
    for (const [hash, entry] of this.kept) if (entry.id === id) this.kept.delete(hash);
    this.reading.clear();
  }
}

const orgKeys = new KeptKeys<Principal>();

/** Counts revocations through this process: a lookup begun before one must not keep what it read. */
let revocations = 0;

/** Call once an org API key is revoked, so this process refuses it at once. */
export const forgetApiKey = (keyId: string): void => {
  orgKeys.forget(keyId);
  revocations++;
};

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
  return orgKeys.lookup(hash, () => readOrgKey(db, hash));
}

async function readOrgKey(db: Queryable, hash: string): Promise<Principal> {
  const revocationsBefore = revocations;
  const [key] = await db.query<{
    id: string;
    org_id: string;
    role: Role;
    revoked: boolean;
    expired: boolean;
    expires_at: Date | null;
  }>(
    `SELECT id, org_id, role, revoked_at IS NOT NULL AS revoked, COALESCE(expires_at <= now(), false) AS expired,
            expires_at
       FROM api_keys WHERE key_hash = $1`,
    [hash],
  );
  if (!key) throw unauthorized('The API key is not valid');
  if (key.revoked) throw unauthorized('The API key was revoked');
  if (key.expired) throw unauthorized('The API key has expired');
  const principal: Principal = { kind: 'org_key', id: key.id, orgId: key.org_id, role: key.role };
  // Read before a revocation through this process committed: answered once, never kept.
  if (revocations === revocationsBefore) orgKeys.keep(hash, key.id, principal, key.expires_at);
  return principal;
}
