/** Members are known by the host app's user id; one seen for the first time is created. */
import { newId } from '../../domain/ids.ts';
import type { Queryable } from '../../store/db.ts';

export const memberKey = (orgId: string, externalId: string) => `${orgId}\u0000${externalId}`;

export interface MemberRef {
  orgId: string;
  externalId: string;
}

/** Each member once, by `memberKey`. */
const byKey = (refs: MemberRef[]) => new Map(refs.map((r) => [memberKey(r.orgId, r.externalId), r]));

/** The ids of the members that exist among `refs`, by `memberKey`; nothing is created. */
export async function findMembers(q: Queryable, refs: MemberRef[]): Promise<Map<string, string>> {
  // A batch names each member many times: each is looked up once.
  const distinct = [...byKey(refs).values()];
  const rows = distinct.length > 0 ? await readMembers(q, distinct) : [];
  return new Map(rows.map((r) => [memberKey(r.org_id, r.external_id), r.id]));
}

function readMembers(q: Queryable, refs: MemberRef[]) {
  return q.query<{ org_id: string; id: string; external_id: string }>(
    `SELECT m.org_id, m.id, m.external_id FROM members m
       JOIN unnest($1::text[], $2::text[]) AS x (org_id, external_id)
         ON m.org_id = x.org_id AND m.external_id = x.external_id`,
    [refs.map((m) => m.orgId), refs.map((m) => m.externalId)],
  );
}

/**
 * Returns the Tally member id for each (org, external id), creating missing members in key order
 * (`known`: ids the caller read already).
 * Known members are only read (the usual case, one statement): inserting them again would wait on
 * every concurrent batch that saw the same member, and ids are drawn only for the missing ones.
 * A member another transaction creates meanwhile makes the insert skip it; the next round reads it.
 */
export async function ensureMembers(
  q: Queryable,
  refs: MemberRef[],
  known: Map<string, string> = new Map(),
): Promise<Map<string, string>> {
  let missing = [...byKey(refs).entries()]
    .filter(([key]) => !known.has(key))
    // Byte order of the UTF-8 keys, as Postgres's "C" collation sorts (tally_place_holds creates
    // members in it too): a shared order never deadlocks.
    .sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .map(([, r]) => r);
  const ids = new Map(known);
  const found = (rows: { org_id: string; id: string; external_id: string }[]) => {
    for (const r of rows) ids.set(memberKey(r.org_id, r.external_id), r.id);
    missing = missing.filter((m) => !ids.has(memberKey(m.orgId, m.externalId)));
  };
  for (let round = 0; missing.length > 0; round++) {
    if (round === 3) throw new Error('members could not be resolved: concurrent inserts kept racing');
    found(await readMembers(q, missing));
    if (missing.length === 0) break;
    found(
      await q.query(
        `INSERT INTO members (org_id, id, external_id, role)
         SELECT org_id, id, external_id, 'member'
           FROM unnest($1::text[], $2::text[], $3::text[]) AS x (org_id, id, external_id)
         ON CONFLICT (org_id, external_id) DO NOTHING
         RETURNING org_id, id, external_id`,
        [missing.map((m) => m.orgId), missing.map(() => newId('mem')), missing.map((m) => m.externalId)],
      ),
    );
  }
  return ids;
}
