import { erasedMetadata, scrubPersonal } from '../../domain/erasure.ts';
import type { Queryable } from '../../store/db.ts';
import { audit, type Ctx, scopeOrg } from '../context.ts';
import { loadMember, MEMBER_COLUMNS, type MemberRow, type MemberView, memberView } from './shape.ts';

/**
 * Erases a member's personal data (name, email, the host app's id). Events point at the member
 * row by its Tally id only, so every amount and total stays as it was. Webhook payloads name
 * members by that id too, and delivery logs keep only a status and an error line, never a body.
 * The stored answers of Idempotency-Key requests (kept 24 hours for replays) are redacted in the
 * same transaction, so a replay shows the member as erased, and so is what the member's calls
 * carried in their metadata (erasedMetadata).
 */
export async function eraseMember(ctx: Ctx, orgId: string, memberId: string): Promise<MemberView> {
  scopeOrg(ctx, orgId, 'members:write');
  return ctx.db.transaction(async (tx) => {
    const before = await loadMember(tx, orgId, memberId);
    const [row] = await tx.query<MemberRow>(
      `UPDATE members SET name = NULL, email = NULL, external_id = NULL, status = 'removed',
              removed_at = COALESCE(removed_at, now()), erased_at = COALESCE(erased_at, now())
        WHERE org_id = $1 AND id = $2 RETURNING ${MEMBER_COLUMNS}`,
      [orgId, memberId],
    );
    const personal = [before.name, before.email, before.external_id].filter(
      (s): s is string => typeof s === 'string' && s !== '',
    );
    const redacted = await redactStoredAnswers(tx, orgId, memberId, personal);
    const events = await eraseEventMetadata(tx, orgId, memberId, personal);
    await audit(tx, ctx, orgId, 'member.erased', memberId, {
      redacted_answers: redacted,
      events_erased: events,
    });
    return memberView(row!);
  });
}

/**
 * Stored answers to this org's keys (and the operator's answers naming the org) that name the
 * member or hold one of its personal strings: the member object's name, email and external id
 * become null, as in the erased member; elsewhere a string equal to one of them becomes null, and
 * one containing it has it replaced by "[erased]".
 */
async function redactStoredAnswers(
  tx: Queryable,
  orgId: string,
  memberId: string,
  personal: string[],
): Promise<number> {
  if (personal.length === 0) return 0;
  const rows = await tx.query<{ principal: string; key: string; text: string }>(
    `SELECT principal, key, response #>> '{}' AS text FROM idempotency_keys
      WHERE jsonb_typeof(response) = 'string'
        AND (principal IN (SELECT id FROM api_keys WHERE org_id = $1)
             -- A member's embed tokens keep their answers per role (replayScope, idempotency.ts).
             OR split_part(principal, '#', 1) IN (SELECT id FROM members WHERE org_id = $1)
             OR (principal IN (SELECT id FROM operator_keys) AND strpos(response #>> '{}', $1) > 0))
        AND (strpos(response #>> '{}', $2) > 0
             OR EXISTS (SELECT 1 FROM unnest($3::text[]) AS p (s) WHERE strpos(response #>> '{}', p.s) > 0))
      FOR UPDATE`,
    [orgId, memberId, personal],
  );
  // The member as an answer showed it (its name may have changed since): erased field by field.
  const ERASED_FIELDS = ['name', 'email', 'external_id'];
  const memberFields = (record: Record<string, unknown>) => (record.id === memberId ? ERASED_FIELDS : []);
  const scrub = (value: unknown) => scrubPersonal(value, personal, memberFields);
  let changed = 0;
  for (const row of rows) {
    let text: string;
    try {
      text = JSON.stringify(scrub(JSON.parse(row.text)));
    } catch {
      text = scrub(row.text) as string;
    }
    if (text === row.text) continue;
    await tx.query('UPDATE idempotency_keys SET response = $3 WHERE principal = $1 AND key = $2', [
      row.principal,
      row.key,
      JSON.stringify(text),
    ]);
    changed++;
  }
  return changed;
}

/** Rows per UPDATE when rewriting a member's events. */
const EVENTS_PER_UPDATE = 1000;

/**
 * Rewrites the metadata of the member's events as erasedMetadata makes it; the content hash stays,
 * so a client resending one of the events is still told it is a duplicate. There is no index on an
 * event's member: the org's events are read once, which an erasure (rare) can afford.
 */
async function eraseEventMetadata(
  tx: Queryable,
  orgId: string,
  memberId: string,
  personal: string[],
): Promise<number> {
  const rows = await tx.query<{ id: string; metadata: Record<string, unknown> }>(
    `SELECT id, metadata FROM events WHERE org_id = $1 AND member_id = $2 AND metadata IS NOT NULL FOR UPDATE`,
    [orgId, memberId],
  );
  const changed = rows.flatMap((r) => {
    const metadata = erasedMetadata(r.metadata, personal);
    return JSON.stringify(metadata) === JSON.stringify(r.metadata) ? [] : [{ id: r.id, metadata }];
  });
  for (let at = 0; at < changed.length; at += EVENTS_PER_UPDATE) {
    await tx.query(
      `UPDATE events e SET metadata = x.metadata
         FROM jsonb_to_recordset($3::jsonb) AS x (id text, metadata jsonb)
        WHERE e.org_id = $1 AND e.member_id = $2 AND e.id = x.id`,
      [orgId, memberId, JSON.stringify(changed.slice(at, at + EVENTS_PER_UPDATE))],
    );
  }
  return changed.length;
}
