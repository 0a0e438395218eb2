/**
 * A call billed through an authorization is recorded under the authorization's id (its late rest
 * under `<id>:late`). Sent as an event, such an id would count the call twice, or, taken first,
 * leave the hold no event id to end under: its void and its expiry would be refused for ever.
 */
import { hasPrefix } from '../../domain/ids.ts';
import type { UsageEventInput } from '../../domain/usageEvent.ts';
import type { Queryable } from '../../store/db.ts';
import type { OrgRow } from '../orgs/shape.ts';
import { eventKey } from './recordEvents.ts';

/**
 * The `eventKey`s of the events whose id names an authorization of their own org (`orgs`: each
 * event's). Ingest asks for every batch: nothing is read or built unless an id looks like one.
 */
export async function callEventIds(
  q: Queryable,
  events: UsageEventInput[],
  orgs: OrgRow[],
): Promise<Set<string>> {
  const orgIds: string[] = [];
  const ids: string[] = [];
  events.forEach((e, i) => {
    if (!hasPrefix(e.id, 'auth')) return;
    orgIds.push(orgs[i]!.id);
    ids.push(e.id);
  });
  if (ids.length === 0) return new Set();
  const rows = await q.query<{ org_id: string; id: string }>(
    `SELECT x.org_id, x.id FROM unnest($1::text[], $2::text[]) AS x (org_id, id)
      WHERE EXISTS (SELECT FROM authorizations a WHERE a.org_id = x.org_id AND a.id = split_part(x.id, ':', 1))`,
    [orgIds, ids],
  );
  return new Set(rows.map((r) => eventKey(r.org_id, r.id)));
}
