import { formatCredits } from '../../domain/money.ts';
import { type Ctx, scopeOrg } from '../context.ts';
import { decodeCursor, type Page, toPage } from '../pagination.ts';

interface EntryRow {
  id: string;
  kind: 'grant' | 'debit' | 'overage' | 'settlement' | 'expiry' | 'void' | 'hold' | 'hold_release';
  grant_id: string | null;
  amount: string;
  event_id: string | null;
  authorization_id: string | null;
  memo: string | null;
  created_at: Date;
}

const entryView = (r: EntryRow) => ({
  id: `le_${r.id}`,
  object: 'ledger_entry' as const,
  kind: r.kind,
  grant_id: r.grant_id,
  amount_credits: formatCredits(BigInt(r.amount)),
  event_id: r.event_id,
  authorization_id: r.authorization_id,
  memo: r.memo,
  created_at: r.created_at.toISOString(),
});
export type LedgerEntryView = ReturnType<typeof entryView>;

/** The org's ledger, newest first; filter by grant to trace a grant's funding and draws. */
export async function listLedger(
  ctx: Ctx,
  orgId: string,
  query: { limit: number; cursor?: string; grant?: string; event?: string },
): Promise<Page<LedgerEntryView>> {
  scopeOrg(ctx, orgId, 'usage:read');
  const after = decodeCursor(query.cursor, ['integer']);
  const rows = await ctx.db.query<EntryRow>(
    `SELECT id, kind, grant_id, amount, event_id, authorization_id, memo, created_at FROM ledger_entries
      WHERE org_id = $1 AND ($2::bigint IS NULL OR id < $2) AND ($3::text IS NULL OR grant_id = $3)
        AND ($4::text IS NULL OR event_id = $4)
      ORDER BY id DESC LIMIT $5`,
    [orgId, after?.[0] ?? null, query.grant ?? null, query.event ?? null, query.limit + 1],
  );
  return toPage(rows, query.limit, (r) => [r.id], entryView);
}
