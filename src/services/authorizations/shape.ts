import { formatCredits } from '../../domain/money.ts';
import type { Usage } from '../../domain/pricing.ts';
import type { Queryable } from '../../store/db.ts';
import type { Principal } from '../context.ts';
import { ServiceError } from '../errors.ts';

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
  expires_at: Date;
}

const COLUMNS = `org_id, id, member_id, member_external_id, api_key_id, feature, provider, model, workspace,
  workspace_group, project, status, held, charged, usage, scopes, event_id, result, expires_at`;

/** The org of an authorization the caller may see, read without a lock (to take the org lock first). */
export async function authorizationOrg(q: Queryable, principal: Principal, id: string): Promise<string> {
  const orgId = principal.kind === 'operator' ? null : principal.orgId;
  const [row] = await q.query<{ org_id: string }>(
    'SELECT org_id FROM authorizations WHERE id = $1 AND ($2::text IS NULL OR org_id = $2)',
    [id, orgId],
  );
  if (!row) throw new ServiceError(404, 'not_found', 'Authorization not found', 'id');
  return row.org_id;
}

/** Loads and locks an authorization the caller may see; another org's id is answered as missing. */
export async function lockAuthorization(
  tx: Queryable,
  principal: Principal,
  id: string,
): Promise<AuthorizationRow> {
  const orgId = principal.kind === 'operator' ? null : principal.orgId;
  const [row] = await tx.query<AuthorizationRow>(
    `SELECT ${COLUMNS} FROM authorizations WHERE id = $1 AND ($2::text IS NULL OR org_id = $2) FOR UPDATE`,
    [id, orgId],
  );
  if (!row) throw new ServiceError(404, 'not_found', 'Authorization not found', 'id');
  return row;
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
