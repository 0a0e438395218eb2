import type { Db } from '../../store/db.ts';
import { ORG_COLUMNS, type OrgRow } from '../orgs/shape.ts';
import { ensurePlanGrant } from './ensurePlanGrant.ts';

/**
 * Issues the plan allowance of the current cycle to every credits org that lacks it; answers how
 * many it issued (the job runner logs a run only when that is above zero, and most runs issue none).
 */
export async function issuePlanGrants(db: Db, now = new Date()): Promise<{ issued: number }> {
  let after = '';
  let issued = 0;
  for (;;) {
    const orgs = await db.query<OrgRow>(
      `SELECT ${ORG_COLUMNS} FROM orgs WHERE billing_mode = 'credits' AND plan_allowance_credits > 0 AND id > $1
        ORDER BY id LIMIT 500`,
      [after],
    );
    if (orgs.length === 0) return { issued };
    for (const org of orgs) {
      if (await db.transaction((tx) => ensurePlanGrant(tx, org, now))) issued += 1;
    }
    after = orgs[orgs.length - 1]!.id;
  }
}
