/**
 * The embed token's wire format: `tally_em_<claims>.<signature>`, both base64url, the signature an
 * HMAC-SHA256 of the claims part. Stateless, so checking one costs no lookup beyond the member's status.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ROLES, type Role } from '../../domain/permissions.ts';

export const EMBED_TOKEN_PREFIX = 'tally_em_';

export interface EmbedClaims {
  org: string;
  member: string;
  role: Role;
  /** Expiry, in seconds since the epoch. */
  exp: number;
}

const sign = (secret: string, claims: string) =>
  createHmac('sha256', secret).update(claims).digest('base64url');

export function encodeEmbedToken(secret: string, claims: EmbedClaims): string {
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${EMBED_TOKEN_PREFIX}${body}.${sign(secret, body)}`;
}

export type DecodeResult = { ok: true; claims: EmbedClaims } | { ok: false; reason: 'invalid' | 'expired' };

/** Checks the signature first: nothing in an unsigned token is read. */
export function decodeEmbedToken(secret: string, token: string, nowMs = Date.now()): DecodeResult {
  const match = token.match(/^tally_em_([\w-]+)\.([\w-]+)$/);
  if (!match) return { ok: false, reason: 'invalid' };
  const [, body, signature] = match as unknown as [string, string, string];
  const expected = Buffer.from(sign(secret, body));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    return { ok: false, reason: 'invalid' };
  }
  let claims: EmbedClaims;
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'invalid' };
  }
  if (
    typeof claims.org !== 'string' ||
    typeof claims.member !== 'string' ||
    !ROLES.includes(claims.role) ||
    !Number.isInteger(claims.exp)
  ) {
    return { ok: false, reason: 'invalid' };
  }
  if (claims.exp * 1000 <= nowMs) return { ok: false, reason: 'expired' };
  return { ok: true, claims };
}
