import type { Db } from '../../store/db.ts';
import { ORG_COLUMNS, type OrgRow } from '../orgs/shape.ts';
import { ensurePlanGrant } from './ensurePlanGrant.ts';

/** Issues the plan allowance of the current cycle to every credits org that lacks it. */
export async function issuePlanGrants(db: Db, now = new Date()): Promise<{ orgs: number }> {
  let after = '';
  let count = 0;
  for (;;) {
    const orgs = await db.query<OrgRow>(
      `SELECT ${ORG_COLUMNS} FROM orgs WHERE billing_mode = 'credits' AND plan_allowance_credits > 0 AND id > $1
        ORDER BY id LIMIT 500`,
      [after],
    );
    if (orgs.length === 0) return { orgs: count };
    for (const org of orgs) await db.transaction((tx) => ensurePlanGrant(tx, org, now));
    count += orgs.length;
    after = orgs[orgs.length - 1]!.id;
  }
}
