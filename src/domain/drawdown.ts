/**
 * Which grants pay for a charge: plan first, then bonus, then top-ups, then promo, then operator
 * adjustments; within a kind the earliest expiry first (never-expiring last). What no grant covers
 * is overage: the usage happened, so it is recorded, never dropped.
 */
export const DRAW_ORDER = ['plan', 'bonus', 'topup', 'promo', 'adjustment'] as const;
export type GrantKind = (typeof DRAW_ORDER)[number];

export interface DrawableGrant {
  id: string;
  kind: GrantKind;
  remaining: bigint;
  expires_at: Date | null;
  effective_at: Date;
}

export function drawOrder<T extends DrawableGrant>(grants: T[]): T[] {
  const expiry = (g: T) => g.expires_at?.getTime() ?? Number.POSITIVE_INFINITY;
  return [...grants].sort(
    (a, b) =>
      DRAW_ORDER.indexOf(a.kind) - DRAW_ORDER.indexOf(b.kind) ||
      expiry(a) - expiry(b) ||
      a.effective_at.getTime() - b.effective_at.getTime() ||
      (a.id < b.id ? -1 : 1),
  );
}

export interface Draw {
  grantId: string;
  amount: bigint;
}

/**
 * Allocates charges in order over the grants (mutating a copy of their remaining amounts).
 * Returns per charge the draws and the uncovered overage.
 */
export function drawDown(grants: DrawableGrant[], charges: bigint[]): { draws: Draw[]; overage: bigint }[] {
  const pool = drawOrder(grants).map((g) => ({ id: g.id, left: g.remaining }));
  return charges.map((charge) => {
    let due = charge;
    const draws: Draw[] = [];
    for (const grant of pool) {
      if (due === 0n) break;
      if (grant.left === 0n) continue;
      const take = grant.left < due ? grant.left : due;
      grant.left -= take;
      due -= take;
      draws.push({ grantId: grant.id, amount: take });
    }
    return { draws, overage: due };
  });
}
