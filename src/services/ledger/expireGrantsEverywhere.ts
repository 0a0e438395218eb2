import type { Db } from '../../store/db.ts';
import { lockBalance } from './balances.ts';
import { expireDueGrants } from './expireGrants.ts';

/** Expires due grants of every org, one org per transaction. */
export async function expireGrantsEverywhere(db: Db, now = new Date()): Promise<{ orgs: number }> {
  const orgs = await db.query<{ org_id: string }>(
    `SELECT DISTINCT org_id FROM grants WHERE status = 'active' AND expires_at <= $1 LIMIT 1000`,
    [now.toISOString()],
  );
  for (const { org_id } of orgs) {
    await db.transaction(async (tx) => {
      await lockBalance(tx, org_id);
      await expireDueGrants(tx, org_id, now);
    });
  }
  return { orgs: orgs.length };
}
