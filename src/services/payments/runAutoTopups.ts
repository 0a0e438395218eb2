/**
 * The automatic top-up job. For every org with automatic top-up on whose available credits are
 * below its threshold, it records a pending `auto_topup` payment for what reaches the target (within
 * what is left of the monthly cap; at most one in flight per org, by a unique index), then charges
 * it: the saved card off-session through Stripe (idempotency key = payment id), or at once with the
 * local test provider. A success completes the payment as a webhook would (top-up grant once, invoice
 * number, VAT). A decline fails the payment, turns automatic top-up off with the reason, and sends
 * `auto_topup.failed`. A network or Stripe server error leaves the payment pending: the next run
 * charges it again under the same idempotency key, so the card is charged at most once.
 */

import { publicBase } from '../../config.ts';
import { CREDIT_SCALE, formatCredits, formatUnits, Ratio } from '../../domain/money.ts';
import { MINOR_DIGITS, toMinor } from '../../domain/vat.ts';
import type { Queryable } from '../../store/db.ts';
import { withRetry } from '../../store/retry.ts';
import { type Ctx, writeAudit } from '../context.ts';
import { available, lockBalance } from '../ledger/balances.ts';
import { loadOrg } from '../orgs/shape.ts';
import { emitWebhookEvent } from '../webhooks/emitWebhookEvent.ts';
import { readAutoTopup, spentThisMonth } from './autoTopupSettings.ts';
import { newPaymentId } from './createCheckoutSession.ts';
import { paymentProvider, stripeClient, stripeSdk } from './provider.ts';
import { completePayment, lockPayment } from './settlePayment.ts';
import { PAYMENT_COLUMNS, type PaymentRow } from './shape.ts';

const ACTOR = 'auto_topup';

export interface AutoTopupRun {
  started: number;
  completed: number;
  failed: number;
  pending: number;
}

export async function runAutoTopups(ctx: Ctx, now = new Date()): Promise<AutoTopupRun> {
  const run: AutoTopupRun = { started: 0, completed: 0, failed: 0, pending: 0 };
  const provider = paymentProvider(ctx.config);
  if (provider === 'none') return run;
  const due = await ctx.db.query<{ org_id: string }>(
    `SELECT a.org_id FROM auto_topups a JOIN org_balances b ON b.org_id = a.org_id
      WHERE a.enabled AND b.remaining - b.held - b.overage < a.threshold_credits
        AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.org_id = a.org_id AND p.kind = 'auto_topup' AND p.status = 'pending')
      ORDER BY a.org_id`,
  );
  for (const { org_id } of due) {
    if (await startPurchase(ctx, org_id, provider, now)) run.started++;
  }
  // Everything pending: what was just started, and what a transient error left from earlier runs.
  const pending = await ctx.db.query<PaymentRow>(
    `SELECT ${PAYMENT_COLUMNS} FROM payments WHERE kind = 'auto_topup' AND status = 'pending' ORDER BY created_at, id`,
  );
  for (const payment of pending) {
    const result = await charge(ctx, payment);
    if (result !== 'settled_elsewhere') run[result]++;
  }
  return run;
}

/** Records the pending payment, under the org's balance lock; false when nothing is to buy. */
async function startPurchase(ctx: Ctx, orgId: string, provider: 'stripe' | 'local', now: Date) {
  const org = await loadOrg(ctx.db, orgId);
  return withRetry(() =>
    ctx.db.transaction(async (tx) => {
      const balance = await lockBalance(tx, orgId);
      const settings = await readAutoTopup(tx, orgId);
      if (!settings?.enabled) return false;
      const free = available(balance);
      const target = BigInt(settings.target_credits);
      if (free >= BigInt(settings.threshold_credits) || free >= target) return false;
      const digits = MINOR_DIGITS[org.currency];
      const unit = 10n ** BigInt(digits);
      // Enough money to reach the target, rounded up to the cent, and at least the smallest top-up.
      const exact = Ratio.fromUnits(target - free, CREDIT_SCALE)
        .mul(Ratio.parse(org.credit_value))
        .mul(Ratio.int(unit));
      let minor = (exact.num + exact.den - 1n) / exact.den;
      if (minor < unit) minor = unit;
      const capLeft = toMinor(settings.monthly_cap, org.currency) - (await spentThisMonth(tx, org, now));
      if (minor > capLeft) minor = capLeft;
      if (minor < unit) return false;
      const amount = Ratio.fromUnits(minor, digits);
      const credits = amount.div(Ratio.parse(org.credit_value)).roundHalfEven(CREDIT_SCALE);
      const back = `${publicBase(ctx.config, '')}/usage/payments`;
      const inserted = await tx.query(
        `INSERT INTO payments (org_id, id, provider, kind, amount, currency, credits, success_url, cancel_url, created_by)
         VALUES ($1, $2, $3, 'auto_topup', $4, $5, $6, $7, $7, $8)
         ON CONFLICT (org_id) WHERE kind = 'auto_topup' AND status = 'pending' DO NOTHING RETURNING id`,
        [
          orgId,
          newPaymentId(),
          provider,
          formatUnits(minor, digits),
          org.currency,
          String(credits),
          back,
          ACTOR,
        ],
      );
      return inserted.length > 0;
    }),
  );
}

