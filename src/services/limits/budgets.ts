/**
 * Budgets: spend caps for a member, workspace, workspace group, project or API key, shown with
 * what was spent and held against them in their current period.
 */

import { newId } from '../../domain/ids.ts';
import { formatUnits, parseUnits } from '../../domain/money.ts';
import { anchorDayOf, billingCycle, calendarMonth } from '../../domain/periods.ts';
import { creditsToMoney } from '../../domain/pricing.ts';
import type { Queryable } from '../../store/db.ts';
import { ALERT_PERCENTAGES } from '../alerts/evaluateSpendAlerts.ts';
import { audit, type Ctx, scopeOrg } from '../context.ts';
import { notFound } from '../errors.ts';
import { lockBalance } from '../ledger/balances.ts';
import { findMemberId } from '../members/shape.ts';
import { loadOrg, type OrgRow } from '../orgs/shape.ts';
import { decodeCursor, type Page, toPage } from '../pagination.ts';
import { type MemberLabelRow, memberLabel } from '../usage/scope.ts';
import { requireTrackedSpend, unitValue } from './getLimits.ts';
import { COUNTER_UPSERT, counterKey, readCounters, SCOPE_FIELD, toUnits } from './scopes.ts';

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
  status: BudgetStatus;
}

export const BUDGET_STATUSES = ['ok', 'warning', 'caution', 'critical', 'exceeded'] as const;
type BudgetStatus = (typeof BUDGET_STATUSES)[number];
/** How far a budget's spend has gone: the status that begins at each share where its alerts fire. */
const STATUS_FROM: Record<(typeof ALERT_PERCENTAGES)[number], Exclude<BudgetStatus, 'ok'>> = {
  75: 'warning',
  90: 'caution',
  95: 'critical',
  100: 'exceeded',
};

/** The status of the highest alert share the spend has reached, else ok. */
function statusOf(spent: bigint, amount: bigint): BudgetStatus {
  const reached = ALERT_PERCENTAGES.filter((percent) => spent * 100n >= amount * BigInt(percent)).at(-1);
  return reached === undefined ? 'ok' : STATUS_FROM[reached];
}

const budgetView = (b: BudgetRow, label: string, current: PeriodSpend) => ({
  id: b.id,
  object: 'budget' as const,
  org_id: b.org_id,
  name: b.name,
  scope: { kind: b.scope_kind, id: b.scope_id, label },
  period: b.period,
  amount: formatUnits(parseUnits(b.amount, 6), 6),
  enforcement: b.enforcement,
  created_at: b.created_at.toISOString(),
  current_period: current,
});
export type BudgetView = ReturnType<typeof budgetView>;

/** The period of a budget that `now` falls in, in the org's time zone. */
const periodOf = (org: OrgRow, b: Pick<BudgetRow, 'period'>, now: Date) =>
  b.period === 'month'
    ? calendarMonth(org.timezone, now)
    : billingCycle(org.timezone, anchorDayOf(org.billing_cycle_anchor), now);

/**
 * The units (as spend counters keep them) the budget's scope spent from `start` to now: the
 * hourly rollups' whole hours, and raw events before the first whole hour (a zone half an hour
 * off UTC starts its months mid-hour).
 */
async function spentSince(q: Queryable, org: OrgRow, b: BudgetRow, start: Date): Promise<bigint> {
  // BYOM orgs count their events' cost, micro-USD each; the others their credits.
  const units = org.billing_mode === 'byom' ? 'cost * 1000000' : 'credits';
  const column = SCOPE_FIELD[b.scope_kind]!;
  const firstHour = new Date(Math.ceil(start.getTime() / 3_600_000) * 3_600_000);
  const [row] = await q.query<{ spent: string }>(
    `SELECT (coalesce((SELECT sum(${units}) FROM usage_hourly
                        WHERE org_id = $1 AND bucket >= $3 AND ${column} = $4), 0)
           + coalesce((SELECT sum(${units}) FROM events
                        WHERE org_id = $1 AND occurred_at >= $2 AND occurred_at < $3
                          AND coalesce(${column}, '') = $4), 0))::bigint::text AS spent`,
    [org.id, start.toISOString(), firstHour.toISOString(), b.scope_id],
  );
  return BigInt(row!.spent);
}

