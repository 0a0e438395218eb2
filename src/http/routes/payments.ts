/**
 * Payments: checkout sessions for credit top-ups, the payment history and invoices, the invoice
 * settings (operator), the Stripe webhook (no bearer key: the Stripe signature authenticates it) and
 * the local payment provider's checkout page (no bearer key: its unguessable session id does).
 */
import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type { Config } from '../../config.ts';
import { getAutoTopup, setAutoTopup } from '../../services/payments/autoTopupSettings.ts';
import { createCheckoutSession, TOPUP_PRESETS } from '../../services/payments/createCheckoutSession.ts';
import { handleStripeWebhook } from '../../services/payments/handleStripeWebhook.ts';
import { getInvoiceSettings, setInvoiceSettings } from '../../services/payments/invoiceSettings.ts';
import { getPayment, listPayments } from '../../services/payments/listPayments.ts';
import {
  confirmLocalPayment,
  findLocalSession,
  localCheckoutPage,
} from '../../services/payments/localCheckout.ts';
import { invoicePdf } from '../../services/payments/renderInvoicePdf.ts';
import { PAYMENT_STATUSES, type PaymentStatus, paymentView } from '../../services/payments/shape.ts';
import type { Db } from '../../store/db.ts';
import type { AppEnv } from '../env.ts';
import type { Logger } from '../logger.ts';
import {
  body,
  errorResponses,
  Id,
  json,
  ListQuery,
  OptionalText,
  OrgParam,
  ProblemSchema,
} from '../schemas.ts';

const Amount = z.string().openapi({ example: '50' });

const Status = z.enum(PAYMENT_STATUSES);

export const CheckoutSessionSchema = z
  .object({
    id: z.string().openapi({ description: 'The payment id (pay_...)' }),
    object: z.literal('checkout_session'),
    provider: z.enum(['stripe', 'local']),
    checkout_session_id: z.string().nullable(),
    url: z.string().nullable().openapi({ description: 'Send the buyer here to pay' }),
    status: Status,
    amount: Amount,
    currency: z.enum(['EUR', 'USD']),
    credits: z.string(),
  })
  .openapi('CheckoutSession');

export const PaymentSchema = z
  .object({
    id: z.string(),
    object: z.literal('payment'),
    org_id: z.string(),
    provider: z.enum(['stripe', 'local']),
    kind: z.enum(['checkout', 'auto_topup']).openapi({ description: 'A checkout, or an automatic top-up' }),
    status: Status,
    amount: Amount,
    currency: z.enum(['EUR', 'USD']),
    credits: z.string(),
    checkout_session_id: z.string().nullable(),
    payment_reference: z.string().nullable(),
    grant_id: z.string().nullable(),
    invoice_number: z.string().nullable(),
    invoice_url: z.string().nullable(),
    vat_rate: z.string().nullable(),
    net_amount: z.string().nullable(),
    vat_amount: z.string().nullable(),
    refunded_amount: z.string(),
    disputed_amount: z.string(),
    reversed_credits: z.string().openapi({ description: 'Credits taken back after refunds and disputes' }),
    unrecovered_credits: z
      .string()
      .openapi({ description: 'Credits a refund or dispute could not take back: they were already used' }),
    failure_reason: z.string().nullable(),
    created_at: z.string(),
    completed_at: z.string().nullable(),
  })
  .openapi('Payment');

export const InvoiceSettingsSchema = z
  .object({
    object: z.literal('invoice_settings'),
    seller_name: z.string(),
    seller_details: z.array(z.string()),
    seller_vat_id: z.string().nullable(),
    vat_rate: z.string(),
    invoice_prefix: z.string(),
  })
  .openapi('InvoiceSettings');

const CreateCheckout = z
  .strictObject({
    amount: z
      .string()
      .max(40)
      .regex(/^\d+(\.\d{1,2})?$/, 'must be a decimal string with at most 2 decimals, such as "50"')
      .openapi({
        description: `In the org currency: a preset (${TOPUP_PRESETS.join(', ')}) or any amount from 1 to TALLY_MAX_TOPUP`,
        example: '50',
      }),
    save_payment_method: z.boolean().optional().openapi({
      description: 'Keep the card (Stripe) for automatic top-ups, charged without the buyer present',
    }),
  })
  .openapi('CreateCheckoutSession');

/** Past 12 integer digits an amount overflows BIGINT micro-credits or NUMERIC(20, 2): a 500. */
const BELOW_A_TRILLION = /^\d{1,12}(\.|$)/;
const CreditAmount = z
  .string()
  .max(40)
  .regex(/^\d+(\.\d{1,6})?$/, 'must be a decimal string of credits, such as "100"')
  .regex(BELOW_A_TRILLION, 'must be below 1 000 000 000 000');
