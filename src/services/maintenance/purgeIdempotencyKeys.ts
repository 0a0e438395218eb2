import type { Db } from '../../store/db.ts';

/** Idempotency-Key answers are kept for 24 hours, as retries come within minutes. */
export async function purgeIdempotencyKeys(db: Db): Promise<{ purged: number }> {
  const rows = await db.query(
    "DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours' RETURNING 1",
  );
  return { purged: rows.length };
}
