/**
 * Makes sure an operator key exists. A key from TALLY_ADMIN_KEY is registered by its hash (a new
 * value replaces the old one) and is then the only one: a key generated before is revoked, since it
 * was printed to a terminal and the logs, and choosing a key means no other works. Without the
 * variable, a key registered from it before is revoked (taking the variable out must not leave its
 * key working), and when no other operator key is active one is generated and returned so it can be
 * printed once.
 */
import { hashSecret, newId, newSecret } from '../../domain/ids.ts';
import type { Db } from '../../store/db.ts';

export async function ensureOperatorKey(db: Db, configured: string | undefined): Promise<string | null> {
  if (configured) {
    const hash = hashSecret(configured);
    // Insert, then update: processes starting at once insert the same row, and an upsert on `id`
    // alone let the loser fail on the key_hash index instead of finding the row there.
    await db.query(`INSERT INTO operator_keys (id, key_hash) VALUES ('op_env', $1) ON CONFLICT DO NOTHING`, [
      hash,
    ]);
    await db.query(
      `UPDATE operator_keys SET key_hash = $1, revoked_at = NULL
        WHERE id = 'op_env' AND (key_hash <> $1 OR revoked_at IS NOT NULL)`,
      [hash],
    );
    await db.query(`UPDATE operator_keys SET revoked_at = now() WHERE id <> 'op_env' AND revoked_at IS NULL`);
    return null;
  }
  await db.query(`UPDATE operator_keys SET revoked_at = now() WHERE id = 'op_env' AND revoked_at IS NULL`);
  const secret = newSecret('op');
  const inserted = await db.query(
    `INSERT INTO operator_keys (id, key_hash)
     SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM operator_keys WHERE revoked_at IS NULL AND id <> 'op_env')
     RETURNING id`,
    [newId('op'), hashSecret(secret)],
  );
  return inserted.length > 0 ? secret : null;
}
