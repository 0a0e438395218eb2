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

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined && v !== null)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
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
