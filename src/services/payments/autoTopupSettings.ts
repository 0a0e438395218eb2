/**
 * An org's automatic top-up settings: below `threshold_credits` available, buy enough to reach
 * `target_credits`, never more than `monthly_cap` (org currency) of automatic purchases per
 * calendar month. Enabling it needs a way to pay without the buyer present: a card saved by a
 * Stripe checkout (`save_payment_method`), or the local test provider when Stripe is not configured.
 */
import { CREDIT_SCALE, formatCredits, formatUnits, parseUnits } from '../../domain/money.ts';
import { calendarMonth } from '../../domain/periods.ts';
import { MINOR_DIGITS, toMinor } from '../../domain/vat.ts';
import type { Queryable } from '../../store/db.ts';
import { audit, type Ctx, scopeOrg } from '../context.ts';
import { invalid } from '../errors.ts';
import { loadOrg, type OrgRow } from '../orgs/shape.ts';
import { paymentProvider } from './provider.ts';
import { money } from './shape.ts';

export interface AutoTopupRow {
  org_id: string;
  enabled: boolean;
  threshold_credits: string;
  target_credits: string;
  monthly_cap: string;
  stripe_customer_id: string | null;
  disabled_reason: string | null;
}

const COLUMNS =
  'org_id, enabled, threshold_credits, target_credits, monthly_cap::text AS monthly_cap, stripe_customer_id, disabled_reason';

export async function readAutoTopup(q: Queryable, orgId: string): Promise<AutoTopupRow | null> {
  const [row] = await q.query<AutoTopupRow>(`SELECT ${COLUMNS} FROM auto_topups WHERE org_id = $1`, [orgId]);
  return row ?? null;
}

/** What automatic purchases (pending or done) took from this month's cap so far, in minor units. */
export async function spentThisMonth(q: Queryable, org: OrgRow, now: Date): Promise<bigint> {
  const month = calendarMonth(org.timezone, now);
  const [row] = await q.query<{ spent: string }>(
    `SELECT coalesce(sum(amount), 0)::text AS spent FROM payments
      WHERE org_id = $1 AND kind = 'auto_topup' AND status <> 'failed' AND created_at >= $2 AND created_at < $3`,
    [org.id, month.start.toISOString(), month.end.toISOString()],
  );
  return toMinor(row!.spent, org.currency);
}

async function view(q: Queryable, ctx: Ctx, org: OrgRow, row: AutoTopupRow | null, now: Date) {
  const digits = MINOR_DIGITS[org.currency];
  const method: 'local' | 'stripe_saved_card' | null =
    paymentProvider(ctx.config) === 'local' ? 'local' : row?.stripe_customer_id ? 'stripe_saved_card' : null;
  return {
    object: 'auto_topup' as const,
    org_id: org.id,
    enabled: row?.enabled ?? false,
    threshold_credits: formatCredits(BigInt(row?.threshold_credits ?? 0)),
    target_credits: formatCredits(BigInt(row?.target_credits ?? 0)),
    monthly_cap: money(row?.monthly_cap ?? '0', org.currency),
    currency: org.currency,
    payment_method: method,
    purchased_this_month: formatUnits(await spentThisMonth(q, org, now), digits),
    disabled_reason: row?.disabled_reason ?? null,
  };
}

export async function getAutoTopup(ctx: Ctx, orgId: string, now = new Date()) {
  scopeOrg(ctx, orgId, 'billing:purchase');
  const org = await loadOrg(ctx.db, orgId);
  return view(ctx.db, ctx, org, await readAutoTopup(ctx.db, orgId), now);
}

export interface AutoTopupInput {
  enabled: boolean;
  threshold_credits: string;
  target_credits: string;
  monthly_cap: string;
}

export async function setAutoTopup(ctx: Ctx, orgId: string, input: AutoTopupInput, now = new Date()) {
  scopeOrg(ctx, orgId, 'billing:purchase');
  const org = await loadOrg(ctx.db, orgId);
  if (org.billing_mode !== 'credits') {
    throw invalid('enabled', `A ${org.billing_mode} org is not billed in credits; it has no top-ups`);
  }
  const credits = (field: 'threshold_credits' | 'target_credits') => {
    try {
      return parseUnits(input[field], CREDIT_SCALE);
    } catch {
      throw invalid(field, `${field} must be a decimal string with at most ${CREDIT_SCALE} decimals`);
    }
  };
  const threshold = credits('threshold_credits');
  const target = credits('target_credits');
  if (threshold < 0n) throw invalid('threshold_credits', 'threshold_credits cannot be negative');
  if (target <= threshold) throw invalid('target_credits', 'target_credits must be above threshold_credits');
  let cap: bigint;
  try {
    cap = toMinor(input.monthly_cap, org.currency);
  } catch {
    throw invalid('monthly_cap', `monthly_cap must be an amount in ${org.currency} with at most 2 decimals`);
  }
  if (cap < 10n ** BigInt(MINOR_DIGITS[org.currency])) {
    throw invalid('monthly_cap', `monthly_cap must be at least 1 ${org.currency}`);
  }
  const existing = await readAutoTopup(ctx.db, orgId);
  if (input.enabled && paymentProvider(ctx.config) === 'stripe' && !existing?.stripe_customer_id) {
    throw invalid(
      'enabled',
      'No saved card: complete a top-up with save_payment_method: true first, then enable automatic top-up',
    );
  }
  if (input.enabled && paymentProvider(ctx.config) === 'none') {
    throw invalid('enabled', 'Payments are not configured on this server');
  }
  const row = await ctx.db.transaction(async (tx) => {
    const [saved] = await tx.query<AutoTopupRow>(
      `INSERT INTO auto_topups (org_id, enabled, threshold_credits, target_credits, monthly_cap, disabled_reason)
       VALUES ($1, $2, $3, $4, $5, NULL)
       ON CONFLICT (org_id) DO UPDATE SET enabled = $2, threshold_credits = $3, target_credits = $4,
         monthly_cap = $5, disabled_reason = NULL, updated_at = now()
       RETURNING ${COLUMNS}`,
      [orgId, input.enabled, String(threshold), String(target), input.monthly_cap],
    );
    await audit(tx, ctx, orgId, 'auto_topup.updated', orgId, { ...input });
    return saved!;
  });
  return view(ctx.db, ctx, org, row, now);
}

/** A Stripe checkout that saved a card: remember its customer for off-session top-ups. */
export async function rememberStripeCustomer(
  tx: Queryable,
  orgId: string,
  customerId: string,
): Promise<void> {
  await tx.query(
    `INSERT INTO auto_topups (org_id, stripe_customer_id) VALUES ($1, $2)
     ON CONFLICT (org_id) DO UPDATE SET stripe_customer_id = $2, updated_at = now()`,
    [orgId, customerId],
  );
}
