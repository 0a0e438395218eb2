import { formatCredits } from '../../domain/money.ts';
import type { Usage } from '../../domain/pricing.ts';
import type { UsageEventInput } from '../../domain/usageEvent.ts';
import { type Ctx, scopeOrg } from '../context.ts';
import { ServiceError } from '../errors.ts';
import type { AuthorizationState } from '../ledger/lockForSpend.ts';

/**
 * What a call is attributed to besides its member and feature, as a hold takes it: stored on the
 * authorization and copied onto the call's event, so it counts in the rollups as an ingested one.
 */
export type CallAttribution = Pick<
  UsageEventInput,
  | 'surface'
  | 'workspace'
  | 'workspace_group'
  | 'project'
  | 'conversation_id'
  | 'message_id'
  | 'parent_id'
  | 'metadata'
>;

/** A hold's attribution in its answer, each field null when not given. */
export function attributionView(call: CallAttribution) {
  return {
    surface: call.surface ?? null,
    workspace: call.workspace ?? null,
    workspace_group: call.workspace_group ?? null,
    project: call.project ?? null,
    conversation_id: call.conversation_id ?? null,
    message_id: call.message_id ?? null,
    parent_id: call.parent_id ?? null,
    metadata: call.metadata ?? null,
  };
}

/** A hold's call fields as its row stores them: no surface is '', the others null. */
export function storedAttribution(call: CallAttribution) {
  return {
    surface: call.surface ?? '',
    conversation_id: call.conversation_id ?? null,
    message_id: call.message_id ?? null,
    parent_id: call.parent_id ?? null,
    metadata: call.metadata ?? null,
  };
}

export interface AuthorizationRow {
  org_id: string;
  id: string;
  member_id: string;
  member_external_id: string;
  api_key_id: string | null;
  feature: string;
  provider: string;
  model: string;
  surface: string;
  workspace: string;
  workspace_group: string;
  project: string;
  conversation_id: string | null;
  message_id: string | null;
  parent_id: string | null;
  /** The client's metadata, without the `authorization_id` its event adds. */
  metadata: Record<string, unknown> | null;
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

const COLUMNS = `org_id, id, member_id, member_external_id, api_key_id, feature, provider, model, surface, workspace,
  workspace_group, project, conversation_id, message_id, parent_id, metadata, status, held, charged, usage, scopes,
  event_id, result, created_at, expires_at`;

/** Authorizations read lately in this process: a stream's increments and capture read it once. */
const MAX_KEPT = 10_000;
const kept = new Map<string, AuthorizationRow>();

/**
 * An authorization the caller may bill, capture or void, read without a lock: what never changes
 * (its org, call and scopes) is taken from here, what does (held, charged, status) from
 * lockForSpend under the lock, so a copy kept from an earlier read serves as well. Another org's
 * id is answered as missing; a role that may not send usage is refused, as it is at the hold.
 */
export async function findAuthorization(ctx: Ctx, id: string): Promise<AuthorizationRow> {
  const { principal } = ctx;
  const orgId = principal.kind === 'operator' ? null : principal.orgId;
  let row = kept.get(id);
  if (!row) {
    [row] = await ctx.db.query<AuthorizationRow>(`SELECT ${COLUMNS} FROM authorizations WHERE id = $1`, [id]);
    if (row) keepAuthorization(row);
  }
  if (!row || (orgId !== null && row.org_id !== orgId)) {
    throw new ServiceError(404, 'not_found', 'Authorization not found', 'id');
  }
  scopeOrg(ctx, row.org_id, 'events:write');
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
