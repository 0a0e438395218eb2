/** Members are known by the host app's user id; one seen for the first time is created. */
import { newId } from '../../domain/ids.ts';
import type { Queryable } from '../../store/db.ts';

export const memberKey = (orgId: string, externalId: string) => `${orgId}\u0000${externalId}`;

/** Returns the Tally member id for each (org, external id), creating missing members in key order. */
export async function ensureMembers(
  tx: Queryable,
  refs: { orgId: string; externalId: string }[],
): Promise<Map<string, string>> {
  const unique = [...new Map(refs.map((r) => [memberKey(r.orgId, r.externalId), r])).entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, r]) => ({ org_id: r.orgId, external_id: r.externalId, id: newId('mem') }));
  const json = JSON.stringify(unique);
  await tx.query(
    `INSERT INTO members (org_id, id, external_id, role)
     SELECT org_id, id, external_id, 'member' FROM jsonb_to_recordset($1::jsonb) AS x(org_id text, id text, external_id text)
     ON CONFLICT (org_id, external_id) DO NOTHING`,
    [json],
  );
  const rows = await tx.query<{ org_id: string; id: string; external_id: string }>(
    `SELECT m.org_id, m.id, m.external_id FROM members m
       JOIN jsonb_to_recordset($1::jsonb) AS x(org_id text, external_id text)
         ON m.org_id = x.org_id AND m.external_id = x.external_id`,
    [json],
  );
  return new Map(rows.map((r) => [memberKey(r.org_id, r.external_id), r.id]));
}
