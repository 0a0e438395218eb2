/** A usage event as a host app sends it, and the rules that need no database. */
import { createHash } from 'node:crypto';
import type { Usage } from './pricing.ts';

export interface UsageEventInput {
  id: string;
  org_id?: string;
  member: string;
  feature: string;
  provider: string;
  model: string;
  occurred_at: string;
  surface?: string;
  workspace?: string;
  workspace_group?: string;
  project?: string;
  conversation_id?: string;
  message_id?: string;
  parent_id?: string;
  usage: Usage;
  metadata?: Record<string, unknown>;
}

/**
 * The most of one kind (tokens, images, seconds, requests) a single event may count: far past any
 * real call, and low enough that no rollup row (a BIGINT sum per hour or day) can overflow however
 * many such events arrive; a priced event is usually stopped sooner by TALLY_MAX_EVENT_COST.
 */
export const MAX_USAGE_COUNT = 1_000_000_000;

/** The longest key an event's metadata may have, in characters. */
export const METADATA_KEY_MAX_CHARS = 200;
/** The metadata key a call's event carries its hold's id in: Tally's, never a client's. */
export const HOLD_ID_METADATA_KEY = 'authorization_id';

/**
 * The dimensions a client gives a call, in the order the hourly rollup's key holds them (with the
 * member and API key ids around them, and whether calls or batches wrote the row after them:
 * usage_hourly's primary key, recordEvents.ts).
 */
export const ROLLUP_KEY_FIELDS = [
  'feature',
  'provider',
  'model',
  'surface',
  'workspace',
  'workspace_group',
  'project',
] as const;

/** usage_hourly's key columns between its org and hour and its from_calls: the client's dimensions between ids. */
export const ROLLUP_DIMENSIONS = ['member_id', ...ROLLUP_KEY_FIELDS, 'api_key_id'] as const;

/**
 * The product's own surfaces, with the names the usage pages show them by. Any other surface names
 * the integration that made the call (Slack, Gmail, ...), and is shown as the client wrote it.
 */
export const BUILT_IN_SURFACES: Readonly<Record<string, string>> = {
  web: 'Web',
  cli: 'CLI',
  api: 'API',
  mobile: 'Mobile',
};

/** A surface's name on the usage pages (own keys only: a surface called `constructor` is itself). */
export const surfaceLabel = (surface: string): string =>
  Object.hasOwn(BUILT_IN_SURFACES, surface) ? BUILT_IN_SURFACES[surface]! : surface;

/**
 * What those dimensions may take together, in UTF-8 bytes: a Postgres index key holds at most
 * 2 704, and the org, the hour, the member and the API key take part of it. Past that the rollup
 * insert fails, and with it the whole batch.
 */
export const ROLLUP_KEY_MAX_BYTES = 2000;

/** The longest of the dimensions, when together they take more than ROLLUP_KEY_MAX_BYTES. */
export function rollupKeyProblem(
  call: Partial<Record<(typeof ROLLUP_KEY_FIELDS)[number], string>>,
): { field: string; message: string } | null {
  // Every batch event comes here: no UTF-16 unit takes more than 3 UTF-8 bytes, so short text needs
  // no byte count.
  let units = 0;
  for (const field of ROLLUP_KEY_FIELDS) units += call[field]?.length ?? 0;
  if (units * 3 <= ROLLUP_KEY_MAX_BYTES) return null;
  let total = 0;
  let longest: { field: string; bytes: number } = { field: 'feature', bytes: -1 };
  for (const field of ROLLUP_KEY_FIELDS) {
    const bytes = Buffer.byteLength(call[field] ?? '');
    total += bytes;
    if (bytes > longest.bytes) longest = { field, bytes };
  }
  if (total <= ROLLUP_KEY_MAX_BYTES) return null;
  return {
    field: longest.field,
    message: `${ROLLUP_KEY_FIELDS.join(', ')} may take at most ${ROLLUP_KEY_MAX_BYTES} bytes together (UTF-8); these take ${total}`,
  };
}

/** How far back a late event may land, and how far ahead a clock may run. */
export const MAX_EVENT_AGE_MS = 35 * 24 * 3600 * 1000;
export const MAX_EVENT_SKEW_MS = 5 * 60 * 1000;

export function timestampProblem(occurredAt: Date, now: Date): string | null {
  if (occurredAt.getTime() < now.getTime() - MAX_EVENT_AGE_MS)
    return 'occurred_at is more than 35 days in the past';
  if (occurredAt.getTime() > now.getTime() + MAX_EVENT_SKEW_MS)
    return 'occurred_at is more than 5 minutes in the future';
  return null;
}

/** Zero counts and absent fields are the same thing, so a retry that spells them out is still the same event. */
export function normalizedUsage(usage: Usage): Usage {
  const out: Usage = {};
  for (const key of Object.keys(usage).sort() as (keyof Usage)[]) {
    const value = usage[key];
    if (value) out[key] = value;
  }
  return out;
}

/**
 * JSON with object keys sorted and null or absent fields left out. Written as loops: ingest hashes
 * every event of a batch, and the entries/filter/sort/map chains it replaced allocated several
 * arrays per object. The text must never change: stored hashes are compared with new ones.
 */
function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? '';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonical(value[i]);
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  let out = '{';
  for (const key of Object.keys(record).sort()) {
    const field = record[key];
    if (field === undefined || field === null) continue;
    out += `${out === '{' ? '' : ','}${JSON.stringify(key)}:${canonical(field)}`;
  }
  return `${out}}`;
}

/** The fingerprint that tells a retry (same content) from a different event reusing an id. */
export function contentHash(event: UsageEventInput): string {
  const { org_id: _org, ...rest } = event;
  const body = {
    ...rest,
    occurred_at: new Date(event.occurred_at).toISOString(),
    usage: normalizedUsage(event.usage),
  };
  return createHash('sha256').update(canonical(body)).digest('base64url');
}
