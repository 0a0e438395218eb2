/**
 * The local payment provider: for the demo and offline use, when no Stripe key is configured. The
 * checkout URL is a page served by Tally, clearly labelled as a test payment that moves no money; its
 * unguessable session id is the capability to confirm it, as a Stripe Checkout URL is. Confirming
 * runs the same completion as a Stripe webhook (grant once, invoice number, VAT). It refuses to work
 * whenever a Stripe key is set, even for payments started before the key was.
 */
import type { Config } from '../../config.ts';
import type { Db } from '../../store/db.ts';
import { withRetry } from '../../store/retry.ts';
import { ServiceError } from '../errors.ts';
import { lockBalance } from '../ledger/balances.ts';
import { localProviderEnabled } from './provider.ts';
import { completePayment, lockPayment } from './settlePayment.ts';
import { PAYMENT_COLUMNS, type PaymentRow, paymentView } from './shape.ts';

const SESSION = /^lcs_[\w-]{16,64}$/;

function refuseUnlessLocal(config: Config): void {
  if (!localProviderEnabled(config)) {
    throw new ServiceError(
      404,
      'not_found',
      'The local payment provider is disabled because Stripe is configured',
    );
  }
}

export async function findLocalSession(db: Db, config: Config, session: string): Promise<PaymentRow> {
  refuseUnlessLocal(config);
  if (!SESSION.test(session)) throw new ServiceError(404, 'not_found', 'Checkout session not found');
  const [row] = await db.query<PaymentRow>(
    `SELECT ${PAYMENT_COLUMNS} FROM payments WHERE checkout_session_id = $1 AND provider = 'local'`,
    [session],
  );
  if (!row) throw new ServiceError(404, 'not_found', 'Checkout session not found');
  return row;
}

export async function confirmLocalPayment(db: Db, config: Config, session: string) {
  const found = await findLocalSession(db, config, session);
  return withRetry(() =>
    db.transaction(async (tx) => {
      await lockBalance(tx, found.org_id);
      const payment = (await lockPayment(tx, found.org_id, found.id))!;
      if (payment.status === 'failed') {
        throw new ServiceError(409, 'payment_failed', 'This checkout has failed; start a new one');
      }
      await completePayment(tx, payment, { reference: `local_${payment.id}` }, 'local_payment_provider');
      return paymentView((await lockPayment(tx, found.org_id, found.id))!);
    }),
  );
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The checkout page of the local provider: plain HTML, no script, one form. */
export function localCheckoutPage(payment: PaymentRow, session: string): string {
  const done = payment.grant_id !== null;
  const amount = `${escapeHtml(payment.currency)} ${escapeHtml(payment.amount)}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Local test payment - Tally</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1f2328}
.banner{background:#fff3cd;border:1px solid #e0b400;padding:.75rem 1rem;border-radius:.5rem}
button{font-size:1rem;padding:.6rem 1.2rem;border-radius:.4rem;border:0;background:#1f6feb;color:#fff;cursor:pointer}
a{color:#1f6feb}</style></head><body>
<p class="banner"><strong>Local test payment provider.</strong> No real money moves: Stripe is not configured on this
Tally server, so this page completes the top-up for demos and offline use.</p>
<h1>Top up ${amount}</h1>
<p>Credits: ${escapeHtml(paymentView(payment).credits)}</p>
${
  done
    ? `<p>This top-up is complete. <a href="${escapeHtml(payment.success_url)}">Back to the app</a></p>`
    : `<form method="post" action="/local-checkout/${escapeHtml(session)}/confirm">
<button type="submit">Pay ${amount} (test)</button></form>
<p><a href="${escapeHtml(payment.cancel_url)}">Cancel</a></p>`
}
</body></html>`;
}
