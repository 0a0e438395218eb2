/** Members are known by the host app's user id; one seen for the first time is created. */
import { newId } from '../../domain/ids.ts';
import type { Queryable } from '../../store/db.ts';

export const memberKey = (orgId: string, externalId: string) => `${orgId}\u0000${externalId}`;

/**
 * Returns the Tally member id for each (org, external id), creating missing members in key order.
 * Known members are only read: inserting them again would wait on every concurrent batch that
 * saw the same member. A member created by another transaction after this statement's snapshot
 * is found by the next round.
 */
export async function ensureMembers(
  q: Queryable,
  refs: { orgId: string; externalId: string }[],
): Promise<Map<string, string>> {
  let wanted = [...new Map(refs.map((r) => [memberKey(r.orgId, r.externalId), r])).entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, r]) => ({ org_id: r.orgId, external_id: r.externalId, id: newId('mem') }));
  const ids = new Map<string, string>();
  for (let round = 0; wanted.length > 0; round++) {
    if (round === 3) throw new Error('members could not be resolved: concurrent inserts kept racing');
    const rows = await q.query<{ org_id: string; id: string; external_id: string }>(
      `WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(org_id text, id text, external_id text)),
       known AS (
         SELECT m.org_id, m.id, m.external_id FROM members m
           JOIN x ON m.org_id = x.org_id AND m.external_id = x.external_id
       ), added AS (
         INSERT INTO members (org_id, id, external_id, role)
         SELECT x.org_id, x.id, x.external_id, 'member' FROM x
          WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.org_id = x.org_id AND k.external_id = x.external_id)
         ON CONFLICT (org_id, external_id) DO NOTHING
         RETURNING org_id, id, external_id
       )
       SELECT * FROM known UNION ALL SELECT * FROM added`,
      [JSON.stringify(wanted)],
    );
    for (const r of rows) ids.set(memberKey(r.org_id, r.external_id), r.id);
    wanted = wanted.filter((w) => !ids.has(memberKey(w.org_id, w.external_id)));
  }
  return ids;
}
