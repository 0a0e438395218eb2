import type { GrantKind } from '../../domain/drawdown.ts';
import { formatCredits } from '../../domain/money.ts';

export interface GrantRecord {
  org_id: string;
  id: string;
  kind: GrantKind;
  source: string;
  amount: string;
  consumed: string;
  expired: string;
  remaining: string;
  status: 'active' | 'expired' | 'voided';
  effective_at: Date;
  expires_at: Date | null;
  reason: string | null;
  created_at: Date;
}

export const GRANT_COLUMNS =
  'org_id, id, kind, source, amount, consumed, expired, remaining, status, effective_at, expires_at, reason, created_at';

export const grantView = (g: GrantRecord) => ({
  id: g.id,
  object: 'grant' as const,
  org_id: g.org_id,
  kind: g.kind,
  source: g.source,
  amount_credits: formatCredits(BigInt(g.amount)),
  consumed_credits: formatCredits(BigInt(g.consumed)),
  expired_credits: formatCredits(BigInt(g.expired)),
  remaining_credits: formatCredits(BigInt(g.remaining)),
  status: g.status,
  effective_at: g.effective_at.toISOString(),
  expires_at: g.expires_at?.toISOString() ?? null,
  reason: g.reason,
  created_at: g.created_at.toISOString(),
});
export type GrantView = ReturnType<typeof grantView>;