/** The members the budgets cover, by Tally id, to name them as usage does. */
async function budgetMembers(q: Queryable, orgId: string, rows: BudgetRow[]) {
  const ids = rows.filter((b) => b.scope_kind === 'member').map((b) => b.scope_id);
  if (ids.length === 0) return new Map<string, MemberLabelRow>();
  const members = await q.query<MemberLabelRow>(
    'SELECT id, name, email, external_id, status FROM members WHERE org_id = $1 AND id = ANY($2::text[])',
    [orgId, ids],
  );
  return new Map(members.map((m) => [m.id, m]));
}

/** The budgets as the API shows them: each with what was spent and held in its current period. */
async function budgetViews(q: Queryable, org: OrgRow, rows: BudgetRow[], now: Date): Promise<BudgetView[]> {
  const periods = rows.map((b) => periodOf(org, b, now));
  const scopes = rows.map((b, i) => ({ scope: `budget:${b.id}`, periodStart: periods[i]!.start }));
  const counters = await readCounters(q, org.id, scopes);
  const money = (units: bigint) => creditsToMoney(units, unitValue(org));
  const members = await budgetMembers(q, org.id, rows);
  return rows.map((b, i) => {
    const { spent, held } = counters.get(counterKey(scopes[i]!)) ?? { spent: 0n, held: 0n };
    const amount = toUnits(org, b.amount);
    const label = b.scope_kind === 'member' ? memberLabel(members.get(b.scope_id)) : b.scope_id;
    return budgetView(b, label, {
      start: periods[i]!.start.toISOString(),
      end: periods[i]!.end.toISOString(),
      spent: money(spent),
      held: money(held),
      remaining: money(spent + held < amount ? amount - spent - held : 0n),
      status: statusOf(spent, amount),
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

/**
 * The scope as stored. A member may be named by its Tally id or the host app's user id; the budget
 * keeps the Tally id, so it follows the member whatever the host app's id becomes. An API key is
 * one of the org's keys (an API or a gateway key: the calls either makes carry its id); workspaces,
 * groups and projects are the client's names, which a budget may set before their first call.
 */
async function storedScope(q: Queryable, orgId: string, scope: CreateBudgetInput['scope']) {
  if (scope.kind === 'api_key') {
    const [key] = await q.query(
      `SELECT 1 FROM api_keys WHERE org_id = $1 AND id = $2
       UNION ALL SELECT 1 FROM gateway_keys WHERE org_id = $1 AND id = $2`,
      [orgId, scope.id],
    );
    if (!key) throw notFound('API key', 'scope.id');
    return scope;
  }
  if (scope.kind !== 'member') return scope;
  const memberId = await findMemberId(q, orgId, scope.id);
  if (!memberId) throw notFound('Member', 'scope.id');
  return { kind: scope.kind, id: memberId };
}

export async function createBudget(ctx: Ctx, orgId: string, input: CreateBudgetInput): Promise<BudgetView> {
  scopeOrg(ctx, orgId, 'limits:write');
  return ctx.db.transaction(async (tx) => {
    const org = await loadOrg(tx, orgId);
    requireTrackedSpend(org, 'amount');
    const scope = await storedScope(tx, orgId, input.scope);
    // A budget counts its period's spend so far, as if it had been there all along. Under the
    // org's balance lock, where every charge counts its spend, no charge commits between this
    // read and the budget's creation.
    await lockBalance(tx, orgId);
    const [row] = await tx.query<BudgetRow>(
      `INSERT INTO budgets (org_id, id, name, scope_kind, scope_id, period, amount, enforcement)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${COLUMNS}`,
      [orgId, newId('bud'), input.name, scope.kind, scope.id, input.period, input.amount, input.enforcement],
    );
    const now = new Date();
    const { start } = periodOf(org, row!, now);
    const spent = await spentSince(tx, org, row!, start);
    if (spent > 0n) {
      await tx.query(
        COUNTER_UPSERT(
          '$1',
          '(SELECT $2::text AS scope, $3::timestamptz AS period_start, $4::bigint AS spent, 0::bigint AS held) s',
        ),
        [orgId, `budget:${row!.id}`, start.toISOString(), spent.toString()],
      );
    }
    // The stored scope: a host app's user id is personal data, which erasing a member clears.
    await audit(tx, ctx, orgId, 'budget.created', row!.id, { ...input, scope });
    return (await budgetViews(tx, org, [row!], now))[0]!;
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
