/**
 * What every usage report shares: the org and its range, the filters turned into SQL (always led
 * by org_id), the dimensions a report can group by with their labels, and exact sums.
 *
 * Summaries, time series and breakdowns read the hourly rollup (`usage_hourly`, kept at ingest),
 * the events log reads raw events; both use the same [start, end) bounds on whole UTC hours (see
 * domain/ranges.ts), so their totals agree to the last unit.
 */
import { decimalUnits, formatCredits, formatUnits } from '../../domain/money.ts';
import { anchorDayOf } from '../../domain/periods.ts';
import {
  type Granularity,
  type RangeInput,
  RangeInputError,
  type ResolvedRange,
  resolveRange,
} from '../../domain/ranges.ts';
import { BUILT_IN_SURFACES, surfaceLabel } from '../../domain/usageEvent.ts';
import { COST_SCALE, PCOST_SCALE, type Totals } from '../../domain/usageTotals.ts';
import type { Queryable } from '../../store/db.ts';
import { type Ctx, scopeOrg } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { loadOrg, type OrgRow } from '../orgs/shape.ts';

/** `$n` for `value`, added to `params`: statements built piece by piece number their parameters so. */
export const placeholderFor =
  (params: unknown[]) =>
  (value: unknown): string => {
    params.push(value);
    return `$${params.length}`;
  };

export const FILTERS = [
  'member',
  'feature',
  'model',
  'provider',
  'workspace',
  'workspace_group',
  'surface',
  'project',
  'api_key',
  'integration',
  'tool',
] as const;
export type FilterName = (typeof FILTERS)[number];
export type UsageFilters = Partial<Record<FilterName, string | undefined>>;

/** What a report can be grouped (broken down, split) by. */
export const DIMENSIONS = FILTERS;
export type Dimension = FilterName;

export interface UsageQuery extends RangeInput, UsageFilters {
  granularity?: Granularity | undefined;
}

/**
 * The integration of a row, from its surface: the product's own surfaces (web, cli, api, mobile)
 * and none are no integration (''); any other surface names the integration that made the call
 * (Slack, Gmail, ...). As ingest keys the `integration` rows of usage_daily_dim (migration 0011).
 */
export const integrationSql = (surface: string) =>
  `CASE WHEN ${surface} IN (${['', ...Object.keys(BUILT_IN_SURFACES)].map((k) => `'${k}'`).join(', ')}) THEN '' ELSE ${surface} END`;
/**
 * The tool of an event: its string `metadata.tool` trimmed of ASCII whitespace and cut to 200
 * characters, '' when it names none. As ingest keys the `tool` rows of usage_daily_dim (migration
 * 0011); only raw events carry it otherwise.
 */
export const toolSql = (metadata: string) => metadataTextSql(metadata, 'tool');
/**
 * A string of an event's metadata as Tally keys it: trimmed of ASCII whitespace and cut to 200
 * characters, '' when the key holds no string.
 */
export const metadataTextSql = (metadata: string, key: string) =>
  `coalesce(CASE WHEN jsonb_typeof(${metadata} -> '${key}') = 'string'
                 THEN left(btrim(${metadata} ->> '${key}', E' \\t\\n\\r\\f' || chr(11)), 200) END, '')`;
/** Dimensions whose daily rows exist only for the events that name one (see source.ts dailyPart). */
export const SPARSE_DIMENSIONS: readonly Dimension[] = ['integration', 'tool'];

/**
 * The SQL key of each dimension over `usage_hourly` or the rows of source.ts `wideRows` (the same
 * column names; `tool` exists only in rows read from raw events).
 */
export const DIMENSION_KEY: Record<Dimension, string> = {
  member: 'member_id',
  feature: 'feature',
  model: "provider || '/' || model",
  provider: 'provider',
  workspace: 'workspace',
  workspace_group: 'workspace_group',
  surface: 'surface',
  project: 'project',
  api_key: "coalesce(api_key_id, '')",
  integration: integrationSql('surface'),
  tool: 'tool',
};

export const UNKNOWN_USER = 'Unknown user';
/** Label of the group of usage that did not name the dimension (no workspace, no surface, ...). */
export const NONE_LABEL = 'None';

export type Unit = 'credits' | 'usd' | 'tokens';

export interface UsageScope {
  org: OrgRow;
  range: ResolvedRange;
  /** Credits for credit orgs, USD provider cost for BYOM, tokens for BYOK (no cost is tracked). */
  unit: Unit;
  currency: string;
  /** Provider cost is the operator's view only. */
  operator: boolean;
}

export async function loadScope(ctx: Ctx, orgId: string, query: UsageQuery, now: Date): Promise<UsageScope> {
  scopeOrg(ctx, orgId, 'usage:read');
  const org = await loadOrg(ctx.db.read, orgId);
  return {
    org,
    range: rangeOf(org, query, now),
    unit: unitOf(org),
    currency: org.billing_mode === 'byom' ? 'USD' : org.currency,
    operator: ctx.principal.kind === 'operator',
  };
}

