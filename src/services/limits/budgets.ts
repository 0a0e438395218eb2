/** Budgets: spend caps for a member, workspace, workspace group, project or API key. */

import { newId } from '../../domain/ids.ts';
import { formatUnits, parseUnits } from '../../domain/money.ts';
import { audit, type Ctx, scopeOrg } from '../context.ts';
import { notFound } from '../errors.ts';
import { loadOrg } from '../orgs/shape.ts';
import { decodeCursor, type Page, toPage } from '../pagination.ts';

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

const budgetView = (b: BudgetRow) => ({
  id: b.id,
  object: 'budget' as const,
  org_id: b.org_id,
  name: b.name,
  scope: { kind: b.scope_kind, id: b.scope_id },
  period: b.period,
  amount: formatUnits(parseUnits(b.amount, 6), 6),
  enforcement: b.enforcement,
  created_at: b.created_at.toISOString(),
});
export type BudgetView = ReturnType<typeof budgetView>;

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
    await loadOrg(tx, orgId);
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
    return budgetView(row!);
  });
}

export async function listBudgets(
  ctx: Ctx,
  orgId: string,
  query: { limit: number; cursor?: string },
): Promise<Page<BudgetView>> {
  scopeOrg(ctx, orgId, 'usage:read');
  const after = decodeCursor(query.cursor, ['text']);
  const rows = await ctx.db.query<BudgetRow>(
    `SELECT ${COLUMNS} FROM budgets WHERE org_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR id > $2)
      ORDER BY id LIMIT $3`,
    [orgId, after?.[0] ?? null, query.limit + 1],
  );
  return toPage(rows, query.limit, (r) => [r.id], budgetView);
}

export async function deleteBudget(ctx: Ctx, orgId: string, budgetId: string): Promise<BudgetView> {
  scopeOrg(ctx, orgId, 'limits:write');
  return ctx.db.transaction(async (tx) => {
    const [row] = await tx.query<BudgetRow>(
      `UPDATE budgets SET deleted_at = now() WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING ${COLUMNS}`,
      [orgId, budgetId],
    );
    if (!row) throw notFound('Budget', 'budget');
    await audit(tx, ctx, orgId, 'budget.deleted', budgetId);
    return budgetView(row);
  });
}
