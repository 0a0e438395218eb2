/**
 * Budgets: spend caps for a member, workspace, workspace group, project or API key, shown with
 * what was spent and held against them in their current period.
 */

import { newId } from '../../domain/ids.ts';
import { formatUnits, parseUnits } from '../../domain/money.ts';
import { anchorDayOf, billingCycle, calendarMonth } from '../../domain/periods.ts';
import { creditsToMoney } from '../../domain/pricing.ts';
import type { Queryable } from '../../store/db.ts';
import { audit, type Ctx, scopeOrg } from '../context.ts';
import { notFound } from '../errors.ts';
import { loadOrg, type OrgRow } from '../orgs/shape.ts';
import { decodeCursor, type Page, toPage } from '../pagination.ts';
import { unitValue } from './getLimits.ts';
import { counterKey, readCounters, toUnits } from './scopes.ts';

export type BudgetScopeKind = 'member' | 'workspace' | 'workspace_group' | 'project' | 'api_key';

interface BudgetRow {
  org_id: string;
  id: string;
  name: string;
  scope_kind: BudgetScopeKind;
  scope_id: string;
  period: 'month' | 'cycle';
  amount: string;
  enforcement: 'hard' | 'soft';
  created_at: Date;
}

const COLUMNS =
  'org_id, id, name, scope_kind, scope_id, period, amount::text AS amount, enforcement, created_at';

/** A budget's spend in its current period, in the org's currency (USD at provider cost for BYOM). */
interface PeriodSpend {
  start: string;
  end: string;
  spent: string;
  held: string;
  remaining: string;
  /** `warning` from 75 % of the amount spent, as the first budget alert fires. */
  status: 'ok' | 'warning' | 'exceeded';
}

const WARNING_PERCENT = 75n;

const budgetView = (b: BudgetRow, current: PeriodSpend) => ({
  id: b.id,
  object: 'budget' as const,
  org_id: b.org_id,
  name: b.name,
  scope: { kind: b.scope_kind, id: b.scope_id },
  period: b.period,
  amount: formatUnits(parseUnits(b.amount, 6), 6),
  enforcement: b.enforcement,
  created_at: b.created_at.toISOString(),
  current_period: current,
});
export type BudgetView = ReturnType<typeof budgetView>;

/** The budgets as the API shows them: each with what was spent and held in its current period. */
async function budgetViews(q: Queryable, org: OrgRow, rows: BudgetRow[], now: Date): Promise<BudgetView[]> {
  const periods = rows.map((b) =>
    b.period === 'month'
      ? calendarMonth(org.timezone, now)
      : billingCycle(org.timezone, anchorDayOf(org.billing_cycle_anchor), now),
  );
  const scopes = rows.map((b, i) => ({ scope: `budget:${b.id}`, periodStart: periods[i]!.start }));
  const counters = await readCounters(q, org.id, scopes);
  const money = (units: bigint) => creditsToMoney(units, unitValue(org));
  return rows.map((b, i) => {
    const { spent, held } = counters.get(counterKey(scopes[i]!)) ?? { spent: 0n, held: 0n };
    const amount = toUnits(org, b.amount);
    const status = spent >= amount ? 'exceeded' : spent * 100n >= amount * WARNING_PERCENT ? 'warning' : 'ok';
    return budgetView(b, {
      start: periods[i]!.start.toISOString(),
      end: periods[i]!.end.toISOString(),
      spent: money(spent),
      held: money(held),
      remaining: money(spent + held < amount ? amount - spent - held : 0n),
      status,
    });
  });
}

export interface CreateBudgetInput {
  name: string;
  scope: { kind: BudgetScopeKind; id: string };
  period: 'month' | 'cycle';
  amount: string;
  enforcement: 'hard' | 'soft';
}

export async function createBudget(ctx: Ctx, orgId: string, input: CreateBudgetInput): Promise<BudgetView> {
  scopeOrg(ctx, orgId, 'limits:write');
  return ctx.db.transaction(async (tx) => {
    const org = await loadOrg(tx, orgId);
    if (input.scope.kind === 'member') {
      const found = await tx.query('SELECT 1 FROM members WHERE org_id = $1 AND id = $2', [
        orgId,
        input.scope.id,
      ]);
      if (found.length === 0) throw notFound('Member', 'scope.id');
    }
    const [row] = await tx.query<BudgetRow>(
      `INSERT INTO budgets (org_id, id, name, scope_kind, scope_id, period, amount, enforcement)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${COLUMNS}`,
      [
        orgId,
        newId('bud'),
        input.name,
        input.scope.kind,
        input.scope.id,
        input.period,
        input.amount,
        input.enforcement,
      ],
    );
    await audit(tx, ctx, orgId, 'budget.created', row!.id, { ...input });
    return (await budgetViews(tx, org, [row!], new Date()))[0]!;
  });
}

export async function listBudgets(
  ctx: Ctx,
  orgId: string,
  query: { limit: number; cursor?: string },
): Promise<Page<BudgetView>> {
  scopeOrg(ctx, orgId, 'usage:read');
  const after = decodeCursor(query.cursor, ['text']);
  const org = await loadOrg(ctx.db, orgId);
  const rows = await ctx.db.query<BudgetRow>(
    `SELECT ${COLUMNS} FROM budgets WHERE org_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR id > $2)
      ORDER BY id LIMIT $3`,
    [orgId, after?.[0] ?? null, query.limit + 1],
  );
  const page = toPage(
    rows,
    query.limit,
    (r) => [r.id],
    (r) => r,
  );
  return { ...page, data: await budgetViews(ctx.db, org, page.data, new Date()) };
}

export async function deleteBudget(ctx: Ctx, orgId: string, budgetId: string): Promise<BudgetView> {
  scopeOrg(ctx, orgId, 'limits:write');
  return ctx.db.transaction(async (tx) => {
    const org = await loadOrg(tx, orgId);
    const [row] = await tx.query<BudgetRow>(
      `UPDATE budgets SET deleted_at = now() WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING ${COLUMNS}`,
      [orgId, budgetId],
    );
    if (!row) throw notFound('Budget', 'budget');
    await audit(tx, ctx, orgId, 'budget.deleted', budgetId);
    return (await budgetViews(tx, org, [row], new Date()))[0]!;
  });
}
