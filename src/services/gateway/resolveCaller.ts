/**
 * Who a gateway call is from and whom it is billed to. A gateway key (`tally_vk_...`) stands for an
 * org with a default member and feature; an org API key (`tally_sk_...`) names the member in the
 * `tally-member` header. `tally-member`, `tally-feature`, `tally-workspace` and `tally-project`
 * override a gateway key's defaults per request; `tally-surface`, `tally-workspace-group`,
 * `tally-conversation-id`, `tally-message-id` and `tally-parent-id` attribute the call further, as
 * an event's fields of those names do (no default: a call that names no surface has none), and
 * `tally-metadata` (a JSON object) is the call's event metadata.
 */
import { hashSecret } from '../../domain/ids.ts';
import { findJsonFault, MAX_JSON_DEPTH, nestsDeeperThan } from '../../domain/jsonText.ts';
import { HOLD_ID_METADATA_KEY, METADATA_KEY_MAX_CHARS } from '../../domain/usageEvent.ts';
import type { Queryable } from '../../store/db.ts';
import type { CallAttribution } from '../authorizations/shape.ts';
import type { Principal } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { authenticate, KeptKeys } from '../keys/authenticate.ts';

/** A hold's attribution, each field from a tally-* header or the gateway key's default. */
export interface Attribution extends CallAttribution {
  member: string;
  feature: string;
}

/** Metadata in a header: smaller than an event's (16 KiB), as servers cap a request's headers. */
export const METADATA_HEADER_MAX_BYTES = 8 * 1024;

/** The attribution headers with no gateway key default, by the hold field each one fills. */
const CALL_HEADERS = {
  surface: 'tally-surface',
  workspace_group: 'tally-workspace-group',
  conversation_id: 'tally-conversation-id',
  message_id: 'tally-message-id',
  parent_id: 'tally-parent-id',
} as const;

export interface GatewayCaller {
  orgId: string;
  principal: Principal;
  attribution: Attribution;
}

/** Feature name of calls made with an org key that name none. */
export const DEFAULT_FEATURE = 'gateway';

export const GATEWAY_KEY_PREFIX = 'tally_vk_';

const unauthorized = (detail: string) => new ServiceError(401, 'unauthorized', detail);

function header(headers: Headers, name: string): string | undefined {
  const value = headers.get(name)?.trim();
  if (value === undefined || value === '') return undefined;
  if (value.length > 200)
    throw new ServiceError(400, 'invalid_header', `${name} is longer than 200 characters`);
  return value;
}

const invalidMetadata = (why: string) => new ServiceError(400, 'invalid_header', `tally-metadata ${why}`);

