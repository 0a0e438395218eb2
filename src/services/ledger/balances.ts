/** The kept per-org balance row and the grant rows the draw-down works on. */
import type { DrawableGrant, GrantKind } from '../../domain/drawdown.ts';
import type { Queryable } from '../../store/db.ts';

export interface BalanceRow {
  granted: bigint;
  consumed: bigint;
  expired: bigint;
  remaining: bigint;
  held: bigint;
  overage: bigint;
}

/** Locks the org's balance row (creating it on first use): every credit change of an org queues here. */
export async function lockBalance(tx: Queryable, orgId: string): Promise<BalanceRow> {
  const select = () =>
    tx.query<Record<keyof BalanceRow, string>>(
      'SELECT granted, consumed, expired, remaining, held, overage FROM org_balances WHERE org_id = $1 FOR UPDATE',
      [orgId],
    );
  let [row] = await select();
  if (!row) {
    await tx.query('INSERT INTO org_balances (org_id) VALUES ($1) ON CONFLICT (org_id) DO NOTHING', [orgId]);
    [row] = await select();
  }
  return toBalance(row!);
}

export async function readBalance(q: Queryable, orgId: string): Promise<BalanceRow> {
  const [row] = await q.query<Record<keyof BalanceRow, string>>(
    'SELECT granted, consumed, expired, remaining, held, overage FROM org_balances WHERE org_id = $1',
    [orgId],
  );
  return row
    ? toBalance(row)
    : { granted: 0n, consumed: 0n, expired: 0n, remaining: 0n, held: 0n, overage: 0n };
}

export const toBalance = (row: Record<keyof BalanceRow, string>): BalanceRow => ({
  granted: BigInt(row.granted),
  consumed: BigInt(row.consumed),
  expired: BigInt(row.expired),
  remaining: BigInt(row.remaining),
  held: BigInt(row.held),
  overage: BigInt(row.overage),
});

/** Credits that can still be spent or held: what grants hold, less holds and unpaid overage. */
export const available = (b: BalanceRow): bigint => b.remaining - b.held - b.overage;

/** Adds deltas to an org's balance row. */
export async function addToBalance(tx: Queryable, orgId: string, delta: Partial<BalanceRow>): Promise<void> {
  await tx.query(
    `UPDATE org_balances SET granted = granted + $2, consumed = consumed + $3, expired = expired + $4,
            remaining = remaining + $5, held = held + $6, overage = overage + $7, updated_at = now()
      WHERE org_id = $1`,
    [
      orgId,
      String(delta.granted ?? 0n),
      String(delta.consumed ?? 0n),
      String(delta.expired ?? 0n),
      String(delta.remaining ?? 0n),
      String(delta.held ?? 0n),
      String(delta.overage ?? 0n),
    ],
  );
}

export interface GrantRow extends DrawableGrant {
  org_id: string;
  amount: bigint;
  consumed: bigint;
  expired: bigint;
  status: 'active' | 'expired' | 'voided';
}

export async function activeGrants(tx: Queryable, orgId: string): Promise<GrantRow[]> {
  const rows = await tx.query<GrantFields>(
    `SELECT id, kind, amount, consumed, expired, remaining, status, effective_at, expires_at
       FROM grants WHERE org_id = $1 AND status = 'active' AND effective_at <= now() ORDER BY id`,
    [orgId],
  );
  return rows.map((r) => toGrantRow(orgId, r));
}

/** A grant's columns as SQL answers them, or as JSON (tally_lock_for_spend): times then are text. */
export type GrantFields = Record<
  'id' | 'kind' | 'amount' | 'consumed' | 'expired' | 'remaining' | 'status',
  string
> & {
  effective_at: Date | string;
  expires_at: Date | string | null;
};

export function toGrantRow(orgId: string, r: GrantFields): GrantRow {
  return {
    org_id: orgId,
    id: r.id,
    kind: r.kind as GrantKind,
    amount: BigInt(r.amount),
    consumed: BigInt(r.consumed),
    expired: BigInt(r.expired),
    remaining: BigInt(r.remaining),
    status: r.status as GrantRow['status'],
    effective_at: new Date(r.effective_at),
    expires_at: r.expires_at === null ? null : new Date(r.expires_at),
  };
}
