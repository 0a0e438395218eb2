/** The seller details, VAT rate and number prefix printed on invoices: operator settings. */
import { formatUnits, parseUnits } from '../../domain/money.ts';
import type { Queryable } from '../../store/db.ts';
import { audit, type Ctx, requireOperator } from '../context.ts';
import { invalid } from '../errors.ts';

export interface InvoiceSettings {
  seller_name: string;
  /** Address lines, e-mail, registration: printed one per line under the name. */
  seller_details: string[];
  seller_vat_id: string | null;
  /** Percent, as a decimal string ("19", "7.7"); "0" prints no VAT. */
  vat_rate: string;
  /** Invoice numbers are `<prefix>-<6 digits>`, one gapless series per operator. */
  invoice_prefix: string;
}

const KEY = 'invoicing';
export const DEFAULT_INVOICE_SETTINGS: InvoiceSettings = {
  seller_name: 'Tally operator',
  seller_details: [],
  seller_vat_id: null,
  vat_rate: '0',
  invoice_prefix: 'INV',
};

export async function readInvoiceSettings(q: Queryable): Promise<InvoiceSettings> {
  const [row] = await q.query<{ value: string }>('SELECT value FROM operator_settings WHERE key = $1', [KEY]);
  return row
    ? { ...DEFAULT_INVOICE_SETTINGS, ...(JSON.parse(row.value) as Partial<InvoiceSettings>) }
    : DEFAULT_INVOICE_SETTINGS;
}

export async function getInvoiceSettings(ctx: Ctx) {
  requireOperator(ctx);
  return { object: 'invoice_settings' as const, ...(await readInvoiceSettings(ctx.db)) };
}

export async function setInvoiceSettings(ctx: Ctx, input: Partial<InvoiceSettings>) {
  requireOperator(ctx);
  const next = { ...(await readInvoiceSettings(ctx.db)), ...input };
  let rate: bigint;
  try {
    rate = parseUnits(next.vat_rate, 4);
  } catch {
    throw invalid('vat_rate', 'vat_rate must be a percentage with at most 4 decimals, such as "19"');
  }
  if (rate < 0n || rate >= 100_0000n) throw invalid('vat_rate', 'vat_rate must be at least 0 and below 100');
  next.vat_rate = formatUnits(rate, 4);
  await ctx.db.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO operator_settings (key, value) VALUES ($1, $2)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
      [KEY, JSON.stringify(next)],
    );
    await audit(tx, ctx, 'operator', 'invoice_settings.set', null, { ...next });
  });
  return { object: 'invoice_settings' as const, ...next };
}
