/**
 * Starts a credit top-up: a pending payment row first (committed, so a webhook can always find it),
 * then a Stripe Checkout Session for exactly that amount, or a local checkout page when Stripe is
 * not configured. Credits are added only when the payment is confirmed (webhook or local confirm).
 */

import { randomBytes } from 'node:crypto';
import { publicBase } from '../../config.ts';
import { newId } from '../../domain/ids.ts';
import { CREDIT_SCALE, formatCredits, formatUnits, Ratio } from '../../domain/money.ts';
import { MINOR_DIGITS, toMinor } from '../../domain/vat.ts';
import { audit, type Ctx, scopeOrg } from '../context.ts';
import { invalid, ServiceError } from '../errors.ts';
import { loadOrg } from '../orgs/shape.ts';
import { paymentProvider, stripeClient } from './provider.ts';
import { checkoutView, PAYMENT_COLUMNS, type PaymentRow } from './shape.ts';

/** The amounts the top-up dialog offers; any other amount from 1 to TALLY_MAX_TOPUP is custom. */
export const TOPUP_PRESETS = ['10', '50', '100', '300', '500', '1000'] as const;

export const newPaymentId = (): string => newId('req').replace(/^req_/, 'pay_');

export async function createCheckoutSession(
  ctx: Ctx,
  orgId: string,
  input: { amount: string; save_payment_method?: boolean },
  origin: string,
) {
  scopeOrg(ctx, orgId, 'billing:purchase');
  const provider = paymentProvider(ctx.config);
  if (provider === 'none') {
    throw new ServiceError(
      503,
      'payments_unavailable',
      ctx.config.STRIPE_WEBHOOK_SECRET
        ? 'Payments are not configured: STRIPE_WEBHOOK_SECRET is set without STRIPE_SECRET_KEY'
        : 'Payments are not configured: set STRIPE_SECRET_KEY (the local test provider runs only with TALLY_DEMO=1)',
    );
  }
  const org = await loadOrg(ctx.db, orgId);
  if (org.billing_mode !== 'credits') {
    throw invalid('amount', `A ${org.billing_mode} org is not billed in credits; it cannot buy top-ups`);
  }
  const digits = MINOR_DIGITS[org.currency];
  let minor: bigint;
  try {
    minor = toMinor(input.amount, org.currency);
  } catch {
    throw invalid('amount', `amount must be a decimal string with at most ${digits} decimals`);
  }
  const max = Ratio.parse(ctx.config.TALLY_MAX_TOPUP);
  const value = Ratio.fromUnits(minor, digits);
  if (value.cmp(Ratio.ONE) < 0) throw invalid('amount', `amount must be at least 1 ${org.currency}`);
  if (value.cmp(max) > 0) {
    throw invalid('amount', `amount must be at most ${max.toDecimal(digits)} ${org.currency}`);
  }
  if (minor > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid('amount', 'amount is too large');
  const credits = value.div(Ratio.parse(org.credit_value)).roundHalfEven(CREDIT_SCALE);
  if (credits <= 0n) {
    throw invalid('amount', `amount buys no credits at this org's credit value (${org.credit_value})`);
  }
  const id = newPaymentId();
  const base = publicBase(ctx.config, origin);
  const back = `${base}/usage/payments?payment=${id}`;
  const amount = formatUnits(minor, digits);
  const localSession = provider === 'local' ? `lcs_${randomBytes(24).toString('base64url')}` : null;

  await ctx.db.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO payments (org_id, id, provider, amount, currency, credits, checkout_session_id, checkout_url,
                             success_url, cancel_url, created_by, save_payment_method)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [
        orgId,
        id,
        provider,
        amount,
        org.currency,
        String(credits),
        localSession,
        localSession ? `${base}/local-checkout/${localSession}` : null,
        `${back}&checkout=success`,
        `${back}&checkout=cancelled`,
        ctx.principal.id,
        input.save_payment_method ?? false,
      ],
    );
    await audit(tx, ctx, orgId, 'checkout.created', id, { provider, amount, currency: org.currency });
  });

  if (provider === 'stripe') {
    let session: { id: string; url: string | null };
    try {
      session = await (await stripeClient(ctx.config)).checkout.sessions.create(
        {
          mode: 'payment',
          client_reference_id: id,
          line_items: [
            {
              quantity: 1,
              price_data: {
                currency: org.currency.toLowerCase(),
                // Stripe takes integer minor units as a JSON number: exact below 2^53 (checked above).
                unit_amount: Number(minor),
                product_data: { name: `${formatCredits(credits)} credits (${org.name})` },
              },
            },
          ],
          metadata: { org_id: orgId, payment_id: id },
          payment_intent_data: {
            metadata: { org_id: orgId, payment_id: id },
            // Kept on a new customer for automatic top-ups, charged without the buyer present.
            ...(input.save_payment_method ? { setup_future_usage: 'off_session' as const } : {}),
          },
          ...(input.save_payment_method ? { customer_creation: 'always' as const } : {}),
          success_url: `${back}&checkout=success`,
          cancel_url: `${back}&checkout=cancelled`,
        },
        { idempotencyKey: `tally-checkout-${id}` },
      );
    } catch (error) {
      await ctx.db.query(
        `UPDATE payments SET status = 'failed', failure_reason = $3, updated_at = now() WHERE org_id = $1 AND id = $2`,
        [orgId, id, `Stripe refused the checkout session: ${(error as Error).message}`.slice(0, 500)],
      );
      throw new ServiceError(
        503,
        'payment_provider_unavailable',
        'Stripe could not create the checkout session; retry shortly',
      );
    }
    await ctx.db.query(
      `UPDATE payments SET checkout_session_id = COALESCE(checkout_session_id, $3), checkout_url = $4, updated_at = now()
        WHERE org_id = $1 AND id = $2`,
      [orgId, id, session.id, session.url],
    );
  }
  const [row] = await ctx.db.query<PaymentRow>(
    `SELECT ${PAYMENT_COLUMNS} FROM payments WHERE org_id = $1 AND id = $2`,
    [orgId, id],
  );
  return checkoutView(row!);
}
