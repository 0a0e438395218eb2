/** Gateway keys and upstream settings as the API shows them (never a secret in full). */
import { newId, newSecret } from '../../domain/ids.ts';
import { GATEWAY_KEY_PREFIX } from './resolveCaller.ts';

export interface GatewayKeyRow {
  org_id: string;
  id: string;
  name: string;
  key_hint: string;
  member: string;
  feature: string;
  workspace: string | null;
  project: string | null;
  created_at: Date;
  revoked_at: Date | null;
}

export const GATEWAY_KEY_COLUMNS =
  'org_id, id, name, key_hint, member, feature, workspace, project, created_at, revoked_at';

export const gatewayKeyView = (row: GatewayKeyRow) => ({
  id: row.id,
  object: 'gateway_key' as const,
  org_id: row.org_id,
  name: row.name,
  key_hint: row.key_hint,
  member: row.member,
  feature: row.feature,
  workspace: row.workspace,
  project: row.project,
  created_at: row.created_at.toISOString(),
  revoked_at: row.revoked_at?.toISOString() ?? null,
});
export type GatewayKeyView = ReturnType<typeof gatewayKeyView>;

/** Ids and secrets from the usual generators, with the gateway's own prefixes. */
export const newGatewayKeyId = () => newId('key').replace(/^key_/, 'gwk_');
export const newGatewayKeySecret = () => newSecret('sk').replace(/^tally_sk_/, GATEWAY_KEY_PREFIX);

export interface GatewayUpstreamRow {
  org_id: string;
  provider: 'openai' | 'anthropic';
  base_url: string | null;
  key_hint: string;
  updated_at: Date;
}

export const GATEWAY_UPSTREAM_COLUMNS = 'org_id, provider, base_url, key_hint, updated_at';

export const gatewayUpstreamView = (row: GatewayUpstreamRow) => ({
  object: 'gateway_upstream' as const,
  org_id: row.org_id,
  provider: row.provider,
  base_url: row.base_url,
  key_hint: row.key_hint,
  updated_at: row.updated_at.toISOString(),
});
export type GatewayUpstreamView = ReturnType<typeof gatewayUpstreamView>;
