/**
 * The limits that apply to a charge: the org's monthly allowed limit and every budget whose scope
 * the charge falls in. Amounts are converted once into the org's credit unit (micro-credits, or
 * micro-USD for BYOM orgs), rounding the limit down so it can never be passed by rounding.
 */
import { CREDIT_SCALE, Ratio } from '../../domain/money.ts';
import { anchorDayOf, billingCycle, calendarMonth } from '../../domain/periods.ts';
import type { Queryable } from '../../store/db.ts';
import type { OrgRow } from '../orgs/shape.ts';

export interface Dimensions {
  member_id: string;
  workspace: string;
  workspace_group: string;
  project: string;
  api_key_id: string;
}

export interface LimitScope {
  scope: string;
  periodStart: Date;
  /** Units allowed in the period, or null for a scope that is only counted. */
  limit: bigint | null;
  hard: boolean;
  kind: 'org' | 'budget';
  budgetId?: string;
  name: string;
  /** Which period the scope counts in (an org's limit is always per calendar month). */
  period?: 'month' | 'cycle';
  /** The org's alert threshold in units (org scope only), for the alert it fires. */
  alertAt?: bigint | null;
}

/** A counter's values after a change (the rows COUNTER_UPSERT returns). */
export interface CounterValue {
  scope: string;
  periodStart: Date;
  spent: bigint;
  held: bigint;
}

export interface LimitSettings {
  alertThreshold: string | null;
  allowedLimit: string | null;
  budgets: {
    id: string;
    name: string;
    scope_kind: keyof Dimensions | 'member';
    scope_id: string;
    period: 'month' | 'cycle';
    amount: string;
    enforcement: 'hard' | 'soft';
  }[];
}

/** The columns `loadLimitSettings` reads for the org `$1`, for a statement that reads more beside them. */
export const LIMIT_SETTINGS_COLUMNS = `(SELECT alert_threshold::text FROM org_limits WHERE org_id = $1) AS alert_threshold,
  (SELECT allowed_limit::text FROM org_limits WHERE org_id = $1) AS allowed_limit,
  (SELECT json_agg(json_build_object('id', id, 'name', name, 'scope_kind', scope_kind,
            'scope_id', scope_id, 'period', period, 'amount', amount::text, 'enforcement', enforcement)
            ORDER BY id)
     FROM budgets WHERE org_id = $1 AND deleted_at IS NULL) AS budgets`;

export interface LimitSettingsRow {
  alert_threshold: string | null;
  allowed_limit: string | null;
  budgets: LimitSettings['budgets'] | null;
}

export const toLimitSettings = (row: LimitSettingsRow | undefined): LimitSettings => ({
  alertThreshold: row?.alert_threshold ?? null,
  allowedLimit: row?.allowed_limit ?? null,
  budgets: row?.budgets ?? [],
});

/** The org's limits and live budgets, in one round trip (holds read them on every call). */
export async function loadLimitSettings(q: Queryable, orgId: string): Promise<LimitSettings> {
  const [row] = await q.query<LimitSettingsRow>(`SELECT ${LIMIT_SETTINGS_COLUMNS}`, [orgId]);
  return toLimitSettings(row);
}

/** Money in the org currency (USD for BYOM) to the org's credit unit, rounded down. */
export function toUnits(org: OrgRow, money: string): bigint {
  const perUnit = org.billing_mode === 'byom' ? Ratio.ONE : Ratio.parse(org.credit_value);
  const exact = Ratio.parse(money)
    .div(perUnit)
    .mul(Ratio.int(10n ** BigInt(CREDIT_SCALE)));
  return exact.num / exact.den;
}

/** The event column (and usage rollup column) each budget scope matches. */
export const SCOPE_FIELD: Record<string, keyof Dimensions> = {
  member: 'member_id',
  workspace: 'workspace',
  workspace_group: 'workspace_group',
  project: 'project',
  api_key: 'api_key_id',
};

// The org's limit and alert threshold in units, per loaded settings (one org's): a batch of
// events asks for them once per event.
const orgUnits = new WeakMap<LimitSettings, { limit: bigint | null; alertAt: bigint | null }>();

