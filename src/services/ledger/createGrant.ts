import { CREDIT_SCALE, parseUnits } from '../../domain/money.ts';
import { audit, type Ctx, requireOperator } from '../context.ts';
import { invalid } from '../errors.ts';
import { loadOrg } from '../orgs/shape.ts';
import { recordGrant } from './recordGrant.ts';
import { type GrantView, grantView } from './shape.ts';

export interface CreateGrantInput {
  kind: 'bonus' | 'topup' | 'promo' | 'adjustment';
  amount_credits: string;
  expires_at?: string | null;
  reason?: string | null;
  source?: 'operator' | 'referral' | 'promotion';
}

/** Adds credits to an org (operator only: granting credits is a billing decision). */
export async function createGrant(ctx: Ctx, orgId: string, input: CreateGrantInput): Promise<GrantView> {
  requireOperator(ctx);
  const amount = parseUnits(input.amount_credits, CREDIT_SCALE);
  if (amount <= 0n) throw invalid('amount_credits', 'amount_credits must be greater than 0');
  const now = new Date();
  const expiresAt = input.expires_at ? new Date(input.expires_at) : null;
  if (expiresAt && expiresAt <= now) throw invalid('expires_at', 'expires_at must be in the future');
  return ctx.db.transaction(async (tx) => {
    const org = await loadOrg(tx, orgId);
    if (org.billing_mode !== 'credits') {
      throw invalid('kind', `A ${org.billing_mode} org is not billed in credits; it cannot receive grants`);
    }
    const row = await recordGrant(tx, orgId, {
      kind: input.kind,
      source: input.source ?? 'operator',
      amount,
      effectiveAt: now,
      expiresAt,
      reason: input.reason ?? null,
      createdBy: ctx.principal.id,
    });
    await audit(tx, ctx, orgId, 'grant.created', row!.id, {
      kind: input.kind,
      amount_credits: input.amount_credits,
    });
    return grantView(row!);
  });
}
