/** The org as stored and as the API shows it. */
import { formatCredits, formatUnits, parseUnits } from '../../domain/money.ts';
import type { Queryable } from '../../store/db.ts';
import { notFound } from '../errors.ts';

export interface OrgRow {
  id: string;
  external_id: string | null;
  name: string;
  currency: 'EUR' | 'USD';
  timezone: string;
  billing_mode: 'credits' | 'byom' | 'byok';
  credit_value: string;
  plan_allowance_credits: string;
  /** Micro-credits of a cycle's unused allowance carried into the next cycle at most (0: none). */
  plan_rollover_max_credits: string;
  billing_cycle_anchor: string;
  /** The activity log names the provider and model of credit-billed calls (migration 0029). */
  activity_shows_model: boolean;
  /** On the host's free plan: the usage bar always offers the upgrade (migration 0030). */
  free_tier: boolean;
  created_at: Date;
  updated_at: Date;
}

export const ORG_COLUMNS = `id, external_id, name, currency, timezone, billing_mode, credit_value::text AS credit_value,
  plan_allowance_credits, plan_rollover_max_credits, to_char(billing_cycle_anchor, 'YYYY-MM-DD') AS billing_cycle_anchor, activity_shows_model, free_tier,
  created_at, updated_at`;

export function orgView(row: OrgRow) {
  return {
    id: row.id,
    object: 'org' as const,
    name: row.name,
    external_id: row.external_id,
    currency: row.currency,
    timezone: row.timezone,
    billing_mode: row.billing_mode,
    credit_value: formatUnits(parseUnits(row.credit_value, 6), 6),
    plan_allowance_credits: formatCredits(BigInt(row.plan_allowance_credits)),
    plan_rollover_max_credits: formatCredits(BigInt(row.plan_rollover_max_credits)),
    billing_cycle_anchor: row.billing_cycle_anchor,
    activity_shows_model: row.activity_shows_model,
    free_tier: row.free_tier,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}
export type OrgView = ReturnType<typeof orgView>;

export async function loadOrg(q: Queryable, orgId: string, param = 'org'): Promise<OrgRow> {
  const [row] = await q.query<OrgRow>(`SELECT ${ORG_COLUMNS} FROM orgs WHERE id = $1`, [orgId]);
  if (!row) throw notFound('Organization', param);
  return row;
}

/** The orgs whose usage Tally tracks (all but BYOK), in pages of `size` by id: for jobs that visit every org. */
export async function* trackedOrgPages(q: Queryable, size = 500): AsyncGenerator<OrgRow[]> {
  let after = '';
  for (;;) {
    const orgs = await q.query<OrgRow>(
      `SELECT ${ORG_COLUMNS} FROM orgs WHERE id > $1 AND billing_mode <> 'byok' ORDER BY id LIMIT ${size}`,
      [after],
    );
    if (orgs.length === 0) return;
    yield orgs;
    after = orgs[orgs.length - 1]!.id;
  }
}
