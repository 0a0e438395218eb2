/**
 * Stripe webhooks: the signature is verified over the raw body with the SDK, then each event id is
 * acted on once (processed_stripe_events), in one transaction that takes the org balance lock first.
 * Completion grants the top-up once whichever of checkout.session.completed (paid) and
 * checkout.session.async_payment_succeeded arrives first, however often each is repeated; refunds
 * and disputes take the credits back. Events about an unknown org or payment answer 200 (Stripe must
 * not retry them for days) and are logged.
 */
import type Stripe from 'stripe';
import type { Config } from '../../config.ts';
import type { Logger } from '../../http/logger.ts';
import type { Db, Queryable } from '../../store/db.ts';
import { withRetry } from '../../store/retry.ts';
import { ServiceError } from '../errors.ts';
import { lockBalance } from '../ledger/balances.ts';
import { rememberStripeCustomer } from './autoTopupSettings.ts';
import { stripeClient } from './provider.ts';
import { completePayment, lockPayment, recordReversal } from './settlePayment.ts';

export interface WebhookDeps {
  db: Db;
  config: Config;
  logger: Logger;
}

export interface WebhookAnswer {
  received: true;
  event_id: string;
  outcome: string;
}

type Meta = Record<string, string> | null | undefined;
const ACTOR = 'stripe';
const refOf = (value: unknown): string | null =>
  typeof value === 'string'
    ? value
    : value && typeof value === 'object' && 'id' in value
      ? String(value.id)
      : null;
/** Stripe amounts are integer minor units in JSON numbers. */
const minorOf = (value: unknown): bigint | null =>
  typeof value === 'number' && Number.isSafeInteger(value) ? BigInt(value) : null;

export async function handleStripeWebhook(
  deps: WebhookDeps,
  raw: Uint8Array,
  signature: string | undefined,
): Promise<WebhookAnswer> {
  const secret = deps.config.STRIPE_WEBHOOK_SECRET;
  if (!secret) {
    throw new ServiceError(
      503,
      'stripe_not_configured',
      'STRIPE_WEBHOOK_SECRET is not set; webhooks cannot be verified',
    );
  }
  if (!signature) throw new ServiceError(400, 'invalid_signature', 'The Stripe-Signature header is missing');
  let event: Stripe.Event;
  try {
    event = (await stripeClient(deps.config)).webhooks.constructEvent(Buffer.from(raw), signature, secret);
  } catch (error) {
    throw new ServiceError(
      400,
      'invalid_signature',
      `The Stripe signature does not verify: ${(error as Error).message}`,
    );
  }
  const outcome = await withRetry(() => deps.db.transaction((tx) => processEvent(tx, event)));
  const log = outcome.startsWith('ignored') ? deps.logger.error : deps.logger.info;
  log({ stripe_event: event.id, type: event.type, outcome });
  return { received: true, event_id: event.id, outcome };
}

async function findPayment(
  tx: Queryable,
  meta: Meta,
  sessionId: string | null,
  reference: string | null,
): Promise<{ org_id: string; id: string } | null> {
  if (meta?.org_id && meta.payment_id) {
    const [row] = await tx.query<{ org_id: string; id: string }>(
      'SELECT org_id, id FROM payments WHERE org_id = $1 AND id = $2',
      [meta.org_id, meta.payment_id],
    );
    if (row) return row;
  }
  if (sessionId) {
    const [row] = await tx.query<{ org_id: string; id: string }>(
      'SELECT org_id, id FROM payments WHERE checkout_session_id = $1',
      [sessionId],
    );
    if (row) return row;
  }
  if (reference) {
    const [row] = await tx.query<{ org_id: string; id: string }>(
      'SELECT org_id, id FROM payments WHERE payment_reference = $1',
      [reference],
    );
    if (row) return row;
  }
  return null;
}