export const AutoTopupSchema = z
  .object({
    object: z.literal('auto_topup'),
    org_id: z.string(),
    enabled: z.boolean(),
    threshold_credits: z.string(),
    target_credits: z.string(),
    monthly_cap: Amount,
    currency: z.enum(['EUR', 'USD']),
    payment_method: z
      .enum(['stripe_saved_card', 'local'])
      .nullable()
      .openapi({ description: 'How automatic top-ups pay; null: no card saved yet' }),
    purchased_this_month: Amount.openapi({
      description: 'Automatic purchases this calendar month, pending or done',
    }),
    disabled_reason: z
      .string()
      .nullable()
      .openapi({ description: 'Why Tally turned it off (a declined card)' }),
  })
  .openapi('AutoTopup');
const SetAutoTopup = z
  .strictObject({
    enabled: z.boolean(),
    threshold_credits: CreditAmount.openapi({ description: 'Top up when available credits fall below this' }),
    target_credits: CreditAmount.openapi({ description: 'Buy enough to reach this; above the threshold' }),
    monthly_cap: z
      .string()
      .max(40)
      .regex(/^\d+(\.\d{1,2})?$/, 'must be a decimal string with at most 2 decimals, such as "200"')
      .regex(BELOW_A_TRILLION, 'must be below 1 000 000 000 000')
      .openapi({ description: 'Most automatic purchases per calendar month, in the org currency' }),
  })
  .openapi('SetAutoTopup');

const PaymentParams = OrgParam.extend({
  payment: Id('pay').openapi({ param: { name: 'payment', in: 'path' } }),
});
const STATUS = `(${PAYMENT_STATUSES.join('|')})`;
/** One status or several, comma-separated: the payments page lists those that went through. */
const StatusFilter = z
  .string()
  .regex(
    new RegExp(`^${STATUS}(,${STATUS})*$`),
    `must be one or more of ${PAYMENT_STATUSES.join(', ')}, separated by commas`,
  )
  .openapi({
    description: 'Only payments in this status, or in any of several separated by commas',
    example: 'completed,refunded,disputed',
  });

export function paymentRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/auto_topup',
      tags: ['Payments'],
      summary: 'Automatic top-up settings and what it bought this month',
      request: { params: OrgParam },
      responses: { 200: json(AutoTopupSchema, 'The settings'), ...errorResponses },
    }),
    async (c) => c.json(await getAutoTopup(c.get('ctx'), c.req.valid('param').org), 200),
  );
  app.openapi(
    createRoute({
      method: 'put',
      path: '/v1/orgs/{org}/auto_topup',
      tags: ['Payments'],
      summary: 'Turn automatic top-up on or off: below a threshold, buy up to a target within a monthly cap',
      description:
        'Needs billing:purchase. With Stripe, a card saved by a checkout with save_payment_method: true is charged off-session; a declined card turns it off and sends auto_topup.failed.',
      request: { params: OrgParam, ...body(SetAutoTopup) },
      responses: { 200: json(AutoTopupSchema, 'The settings'), ...errorResponses },
    }),
    async (c) => c.json(await setAutoTopup(c.get('ctx'), c.req.valid('param').org, c.req.valid('json')), 200),
  );
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/orgs/{org}/checkout_sessions',
      tags: ['Payments'],
      summary: 'Start a credit top-up: a Stripe Checkout Session (or the local provider without Stripe)',
      description:
        'Needs billing:purchase. Credits are added only when the payment is confirmed (Stripe webhook or local confirm). The amount is VAT-inclusive.',
      request: { params: OrgParam, ...body(CreateCheckout) },
      responses: { 201: json(CheckoutSessionSchema, 'The checkout session'), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await createCheckoutSession(
          c.get('ctx'),
          c.req.valid('param').org,
          c.req.valid('json'),
          new URL(c.req.url).origin,
        ),
        201,
      ),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/payments',
      tags: ['Payments'],
      summary: 'Payment history: every top-up with its status, newest first',
      request: { params: OrgParam, query: ListQuery.extend({ status: StatusFilter.optional() }) },
      responses: {
        200: json(
          z.object({
            data: z.array(PaymentSchema),
            has_more: z.boolean(),
            next_cursor: z.string().nullable(),
          }),
          'A page of payments',
        ),
        ...errorResponses,
      },
    }),
    async (c) => {
      const { status, ...page } = c.req.valid('query');
      const statuses = status?.split(',') as PaymentStatus[] | undefined;
      return c.json(
        await listPayments(c.get('ctx'), c.req.valid('param').org, {
          ...page,
          ...(statuses ? { statuses } : {}),
        }),
        200,
      );
    },
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/payments/{payment}',
      tags: ['Payments'],
      summary: 'One payment',
      request: { params: PaymentParams },
      responses: { 200: json(PaymentSchema, 'The payment'), ...errorResponses },
    }),
    async (c) => {
      const { org, payment } = c.req.valid('param');
      return c.json(paymentView(await getPayment(c.get('ctx'), org, payment)), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/payments/{payment}/invoice.pdf',
      tags: ['Payments'],
      summary: 'The PDF invoice of a completed payment',
      request: { params: PaymentParams },
      responses: {
        200: {
          description: 'The invoice',
          content: { 'application/pdf': { schema: z.string().openapi({ format: 'binary' }) } },
        },
        ...errorResponses,
      },
    }),
    async (c) => {
      const { org, payment } = c.req.valid('param');
      const { filename, pdf } = await invoicePdf(c.get('ctx'), org, payment);
      return c.body(new Uint8Array(pdf), 200, {
        'content-type': 'application/pdf',
        'content-disposition': `attachment; filename="${filename}"`,
      });
    },
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/settings/invoicing',
      tags: ['Payments'],
      summary: 'Seller details, VAT rate and invoice number prefix (operator)',
      responses: { 200: json(InvoiceSettingsSchema, 'Invoice settings'), ...errorResponses },
    }),
    async (c) => c.json(await getInvoiceSettings(c.get('ctx')), 200),
  );
  app.openapi(
    createRoute({
      method: 'put',
      path: '/v1/settings/invoicing',
      tags: ['Payments'],
      summary: 'Set seller details, VAT rate and invoice number prefix (operator); applies to later invoices',
      request: {
        ...body(
          z
            .strictObject({
              seller_name: z.string().min(1).max(200).optional(),
              seller_details: z.array(z.string().max(200)).max(10).optional(),
              seller_vat_id: OptionalText(50),
              vat_rate: z.string().max(12).optional().openapi({ example: '19' }),
              invoice_prefix: z
                .string()
                .regex(/^[A-Z0-9][A-Z0-9-]{0,15}$/, 'must be 1 to 16 capital letters, digits or dashes')
                .optional(),
            })
            .openapi('SetInvoiceSettings'),
        ),
      },
      responses: { 200: json(InvoiceSettingsSchema, 'Invoice settings'), ...errorResponses },
    }),
    async (c) => {
      const input = c.req.valid('json');
      return c.json(
        await setInvoiceSettings(c.get('ctx'), {
          ...input,
          ...(input.seller_vat_id !== undefined ? { seller_vat_id: input.seller_vat_id ?? null } : {}),
        }),
        200,
      );
    },
  );
}

