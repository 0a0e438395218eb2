/**
 * The usual hold's statement (`tally_place_hold`), with the holds of one org that queue in this
 * process placed together (`tally_place_holds`, migration 0025). Each hold of an org waits for its
 * balance row lock, and a transaction keeps that lock until its commit is flushed, so holds placed
 * one at a time are served one statement and one commit after another: measured on a 2-core VM,
 * that capped one org at about 600 holds a second (at 2 000 a second the median hold took 1.5 s).
 * Holds that arrive while the org's statements are in flight wait here, then go in one statement
 * and one commit, each decided in turn exactly as alone (at 2 000 a second: median 2.7 ms).
 *
 * At most HOLDS_IN_FLIGHT_PER_ORG statements of an org are in Postgres at once: Postgres pays for
 * a queue of waiters on a row lock (each commit wakes them all, one gets the row, the rest sleep
 * again: measured, its CPU per hold grew from about 0.8 ms to 3 to 6 ms once tens had queued), and
 * two keep the lock busy (the next statement is already at the server when one commits).
 * Correctness does not rest on this: other processes' holds still meet at the lock.
 */
import type { Queryable } from '../../store/db.ts';
import { withRetry } from '../../store/retry.ts';
import { isDatabaseUnavailable } from '../../store/unavailable.ts';

export const HOLDS_IN_FLIGHT_PER_ORG = 2;
/** Holds placed by one statement at most: a batch's answers wait for its last hold. */
const MAX_HOLDS_PER_STATEMENT = 32;

/** One hold's arguments, named as `tally_place_holds` reads them. */
export interface HoldArgs {
  org: string;
  now: string;
  plan_needed: boolean;
  credits: boolean;
  untracked: boolean;
  member_external: string;
  new_member_id: string;
  expected_member_id: string | null;
  estimate: string;
  scopes: unknown[];
  scope_refs: unknown[];
  id: string;
  api_key_id: string | null;
  feature: string;
  provider: string;
  model: string;
  workspace: string;
  workspace_group: string;
  project: string;
  surface: string;
  conversation_id: string | null;
  message_id: string | null;
  parent_id: string | null;
  metadata: Record<string, unknown> | null;
  expires_at: string;
  spend_version: string;
}

export interface HoldOutcome {
  outcome: 'placed' | 'slow' | 'denied' | 'stale';
  resolved_member_id: string;
  room_units: string | null;
  hold_units: string;
}

interface Waiting {
  args: HoldArgs;
  resolve: (outcome: HoldOutcome) => void;
  reject: (error: unknown) => void;
}

interface OrgQueue {
  inFlight: number;
  waiting: Waiting[];
}
const queues = new Map<string, OrgQueue>();

/** Places one hold, with whatever other holds of its org are waiting when its turn comes. */
export function placeHold(db: Queryable, args: HoldArgs): Promise<HoldOutcome> {
  let queue = queues.get(args.org);
  if (!queue) {
    queue = { inFlight: 0, waiting: [] };
    queues.set(args.org, queue);
  }
  const placed = new Promise<HoldOutcome>((resolve, reject) => queue.waiting.push({ args, resolve, reject }));
  send(db, args.org, queue);
  return placed;
}

function send(db: Queryable, orgId: string, queue: OrgQueue): void {
  while (queue.inFlight < HOLDS_IN_FLIGHT_PER_ORG && queue.waiting.length > 0) {
    const batch = queue.waiting.splice(0, MAX_HOLDS_PER_STATEMENT);
    queue.inFlight++;
    void placeBatch(db, batch).finally(() => {
      queue.inFlight--;
      if (queue.inFlight === 0 && queue.waiting.length === 0) queues.delete(orgId);
      else send(db, orgId, queue);
    });
  }
}

async function placeBatch(db: Queryable, batch: Waiting[]): Promise<void> {
  if (batch.length > 1) {
    try {
      const rows = await withRetry(() =>
        db.query<HoldOutcome & { ordinal: string }>(
          'SELECT ordinal, outcome, resolved_member_id, room_units, hold_units FROM tally_place_holds($1) ORDER BY ordinal',
          [JSON.stringify(batch.map((w) => w.args))],
          { statement: 'tally_place_holds' },
        ),
      );
      for (const { ordinal, ...outcome } of rows) batch[Number(ordinal) - 1]!.resolve(outcome);
      return;
    } catch (error) {
      // A database out of reach fails every hold alike. Otherwise one hold's error failed the whole
      // statement: each is placed alone, to get its own answer.
      if (isDatabaseUnavailable(error)) {
        for (const w of batch) w.reject(error);
        return;
      }
    }
  }
  for (const w of batch) {
    await placeAlone(db, w.args).then(w.resolve, w.reject);
  }
}

function placeAlone(db: Queryable, a: HoldArgs): Promise<HoldOutcome> {
  return withRetry(async () => {
    const [row] = await db.query<HoldOutcome>(
      `SELECT outcome, resolved_member_id, room_units, hold_units FROM tally_place_hold($1, $2, $3, $4,
         $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)`,
      [
        a.org,
        a.now,
        a.plan_needed,
        a.credits,
        a.untracked,
        a.member_external,
        a.new_member_id,
        a.expected_member_id,
        a.estimate,
        JSON.stringify(a.scopes),
        JSON.stringify(a.scope_refs),
        a.id,
        a.api_key_id,
        a.feature,
        a.provider,
        a.model,
        a.workspace,
        a.workspace_group,
        a.project,
        a.surface,
        a.conversation_id,
        a.message_id,
        a.parent_id,
        a.metadata === null ? null : JSON.stringify(a.metadata),
        a.expires_at,
        a.spend_version,
      ],
      { statement: 'tally_place_hold' },
    );
    return row!;
  });
}
