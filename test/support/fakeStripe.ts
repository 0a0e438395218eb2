/**
 * A local HTTP server speaking Stripe's wire format (form-encoded in, JSON out, Stripe's error
 * shapes) for the calls Tally makes: Checkout Sessions, a customer's saved payment methods and
 * off-session PaymentIntents. The real `stripe` package reaches it through STRIPE_API_BASE.
 * Also: Stripe event envelopes for webhooks, to sign with the SDK's own test-header helper.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StripeCall {
  method: string;
  path: string;
  form: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
}

export interface FakeStripe {
  server: Server;
  calls: StripeCall[];
  base: string;
  /** What the next calls answer: Checkout Sessions fail with 500; charges are declined or fail with 500. */
  state: { failCheckout: boolean; declineCharges: boolean; chargeServerError: boolean };
  close(): Promise<void>;
}

export async function startFakeStripe(secretKey: string): Promise<FakeStripe> {
  const calls: StripeCall[] = [];
  const state = { failCheckout: false, declineCharges: false, chargeServerError: false };
  let n = 0;
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c) => {
      text += c;
    });
    req.on('end', () => {
      const form = new URLSearchParams(text);
      const url = new URL(req.url!, 'http://stripe.test');
      calls.push({ method: req.method!, path: url.pathname, form, headers: req.headers });
      const send = (status: number, body: unknown) => {
        res.writeHead(status, {
          'content-type': 'application/json',
          'request-id': `req_fake_${calls.length}`,
        });
        res.end(JSON.stringify(body));
      };
      if (req.headers.authorization !== `Bearer ${secretKey}`) {
        return send(401, { error: { type: 'invalid_request_error', message: 'Invalid API Key provided' } });
      }
      if (req.method === 'POST' && url.pathname === '/v1/checkout/sessions') {
        if (state.failCheckout)
          return send(500, { error: { type: 'api_error', message: 'Something went wrong' } });
        const id = `cs_test_${++n}_${randomBytes(6).toString('hex')}`;
        return send(200, {
          id,
          object: 'checkout.session',
          mode: form.get('mode'),
          status: 'open',
          payment_status: 'unpaid',
          url: `https://checkout.stripe.test/c/pay/${id}`,
          amount_total: Number(form.get('line_items[0][price_data][unit_amount]')),
          currency: form.get('line_items[0][price_data][currency]'),
          client_reference_id: form.get('client_reference_id'),
          customer_creation: form.get('customer_creation'),
          metadata: { org_id: form.get('metadata[org_id]'), payment_id: form.get('metadata[payment_id]') },
          success_url: form.get('success_url'),
          cancel_url: form.get('cancel_url'),
          livemode: false,
        });
      }
      const methods = url.pathname.match(/^\/v1\/customers\/(cus_\w+)\/payment_methods$/);
      if (req.method === 'GET' && methods) {
        return send(200, {
          object: 'list',
          url: url.pathname,
          has_more: false,
          data: [
            { id: `pm_card_${methods[1]}`, object: 'payment_method', type: 'card', customer: methods[1] },
          ],
        });
      }
      if (req.method === 'POST' && url.pathname === '/v1/payment_intents') {
        if (state.chargeServerError) return send(500, { error: { type: 'api_error', message: 'Try again' } });
        if (state.declineCharges) {
          return send(402, {
            error: {
              type: 'card_error',
              code: 'card_declined',
              decline_code: 'insufficient_funds',
              message: 'Your card has insufficient funds.',
            },
          });
        }
        return send(200, {
          id: `pi_${++n}_${randomBytes(6).toString('hex')}`,
          object: 'payment_intent',
          status: 'succeeded',
          amount: Number(form.get('amount')),
          currency: form.get('currency'),
          customer: form.get('customer'),
          payment_method: form.get('payment_method'),
          metadata: { org_id: form.get('metadata[org_id]'), payment_id: form.get('metadata[payment_id]') },
          livemode: false,
        });
      }
      send(404, {
        error: { type: 'invalid_request_error', message: `Unrecognized request URL (${req.url})` },
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    calls,
    base: `http://127.0.0.1:${port}`,
    state,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

let eventSeq = 0;

/** A Stripe event envelope around `object`, as Stripe posts it to a webhook endpoint. */
export function stripeEvent(type: string, object: Record<string, unknown>, id?: string) {
  return {
    id: id ?? `evt_test_${++eventSeq}_${randomBytes(4).toString('hex')}`,
    object: 'event',
    api_version: '2026-10-28.endive',
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
    data: { object },
  };
}
