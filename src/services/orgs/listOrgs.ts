import { decimalUnits, formatCredits, formatUnits } from '../../domain/money.ts';
import { anchorDayOf } from '../../domain/periods.ts';
import { resolveRange } from '../../domain/ranges.ts';
import { COST_SCALE } from '../../domain/usageTotals.ts';
import type { Queryable } from '../../store/db.ts';
import { type Ctx, permissionsOf } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { decodeCursor, type Page, toPage } from '../pagination.ts';
import { ORG_COLUMNS, type OrgRow, type OrgView, orgView } from './shape.ts';

export interface ListOrgsQuery {
  limit: number;
  cursor?: string | undefined;
  /** Part of the name, any case. */
  q?: string | undefined;
  include?: 'month_spend' | undefined;
}

/** What an org spent this calendar month in its own time zone, as the usage summary's `mtd` range counts it. */
export interface MonthSpend {
  start: string;
  end: string;
  calls: number;
  credits: string;
  /** In `currency`: the org's for credit orgs, USD for BYOM (BYOK tracks no cost). */
  cost: string;
  currency: OrgRow['currency'];
}

export type OrgListItem = OrgView & { month_spend?: MonthSpend };

/** LIKE's wildcards typed in a search are searched for literally. */
const likePattern = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** The operator sees every org; an org key or embed token sees its own org only. */
export async function listOrgs(ctx: Ctx, query: ListOrgsQuery): Promise<Page<OrgListItem>> {
  const after = decodeCursor(query.cursor, ['text']);
  const own = ctx.principal.kind === 'operator' ? null : ctx.principal.orgId;
  if (query.include === 'month_spend' && !permissionsOf(ctx.principal).includes('usage:read')) {
    throw new ServiceError(403, 'forbidden', 'Spend needs usage:read', 'include');
  }
  const q = query.q?.trim() ? likePattern(query.q.trim()) : null;
  const rows = await ctx.db.query<OrgRow>(
    `SELECT ${ORG_COLUMNS} FROM orgs
      WHERE ($1::text IS NULL OR id = $1) AND ($2::text IS NULL OR id > $2) AND ($4::text IS NULL OR name ILIKE $4)
      ORDER BY id LIMIT $3`,
    [own, after?.[0] ?? null, query.limit + 1, q],
  );
  const page = toPage(
    rows,
    query.limit,
    (r) => [r.id],
    (r) => r,
  );
  if (query.include !== 'month_spend') return { ...page, data: page.data.map(orgView) };
  const spend = await monthSpendOf(ctx.db, page.data, new Date());
  return { ...page, data: page.data.map((r) => ({ ...orgView(r), month_spend: spend.get(r.id)! })) };
}

/** One query for a page of orgs: each org's month starts at its own local midnight. */
async function monthSpendOf(db: Queryable, orgs: OrgRow[], now: Date): Promise<Map<string, MonthSpend>> {
  const months = orgs.map((org) =>
    resolveRange(
      { range: 'mtd' },
      { zone: org.timezone, cycleAnchorDay: anchorDayOf(org.billing_cycle_anchor), now },
    ),
  );
  const sums = await db.query<{ org_id: string; calls: string; credits: string; cost: string }>(
    `SELECT m.org_id, coalesce(sum(h.calls), 0)::text AS calls, coalesce(sum(h.credits), 0)::text AS credits,
            coalesce(sum(h.cost), 0)::text AS cost
       FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS m(org_id, start_at, end_at)
       LEFT JOIN usage_hourly_total h ON h.org_id = m.org_id AND h.bucket >= m.start_at AND h.bucket < m.end_at
      GROUP BY m.org_id`,
    [orgs.map((o) => o.id), months.map((m) => m.start), months.map((m) => m.end)],
  );
  const byOrg = new Map(sums.map((s) => [s.org_id, s]));
  return new Map(
    orgs.map((org, i) => {
      const sum = byOrg.get(org.id)!;
      return [
        org.id,
        {
          start: months[i]!.start.toISOString(),
          end: months[i]!.end.toISOString(),
          calls: Number(sum.calls),
          credits: formatCredits(BigInt(sum.credits)),
          cost: formatUnits(decimalUnits(sum.cost, COST_SCALE), COST_SCALE),
          currency: org.billing_mode === 'byom' ? ('USD' as const) : org.currency,
        },
      ];
    }),
  );
}
