/**
 * The operator-wide secret that signs embed tokens: generated when the first token is minted, kept in
 * operator_settings so every Tally process on the database signs and checks with the same one.
 */
import { randomBytes } from 'node:crypto';
import type { Queryable } from '../../store/db.ts';

const KEY = 'embed_token_secret';
const cache = new WeakMap<Queryable, string>();

/** The secret, or null before any token was minted (then no token can be valid). Never writes. */
export async function readEmbedSigningSecret(db: Queryable): Promise<string | null> {
  const known = cache.get(db);
  if (known) return known;
  const [row] = await db.query<{ value: string }>('SELECT value FROM operator_settings WHERE key = $1', [
    KEY,
  ]);
  if (row) cache.set(db, row.value);
  return row?.value ?? null;
}

/** The secret, created on first use. */
export async function embedSigningSecret(db: Queryable): Promise<string> {
  const known = await readEmbedSigningSecret(db);
  if (known) return known;
  // Two processes racing here both read back the one row that won.
  await db.query('INSERT INTO operator_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [
    KEY,
    randomBytes(32).toString('base64url'),
  ]);
  return (await readEmbedSigningSecret(db))!;
}