function orgUnitsOf(org: OrgRow, settings: LimitSettings) {
  let units = orgUnits.get(settings);
  if (!units) {
    units = {
      limit: settings.allowedLimit === null ? null : toUnits(org, settings.allowedLimit),
      alertAt: settings.alertThreshold === null ? null : toUnits(org, settings.alertThreshold),
    };
    orgUnits.set(settings, units);
  }
  return units;
}

export function scopesFor(org: OrgRow, settings: LimitSettings, dims: Dimensions, at: Date): LimitScope[] {
  const month = calendarMonth(org.timezone, at).start;
  const { limit, alertAt } = orgUnitsOf(org, settings);
  const scopes: LimitScope[] = [
    {
      scope: 'org',
      periodStart: month,
      limit,
      hard: true,
      kind: 'org',
      name: 'monthly limit',
      period: 'month',
      alertAt,
    },
  ];
  for (const b of settings.budgets) {
    const value = dims[SCOPE_FIELD[b.scope_kind]!];
    if (!value || value !== b.scope_id) continue;
    const periodStart =
      b.period === 'month'
        ? month
        : billingCycle(org.timezone, anchorDayOf(org.billing_cycle_anchor), at).start;
    scopes.push({
      scope: `budget:${b.id}`,
      periodStart,
      limit: toUnits(org, b.amount),
      hard: b.enforcement === 'hard',
      kind: 'budget',
      budgetId: b.id,
      name: b.name,
      period: b.period,
    });
  }
  return scopes;
}

/**
 * The statement that adds `spent` and `held` deltas (the columns of `source`, one row per counter
 * in key order) to an org's counters, creating them on first use; for use alone or inside a CTE.
 */
export const COUNTER_UPSERT = (orgParam: string, source: string) =>
  `INSERT INTO spend_counters (org_id, scope, period_start, spent, held)
     SELECT ${orgParam}, scope, period_start, spent, held FROM ${source}
     ON CONFLICT (org_id, scope, period_start) DO UPDATE
       SET spent = spend_counters.spent + EXCLUDED.spent, held = spend_counters.held + EXCLUDED.held`;

/**
 * The spend to add (and holds to move) on the counters of the given scopes, one change per counter,
 * in key order, as the JSON COUNTER_DELTAS reads (null when there is none). Counters are created
 * on first use.
 */
export function counterDeltas(
  changes: { scope: string; periodStart: Date; spent: bigint; held: bigint }[],
): string | null {
  if (changes.length === 0) return null;
  return JSON.stringify(
    [...changes]
      .sort((a, b) => (counterKey(a) < counterKey(b) ? -1 : 1))
      .map((c) => ({
        scope: c.scope,
        period_start: c.periodStart.toISOString(),
        spent: String(c.spent),
        held: String(c.held),
      })),
  );
}

/** The rows of counterDeltas' JSON (a parameter), as a source for COUNTER_UPSERT. */
export const COUNTER_DELTAS = (json: string) =>
  `jsonb_to_recordset(${json}::jsonb) AS x(scope text, period_start timestamptz, spent bigint, held bigint)`;

/** Spent and held units per counter, keyed by `counterKey`. */
export type CounterTotals = Map<string, { spent: bigint; held: bigint }>;

export async function readCounters(
  q: Queryable,
  orgId: string,
  scopes: Pick<LimitScope, 'scope' | 'periodStart'>[],
): Promise<CounterTotals> {
  if (scopes.length === 0) return new Map();
  const rows = await q.query<{ scope: string; period_start: Date; spent: string; held: string }>(
    `SELECT c.scope, c.period_start, c.spent, c.held FROM spend_counters c
       JOIN jsonb_to_recordset($2::jsonb) AS x(scope text, period_start timestamptz)
         ON c.scope = x.scope AND c.period_start = x.period_start
      WHERE c.org_id = $1`,
    [
      orgId,
      JSON.stringify(scopes.map((s) => ({ scope: s.scope, period_start: s.periodStart.toISOString() }))),
    ],
  );
  return new Map(
    rows.map((r) => [
      `${r.scope}\u0000${r.period_start.toISOString()}`,
      { spent: BigInt(r.spent), held: BigInt(r.held) },
    ]),
  );
}

export const counterKey = (s: { scope: string; periodStart: Date }) =>
  `${s.scope}\u0000${s.periodStart.toISOString()}`;