async function processEvent(tx: Queryable, event: Stripe.Event): Promise<string> {
  let target: { org_id: string; id: string } | null = null;
  switch (event.type) {
    case 'checkout.session.completed':
    case 'checkout.session.async_payment_succeeded':
    case 'checkout.session.async_payment_failed':
    case 'checkout.session.expired': {
      const s = event.data.object;
      target = await findPayment(tx, s.metadata, s.id, refOf(s.payment_intent));
      break;
    }
    case 'charge.refunded': {
      const charge = event.data.object;
      target = await findPayment(tx, charge.metadata, null, refOf(charge.payment_intent));
      break;
    }
    case 'charge.dispute.created': {
      const dispute = event.data.object;
      target = await findPayment(tx, dispute.metadata, null, refOf(dispute.payment_intent));
      break;
    }
    default:
      return 'ignored_type';
  }
  if (!target) {
    await tx.query(
      `INSERT INTO processed_stripe_events (event_id, type, outcome) VALUES ($1, $2, 'unknown_payment')
       ON CONFLICT (event_id) DO NOTHING`,
      [event.id, event.type],
    );
    return 'ignored_unknown_payment';
  }
  // Every credit change of an org queues on its balance row; then the event id is claimed.
  await lockBalance(tx, target.org_id);
  const [claimed] = await tx.query(
    `INSERT INTO processed_stripe_events (event_id, type, org_id, payment_id, outcome) VALUES ($1, $2, $3, $4, 'processing')
     ON CONFLICT (event_id) DO NOTHING RETURNING event_id`,
    [event.id, event.type, target.org_id, target.id],
  );
  if (!claimed) return 'duplicate';
  const payment = (await lockPayment(tx, target.org_id, target.id))!;
  let outcome: string;
  switch (event.type) {
    case 'checkout.session.completed':
    case 'checkout.session.async_payment_succeeded': {
      const s = event.data.object;
      if (event.type === 'checkout.session.completed' && s.payment_status !== 'paid') {
        // An async payment method: the money is not there yet; async_payment_succeeded follows.
        await tx.query(
          `UPDATE payments SET payment_reference = COALESCE(payment_reference, $3), updated_at = now()
            WHERE org_id = $1 AND id = $2`,
          [payment.org_id, payment.id, refOf(s.payment_intent)],
        );
        outcome = 'awaiting_payment';
        break;
      }
      outcome = await completePayment(
        tx,
        payment,
        {
          reference: refOf(s.payment_intent),
          sessionId: s.id,
          amountMinor: minorOf(s.amount_total),
          currency: s.currency ?? null,
        },
        ACTOR,
      );
      // The buyer asked to keep the card for automatic top-ups: Stripe saved it on this customer.
      const customer = refOf(s.customer);
      if (payment.save_payment_method && customer && outcome === 'completed') {
        await rememberStripeCustomer(tx, payment.org_id, customer);
      }
      break;
    }
    case 'checkout.session.async_payment_failed':
    case 'checkout.session.expired': {
      const failed = await tx.query(
        `UPDATE payments SET status = 'failed', failure_reason = $3, updated_at = now()
          WHERE org_id = $1 AND id = $2 AND status = 'pending' RETURNING id`,
        [
          payment.org_id,
          payment.id,
          event.type === 'checkout.session.expired' ? 'Checkout expired' : 'Payment failed',
        ],
      );
      outcome = failed.length ? 'failed' : 'unchanged';
      break;
    }
    case 'charge.refunded': {
      const charge = event.data.object;
      const refunded = minorOf(charge.amount_refunded);
      if (refunded === null) {
        outcome = 'ignored_bad_amount';
        break;
      }
      await recordReversal(tx, payment, { refundedMinor: refunded }, `refund of charge ${charge.id}`, ACTOR);
      outcome = 'refunded';
      break;
    }
    case 'charge.dispute.created': {
      const dispute = event.data.object;
      const amount = minorOf(dispute.amount);
      if (amount === null) {
        outcome = 'ignored_bad_amount';
        break;
      }
      await recordReversal(tx, payment, { disputedMinor: amount }, `dispute ${dispute.id}`, ACTOR);
      outcome = 'disputed';
      break;
    }
  }
  await tx.query('UPDATE processed_stripe_events SET outcome = $2 WHERE event_id = $1', [event.id, outcome]);
  return outcome;
}
