import { formatCredits } from '../../domain/money.ts';
import type { Usage } from '../../domain/pricing.ts';
import type { Queryable } from '../../store/db.ts';
import type { Principal } from '../context.ts';
import { ServiceError } from '../errors.ts';
import type { AuthorizationState } from '../ledger/lockForSpend.ts';

export interface AuthorizationRow {
  org_id: string;
  id: string;
  member_id: string;
  member_external_id: string;
  api_key_id: string | null;
  feature: string;
  provider: string;
  model: string;
  workspace: string;
  workspace_group: string;
  project: string;
  status: 'active' | 'captured' | 'voided' | 'expired';
  held: string;
  charged: string;
  usage: Usage;
  scopes: { scope: string; period_start: string }[];
  event_id: string | null;
  result: Record<string, unknown> | null;
  /** When the hold was placed: its call's event is dated then, in the period its hold counted in. */
  created_at: Date;
  expires_at: Date;
}

const COLUMNS = `org_id, id, member_id, member_external_id, api_key_id, feature, provider, model, workspace,
  workspace_group, project, status, held, charged, usage, scopes, event_id, result, created_at, expires_at`;

/** Authorizations read lately in this process: a stream's increments and capture read it once. */
const MAX_KEPT = 10_000;
const kept = new Map<string, AuthorizationRow>();

/**
 * An authorization the caller may see, read without a lock: what never changes (its org, call and
 * scopes) is taken from here, what does (held, charged, status) from lockForSpend under the lock,
 * so a copy kept from an earlier read serves as well. Another org's id is answered as missing.
 */
export async function findAuthorization(
  q: Queryable,
  principal: Principal,
  id: string,
): Promise<AuthorizationRow> {
  const orgId = principal.kind === 'operator' ? null : principal.orgId;
  let row = kept.get(id);
  if (!row) {
    [row] = await q.query<AuthorizationRow>(`SELECT ${COLUMNS} FROM authorizations WHERE id = $1`, [id]);
    if (row) keepAuthorization(row);
  }
  if (!row || (orgId !== null && row.org_id !== orgId)) {
    throw new ServiceError(404, 'not_found', 'Authorization not found', 'id');
  }
  return row;
}

/** Keeps an authorization as this process wrote or read it (a hold keeps the row it placed). */
export function keepAuthorization(row: AuthorizationRow): void {
  if (kept.size >= MAX_KEPT) kept.clear();
  kept.set(row.id, row);
}

/** Drops the kept copy of an authorization that has ended. */
export const forgetAuthorization = (id: string): void => {
  kept.delete(id);
};

/** The authorization as locked: its unchanging part with the state read under the lock. */
export function lockedState(found: AuthorizationRow, state: AuthorizationState | null): AuthorizationRow {
  if (!state) throw new ServiceError(404, 'not_found', 'Authorization not found', 'id');
  return { ...found, ...state, expires_at: new Date(state.expires_at) };
}

export function requireActive(auth: AuthorizationRow, now: Date): void {
  if (auth.status !== 'active') {
    throw new ServiceError(409, 'authorization_not_active', `The authorization is ${auth.status}`);
  }
  if (auth.expires_at <= now) {
    throw new ServiceError(409, 'authorization_not_active', 'The authorization has expired');
  }
}

export const credits = (micro: bigint) => formatCredits(micro);

export function addUsage(a: Usage, b: Usage): Usage {
  const out: Usage = { ...a };
  for (const [k, v] of Object.entries(b) as [keyof Usage, number][]) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** Counts that stand alone, each with the counts among it (input_tokens holds its cached and audio part). */
const USAGE_GROUPS: (keyof Usage)[][] = [
  ['input_tokens', 'cache_read_tokens', 'cache_write_tokens', 'cache_write_1h_tokens', 'input_audio_tokens'],
  ['output_tokens', 'output_audio_tokens'],
  ['images'],
  ['seconds'],
  ['requests'],
  ['web_searches'],
];

/**
 * The larger of two counts of a call's usage, group by group: each count with the counts among it
 * taken from the same side, so that the parts never exceed their whole.
 */
export function usageAtLeast(reported: Usage, streamed: Usage): Usage {
  const out: Usage = {};
  for (const group of USAGE_GROUPS) {
    const whole = group[0]!;
    const side = (streamed[whole] ?? 0) > (reported[whole] ?? 0) ? streamed : reported;
    for (const kind of group) if (side[kind] !== undefined) out[kind] = side[kind];
  }
  return out;
}

/**
 * What a call used past the usage recorded for it already (`final` holds at least as much of each
 * whole): per group, the whole's difference, and the parts' differences up to what it leaves.
 */
export function usageBeyond(final: Usage, recorded: Usage): Usage {
  const more = (kind: keyof Usage) => Math.max(0, (final[kind] ?? 0) - (recorded[kind] ?? 0));
  const rest: Usage = {};
  for (const [whole, ...parts] of USAGE_GROUPS) {
    if (final[whole!] === undefined) continue;
    let left = more(whole!);
    rest[whole!] = left;
    for (const part of parts) {
      if (part === 'cache_write_1h_tokens' || final[part] === undefined) continue;
      const taken = Math.min(more(part), left);
      rest[part] = taken;
      left -= taken;
    }
  }
  // 1-hour writes are among the cache writes, not beside them.
  if (final.cache_write_1h_tokens !== undefined) {
    rest.cache_write_1h_tokens = Math.min(more('cache_write_1h_tokens'), rest.cache_write_tokens ?? 0);
  }
  return rest;
}