export const unitOf = (org: OrgRow): Unit =>
  org.billing_mode === 'byom' ? 'usd' : org.billing_mode === 'byok' ? 'tokens' : 'credits';

export function rangeOf(org: OrgRow, query: UsageQuery, now: Date): ResolvedRange {
  try {
    return resolveRange(
      query,
      { zone: org.timezone, cycleAnchorDay: anchorDayOf(org.billing_cycle_anchor), now },
      query.granularity,
    );
  } catch (e) {
    if (e instanceof RangeInputError) throw new ServiceError(400, 'invalid_field', e.message, e.param);
    throw e;
  }
}

/**
 * The WHERE clause of a usage query: the org first (every query is tenant-scoped), the time
 * bounds (unless null), then each filter given. `params` grows as placeholders are added.
 */
export function whereOf(
  source: 'rollup' | 'events',
  orgId: string,
  bounds: { start: Date; end: Date } | null,
  filters: UsageFilters,
  params: unknown[],
): string {
  const p = placeholderFor(params);
  const col = (name: string) => (source === 'events' ? `e.${name}` : name);
  const time = source === 'events' ? 'e.occurred_at' : 'bucket';
  const org = p(orgId);
  const parts = [`${col('org_id')} = ${org}`];
  // No bounds: the caller bounds the time itself (several intervals, see source.ts).
  if (bounds) {
    parts.push(`${time} >= ${p(bounds.start.toISOString())}`, `${time} < ${p(bounds.end.toISOString())}`);
  }
  for (const name of FILTERS) {
    const value = filters[name];
    if (value === undefined) continue;
    const v = p(value);
    switch (name) {
      case 'member':
        // A member is named by its Tally id or by the host app's user id.
        parts.push(
          `${col('member_id')} IN (SELECT id FROM members WHERE org_id = ${org} AND (id = ${v} OR external_id = ${v}))`,
        );
        break;
      case 'model':
        parts.push(`(${col('model')} = ${v} OR ${col('provider')} || '/' || ${col('model')} = ${v})`);
        break;
      case 'provider':
        parts.push(`${col('provider')} = lower(${v})`);
        break;
      case 'api_key':
        parts.push(`${col('api_key_id')} = ${v}`);
        break;
      case 'integration':
        parts.push(`${integrationSql(col('surface'))} = ${v}`);
        break;
      case 'tool':
        // The hourly rollup has no tool: source.ts reads raw events whenever a tool filter is given.
        if (source === 'rollup') throw new Error('A tool filter needs raw events (see source.ts wideRows)');
        // A tool is named only where metadata has one: that condition lets the partial index
        // events_tool (migration 0012, on this same expression) serve the filter.
        parts.push(`e.metadata ? 'tool' AND ${toolSql('e.metadata')} = ${v}`);
        break;
      default:
        parts.push(`${col(name)} = ${v}`);
    }
  }
  return parts.join(' AND ');
}

/** The share weight of a row: what the org pays in (see `Unit`), as an integer NUMERIC. */
export function weightSql(unit: Unit): string {
  switch (unit) {
    case 'credits':
      return 'credits::numeric';
    case 'usd':
      return `cost * ${10n ** BigInt(COST_SCALE)}`;
    case 'tokens':
      return '(input_tokens + output_tokens)::numeric';
  }
}

/** The SELECT list of summed figures, read back by `totalsOf`. */
export const SUM_COLUMNS = `coalesce(sum(calls), 0)::text AS calls, coalesce(sum(credits), 0)::text AS credits,
  coalesce(sum(cost), 0)::text AS cost, coalesce(sum(provider_cost_usd), 0)::text AS provider_cost_usd,
  coalesce(sum(input_tokens), 0)::text AS input_tokens, coalesce(sum(output_tokens), 0)::text AS output_tokens,
  coalesce(sum(cache_read_tokens), 0)::text AS cache_read_tokens,
  coalesce(sum(cache_write_tokens), 0)::text AS cache_write_tokens`;

export interface SumRow {
  calls: string;
  credits: string;
  cost: string;
  provider_cost_usd: string;
  input_tokens: string;
  output_tokens: string;
  cache_read_tokens: string;
  cache_write_tokens: string;
}

export const totalsOf = (r: SumRow): Totals => ({
  calls: BigInt(r.calls),
  credits: BigInt(r.credits),
  cost: decimalUnits(r.cost, COST_SCALE),
  providerCost: decimalUnits(r.provider_cost_usd, PCOST_SCALE),
  input: BigInt(r.input_tokens),
  output: BigInt(r.output_tokens),
  cacheRead: BigInt(r.cache_read_tokens),
  cacheWrite: BigInt(r.cache_write_tokens),
});

