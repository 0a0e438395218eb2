/** The payment as stored and as the API shows it. */
import { formatCredits, formatUnits, parseUnits } from '../../domain/money.ts';
import { type Currency, MINOR_DIGITS } from '../../domain/vat.ts';

export const PAYMENT_STATUSES = ['pending', 'completed', 'failed', 'refunded', 'disputed'] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export interface PaymentRow {
  org_id: string;
  id: string;
  provider: 'stripe' | 'local';
  kind: 'checkout' | 'auto_topup';
  save_payment_method: boolean;
  amount: string;
  currency: Currency;
  credits: string;
  status: PaymentStatus;
  checkout_session_id: string | null;
  checkout_url: string | null;
  success_url: string;
  cancel_url: string;
  payment_reference: string | null;
  grant_id: string | null;
  invoice_number: string | null;
  vat_rate: string | null;
  net_amount: string | null;
  vat_amount: string | null;
  seller: InvoiceParty | null;
  buyer: InvoiceParty | null;
  refunded_amount: string;
  disputed_amount: string;
  reversed_credits: string;
  unrecovered_credits: string;
  failure_reason: string | null;
  created_at: Date;
  completed_at: Date | null;
}

export interface InvoiceParty {
  name: string;
  lines: string[];
}

export const PAYMENT_COLUMNS = `org_id, id, provider, kind, save_payment_method, amount::text AS amount, currency, credits, status,
  checkout_session_id, checkout_url, success_url, cancel_url, payment_reference, grant_id, invoice_number,
  vat_rate::text AS vat_rate, net_amount::text AS net_amount, vat_amount::text AS vat_amount, seller, buyer,
  refunded_amount::text AS refunded_amount, disputed_amount::text AS disputed_amount, reversed_credits,
  unrecovered_credits, failure_reason, created_at, completed_at`;

/** A NUMERIC amount in canonical decimal form ("10.00" -> "10"). */
export const money = (text: string, currency: Currency): string =>
  formatUnits(parseUnits(text, MINOR_DIGITS[currency]), MINOR_DIGITS[currency]);

const orNull = (text: string | null, currency: Currency) => (text === null ? null : money(text, currency));

export function paymentView(row: PaymentRow) {
  return {
    id: row.id,
    object: 'payment' as const,
    org_id: row.org_id,
    provider: row.provider,
    kind: row.kind,
    status: row.status,
    amount: money(row.amount, row.currency),
    currency: row.currency,
    credits: formatCredits(BigInt(row.credits)),
    checkout_session_id: row.checkout_session_id,
    payment_reference: row.payment_reference,
    grant_id: row.grant_id,
    invoice_number: row.invoice_number,
    invoice_url: row.invoice_number ? `/v1/orgs/${row.org_id}/payments/${row.id}/invoice.pdf` : null,
    vat_rate: row.vat_rate === null ? null : formatUnits(parseUnits(row.vat_rate, 4), 4),
    net_amount: orNull(row.net_amount, row.currency),
    vat_amount: orNull(row.vat_amount, row.currency),
    refunded_amount: money(row.refunded_amount, row.currency),
    disputed_amount: money(row.disputed_amount, row.currency),
    reversed_credits: formatCredits(BigInt(row.reversed_credits)),
    unrecovered_credits: formatCredits(BigInt(row.unrecovered_credits)),
    failure_reason: row.failure_reason,
    created_at: row.created_at.toISOString(),
    completed_at: row.completed_at?.toISOString() ?? null,
  };
}
export type PaymentView = ReturnType<typeof paymentView>;

export function checkoutView(row: PaymentRow) {
  return {
    id: row.id,
    object: 'checkout_session' as const,
    provider: row.provider,
    checkout_session_id: row.checkout_session_id,
    url: row.checkout_url,
    status: row.status,
    amount: money(row.amount, row.currency),
    currency: row.currency,
    credits: formatCredits(BigInt(row.credits)),
  };
}