/** The `tally-metadata` header's JSON object, checked as an event's metadata is. */
function metadataHeader(headers: Headers): Record<string, unknown> | undefined {
  const text = headers.get('tally-metadata')?.trim();
  if (text === undefined || text === '') return undefined;
  if (Buffer.byteLength(text) > METADATA_HEADER_MAX_BYTES)
    throw invalidMetadata(`is longer than ${METADATA_HEADER_MAX_BYTES} bytes`);
  if (nestsDeeperThan(text, MAX_JSON_DEPTH))
    throw invalidMetadata(`nests more than ${MAX_JSON_DEPTH} levels deep`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalidMetadata('must be JSON (characters outside ASCII escaped as \\uXXXX)');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw invalidMetadata('must be a JSON object');
  // What Postgres cannot store as jsonb (NUL, a lone surrogate), refused as an event's body is.
  const fault = findJsonFault(value);
  if (fault) throw invalidMetadata(`${fault.param ? `${fault.param} ` : ''}${fault.message}`);
  // The rules of an event's metadata (src/http/routes/events.ts Metadata), in the header's words.
  const keys = Object.keys(value);
  if (keys.some((k) => k.length > METADATA_KEY_MAX_CHARS))
    throw invalidMetadata(`has a key longer than ${METADATA_KEY_MAX_CHARS} characters`);
  if (keys.includes(HOLD_ID_METADATA_KEY))
    throw invalidMetadata(`may not set ${HOLD_ID_METADATA_KEY}: it is Tally's`);
  return value as Record<string, unknown>;
}

interface GatewayKeyRow {
  id: string;
  org_id: string;
  member: string;
  feature: string;
  workspace: string | null;
  project: string | null;
}

/** Gateway keys this process checked lately (see KEY_KEPT_MS for how revocation binds). */
const gatewayKeys = new KeptKeys<GatewayKeyRow>();

/** Call once a gateway key is revoked, so this process refuses it at once. */
export const forgetGatewayKey = (keyId: string): void => {
  gatewayKeys.forget(keyId);
};

function gatewayKey(db: Queryable, secret: string): Promise<GatewayKeyRow> {
  const hash = hashSecret(secret);
  return gatewayKeys.lookup(hash, () => readGatewayKey(db, hash));
}

async function readGatewayKey(db: Queryable, hash: string): Promise<GatewayKeyRow> {
  const [key] = await db.query<GatewayKeyRow & { revoked: boolean }>(
    `SELECT id, org_id, member, feature, workspace, project, revoked_at IS NOT NULL AS revoked
       FROM gateway_keys WHERE key_hash = $1`,
    [hash],
  );
  if (!key) throw unauthorized('The gateway key is not valid');
  if (key.revoked) throw unauthorized('The gateway key was revoked');
  const { revoked: _, ...row } = key;
  gatewayKeys.keep(hash, row.id, row, null);
  return row;
}

/** `billed: false` for calls Tally does not meter (the model list): no member is needed. */
export async function resolveCaller(
  db: Queryable,
  secret: string | undefined,
  headers: Headers,
  { billed } = { billed: true },
): Promise<GatewayCaller> {
  if (!secret) throw unauthorized('Send a Tally gateway key or org API key as the provider API key');
  const call: CallAttribution = {};
  for (const [field, name] of Object.entries(CALL_HEADERS) as [keyof typeof CALL_HEADERS, string][]) {
    const value = header(headers, name);
    if (value !== undefined) call[field] = value;
  }
  const metadata = metadataHeader(headers);
  if (metadata) call.metadata = metadata;
  const overrides = {
    member: header(headers, 'tally-member'),
    feature: header(headers, 'tally-feature'),
    workspace: header(headers, 'tally-workspace'),
    project: header(headers, 'tally-project'),
  };
  if (secret.startsWith(GATEWAY_KEY_PREFIX)) {
    const key = await gatewayKey(db, secret);
    const workspace = overrides.workspace ?? key.workspace ?? undefined;
    const project = overrides.project ?? key.project ?? undefined;
    return {
      orgId: key.org_id,
      // A gateway key may place holds and report usage for its org, nothing more.
      principal: { kind: 'org_key', id: key.id, orgId: key.org_id, role: 'member' },
      attribution: {
        member: overrides.member ?? key.member,
        feature: overrides.feature ?? key.feature,
        ...(workspace ? { workspace } : {}),
        ...(project ? { project } : {}),
        ...call,
      },
    };
  }
  if (!secret.startsWith('tally_sk_')) {
    throw unauthorized('Use a Tally gateway key (tally_vk_...) or an org API key (tally_sk_...)');
  }
  const principal = await authenticate(db, secret);
  if (principal.kind !== 'org_key') throw unauthorized('The operator key cannot call the gateway');
  if (!overrides.member && billed) {
    throw new ServiceError(
      400,
      'member_required',
      'With an org API key, name the member in the tally-member header',
    );
  }
  return {
    orgId: principal.orgId,
    principal,
    attribution: {
      member: overrides.member ?? '', // only ever empty for a call that is not billed
      feature: overrides.feature ?? DEFAULT_FEATURE,
      ...(overrides.workspace ? { workspace: overrides.workspace } : {}),
      ...(overrides.project ? { project: overrides.project } : {}),
      ...call,
    },
  };
}