/** `settled_elsewhere`: another run (another process) completed or failed it meanwhile. */
type Result = 'completed' | 'failed' | 'pending' | 'settled_elsewhere';

async function charge(ctx: Ctx, payment: PaymentRow): Promise<Result> {
  if (payment.provider === 'local') {
    if (paymentProvider(ctx.config) !== 'local') {
      return fail(ctx, payment, 'The local test provider is disabled because Stripe is configured');
    }
    return complete(ctx, payment, { reference: `local_${payment.id}` });
  }
  const settings = await readAutoTopup(ctx.db, payment.org_id);
  const customer = settings?.stripe_customer_id;
  if (!customer) return fail(ctx, payment, 'No saved card');
  const stripe = await stripeClient(ctx.config);
  const { errors } = await stripeSdk();
  try {
    const methods = await stripe.customers.listPaymentMethods(customer, { limit: 1 });
    const method = methods.data[0];
    if (!method) return fail(ctx, payment, 'The saved card is gone from Stripe');
    const intent = await stripe.paymentIntents.create(
      {
        // Stripe takes integer minor units as a JSON number: exact, amounts are capped far below 2^53.
        amount: Number(toMinor(payment.amount, payment.currency)),
        currency: payment.currency.toLowerCase(),
        customer,
        payment_method: method.id,
        off_session: true,
        confirm: true,
        description: `Automatic top-up of ${formatCredits(BigInt(payment.credits))} credits`,
        metadata: { org_id: payment.org_id, payment_id: payment.id },
      },
      { idempotencyKey: `tally-auto-topup-${payment.id}` },
    );
    if (intent.status === 'succeeded') {
      return complete(ctx, payment, {
        reference: intent.id,
        amountMinor: BigInt(intent.amount),
        currency: intent.currency,
      });
    }
    return fail(ctx, payment, `Stripe left the payment ${intent.status}: the card needs the buyer present`);
  } catch (error) {
    if (error instanceof errors.StripeCardError || error instanceof errors.StripeInvalidRequestError) {
      return fail(ctx, payment, `Stripe declined the payment: ${error.message}`.slice(0, 500));
    }
    // Unknown outcome (network, Stripe server error): charge again next run, same idempotency key.
    return 'pending';
  }
}

async function complete(
  ctx: Ctx,
  payment: PaymentRow,
  paid: Parameters<typeof completePayment>[2],
): Promise<Result> {
  return withRetry(() =>
    ctx.db.transaction(async (tx) => {
      await lockBalance(tx, payment.org_id);
      const locked = (await lockPayment(tx, payment.org_id, payment.id))!;
      if (locked.status !== 'pending') return 'settled_elsewhere';
      const outcome = await completePayment(tx, locked, paid, ACTOR);
      if (outcome === 'amount_mismatch') {
        await disable(tx, payment, 'Stripe charged another amount than the top-up asked for');
        return 'failed';
      }
      await emitWebhookEvent(tx, payment.org_id, 'auto_topup.succeeded', {
        payment_id: payment.id,
        amount: payment.amount,
        currency: payment.currency,
        credits: formatCredits(BigInt(payment.credits)),
      });
      return 'completed';
    }),
  );
}

async function fail(ctx: Ctx, payment: PaymentRow, reason: string): Promise<Result> {
  return withRetry(() =>
    ctx.db.transaction(async (tx) => {
      const failed = await tx.query(
        `UPDATE payments SET status = 'failed', failure_reason = $3, updated_at = now()
          WHERE org_id = $1 AND id = $2 AND status = 'pending' RETURNING id`,
        [payment.org_id, payment.id, reason],
      );
      if (failed.length === 0) return 'settled_elsewhere';
      await disable(tx, payment, reason);
      return 'failed';
    }),
  );
}

/** Turns automatic top-up off with its reason and tells the org's webhooks, in the caller's transaction. */
async function disable(tx: Queryable, payment: PaymentRow, reason: string): Promise<void> {
  await tx.query(
    `UPDATE auto_topups SET enabled = false, disabled_reason = $2, updated_at = now() WHERE org_id = $1`,
    [payment.org_id, reason],
  );
  await writeAudit(tx, {
    orgId: payment.org_id,
    actor: ACTOR,
    action: 'auto_topup.disabled',
    target: payment.id,
    data: { reason },
  });
  await emitWebhookEvent(tx, payment.org_id, 'auto_topup.failed', {
    payment_id: payment.id,
    amount: payment.amount,
    currency: payment.currency,
    reason,
    auto_topup_enabled: false,
  });
}