export const tokensView = (t: Totals) => ({
  input: Number(t.input),
  output: Number(t.output),
  cache_read: Number(t.cacheRead),
  cache_write: Number(t.cacheWrite),
  total: Number(t.input + t.output),
});

/** Credits, cost (and provider cost for the operator), calls and tokens as the API shows them. */
export const figuresView = (t: Totals, operator: boolean) => ({
  credits: formatCredits(t.credits),
  cost: formatUnits(t.cost, COST_SCALE),
  provider_cost_usd: operator ? formatUnits(t.providerCost, PCOST_SCALE) : null,
  calls: Number(t.calls),
  tokens: tokensView(t),
});

/** The figure shares and trends are computed on, in integer units of the org's unit. */
export const weightOf = (t: Totals, unit: Unit): bigint =>
  unit === 'credits' ? t.credits : unit === 'usd' ? t.cost : t.input + t.output;

export const rangeView = (r: ResolvedRange) => ({
  name: r.range,
  start: r.start.toISOString(),
  end: r.end.toISOString(),
  previous_start: r.previous.start.toISOString(),
  previous_end: r.previous.end.toISOString(),
});

export interface MemberLabelRow {
  id: string;
  name: string | null;
  email: string | null;
  external_id: string | null;
  status: 'active' | 'removed';
}

/** A removed (or erased) member's usage stays and is shown as "Unknown user". */
export const memberLabel = (m: MemberLabelRow | undefined): string =>
  !m || m.status === 'removed' ? UNKNOWN_USER : (m.name ?? m.email ?? m.external_id ?? UNKNOWN_USER);

/** The member columns a usage row joins in (`members m`), as memberView reads them. */
export const JOINED_MEMBER_COLUMNS =
  'm.name AS m_name, m.email AS m_email, m.external_id AS m_external_id, m.status AS m_status';

export interface JoinedMember {
  member_id: string | null;
  m_name: string | null;
  m_email: string | null;
  m_external_id: string | null;
  m_status: 'active' | 'removed' | null;
}

/** A row's member as usage lists show it: always labelled, personal details only while active. */
export function memberView(r: JoinedMember) {
  const member: MemberLabelRow | undefined =
    r.member_id && r.m_status
      ? {
          id: r.member_id,
          name: r.m_name,
          email: r.m_email,
          external_id: r.m_external_id,
          status: r.m_status,
        }
      : undefined;
  const active = member?.status === 'active';
  return {
    id: r.member_id,
    label: memberLabel(member),
    name: active ? member.name : null,
    email: active ? member.email : null,
    external_id: active ? member.external_id : null,
    removed: !active,
  };
}

export interface Labelled {
  label: string;
  provider?: string;
  email?: string | null;
}

/** Human labels for the keys of one dimension, looked up for the keys shown only. */
export async function labelsFor(
  q: Queryable,
  orgId: string,
  dim: Dimension,
  keys: string[],
): Promise<Map<string, Labelled>> {
  const out = new Map<string, Labelled>();
  const named = keys.filter((k) => k !== '');
  for (const k of keys) if (k === '') out.set(k, { label: NONE_LABEL });
  if (dim === 'member') {
    const rows = await q.query<MemberLabelRow>(
      'SELECT id, name, email, external_id, status FROM members WHERE org_id = $1 AND id = ANY($2)',
      [orgId, named],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const k of named) {
      const m = byId.get(k);
      out.set(k, { label: memberLabel(m), email: m && m.status === 'active' ? m.email : null });
    }
  } else if (dim === 'workspace' || dim === 'api_key') {
    const rows = await q.query<{ key: string; name: string }>(
      dim === 'workspace'
        ? 'SELECT external_id AS key, name FROM workspaces WHERE org_id = $1 AND external_id = ANY($2)'
        : 'SELECT id AS key, name FROM api_keys WHERE org_id = $1 AND id = ANY($2)',
      [orgId, named],
    );
    const byKey = new Map(rows.map((r) => [r.key, r.name]));
    for (const k of named) out.set(k, { label: byKey.get(k) ?? k });
  } else if (dim === 'model') {
    for (const k of named) {
      const slash = k.indexOf('/');
      out.set(k, { label: k.slice(slash + 1), provider: k.slice(0, slash) });
    }
  } else if (dim === 'surface') {
    for (const k of named) out.set(k, { label: surfaceLabel(k) });
  } else {
    for (const k of named) out.set(k, { label: k });
  }
  if (dim === 'api_key' && out.has('')) out.set('', { label: 'Operator' });
  if (dim === 'integration' && out.has('')) out.set('', { label: 'No integration' });
  if (dim === 'tool' && out.has('')) out.set('', { label: 'No tool' });
  return out;
}