/**
 * Routes authenticated by something other than a bearer key. Register them before the auth
 * middleware: Hono runs handlers in registration order, so these answer before it would run.
 */
export function unauthenticatedPaymentRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: { db: Db; config: Config; logger: Logger },
) {
  const problemContent = { 'application/problem+json': { schema: ProblemSchema } };
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/webhooks/stripe',
      tags: ['Payments'],
      summary: 'Stripe webhook receiver (Stripe-Signature, no bearer key)',
      description:
        'Handles checkout.session.completed, checkout.session.async_payment_succeeded/failed, checkout.session.expired, charge.refunded and charge.dispute.created. Each event id is acted on once; unknown payments answer 200.',
      responses: {
        200: json(
          z.object({ received: z.literal(true), event_id: z.string(), outcome: z.string() }),
          'Processed (or deliberately ignored)',
        ),
        400: { description: 'Bad signature: nothing changed', content: problemContent },
        503: { description: 'STRIPE_WEBHOOK_SECRET is not set', content: problemContent },
      },
    }),
    async (c) => {
      // The raw bytes, exactly as signed.
      const raw = new Uint8Array(await c.req.arrayBuffer());
      return c.json(await handleStripeWebhook(deps, raw, c.req.header('stripe-signature')), 200);
    },
  );

  const Session = z.object({
    session: z
      .string()
      .max(80)
      .openapi({ param: { name: 'session', in: 'path' } }),
  });
  app.openapi(
    createRoute({
      method: 'get',
      path: '/local-checkout/{session}',
      tags: ['Payments'],
      summary: 'Local test payment provider: the checkout page (only when Stripe is not configured)',
      request: { params: Session },
      responses: {
        200: { description: 'An HTML page', content: { 'text/html': { schema: z.string() } } },
        404: { description: 'Unknown session, or Stripe is configured', content: problemContent },
      },
    }),
    async (c) => {
      const { session } = c.req.valid('param');
      const payment = await findLocalSession(deps.db, deps.config, session);
      return c.html(localCheckoutPage(payment, session), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'post',
      path: '/local-checkout/{session}/confirm',
      tags: ['Payments'],
      summary: 'Local test payment provider: pay (no money moves); grants the top-up once',
      description:
        'A form post is redirected to the success URL; any other request gets the payment as JSON.',
      request: { params: Session },
      responses: {
        200: json(PaymentSchema, 'The completed payment'),
        303: { description: 'Back to the app (form posts)' },
        404: { description: 'Unknown session, or Stripe is configured', content: problemContent },
        409: { description: 'The checkout failed', content: problemContent },
      },
    }),
    async (c) => {
      const { session } = c.req.valid('param');
      const payment = await confirmLocalPayment(deps.db, deps.config, session);
      if (/form-urlencoded|multipart/i.test(c.req.header('content-type') ?? '')) {
        const [row] = await deps.db.query<{ success_url: string }>(
          'SELECT success_url FROM payments WHERE org_id = $1 AND id = $2',
          [payment.org_id, payment.id],
        );
        return c.redirect(row!.success_url, 303);
      }
      return c.json(payment, 200);
    },
  );
}
