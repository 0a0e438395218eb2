/**
 * The invoice of a completed payment as a PDF (pdfkit, standard fonts, so the text is extractable).
 * Everything printed comes from the payment row as fixed at completion: number, seller and buyer,
 * VAT rate and split; amounts are printed from exact minor units.
 */
import { formatCredits } from '../../domain/money.ts';
import { fixedMinor, toMinor } from '../../domain/vat.ts';
import type { Ctx } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { getPayment } from './listPayments.ts';
import type { PaymentRow } from './shape.ts';

export async function invoicePdf(ctx: Ctx, orgId: string, paymentId: string) {
  const payment = await getPayment(ctx, orgId, paymentId);
  if (!payment.invoice_number) {
    throw new ServiceError(
      409,
      'invoice_unavailable',
      `Payment ${payment.id} is ${payment.status}: it has no invoice`,
    );
  }
  return { filename: `${payment.invoice_number}.pdf`, pdf: await renderInvoicePdf(payment) };
}

export async function renderInvoicePdf(p: PaymentRow): Promise<Buffer> {
  const cur = p.currency;
  const show = (amount: string) => `${cur} ${fixedMinor(toMinor(amount, cur), cur)}`;
  const date = (p.completed_at ?? p.created_at).toISOString().slice(0, 10);
  // Loaded when a PDF is asked for: most processes never make one.
  const { default: PDFDocument } = await import('pdfkit');
  const doc = new PDFDocument({
    size: 'A4',
    margin: 56,
    info: {
      Title: `Invoice ${p.invoice_number}`,
      Author: p.seller?.name ?? 'Tally',
      Subject: `Credit top-up ${p.id}`,
      CreationDate: p.completed_at ?? p.created_at,
    },
  });
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });

  doc.font('Helvetica-Bold').fontSize(20).text('Invoice');
  doc.moveDown(0.5).font('Helvetica').fontSize(10);
  doc.text(`Invoice number: ${p.invoice_number}`);
  doc.text(`Invoice date: ${date}`);
  doc.text(`Payment reference: ${p.payment_reference ?? p.id}`);
  doc.text(`Payment id: ${p.id}`);
  doc.text(`Currency: ${cur}`);
  if (p.provider === 'local') doc.text('Paid with the local test payment provider: no money was moved.');

  const party = (title: string, who: PaymentRow['seller'], x: number, y: number) => {
    doc.font('Helvetica-Bold').text(title, x, y, { width: 230 });
    doc.font('Helvetica').text(who?.name ?? '', { width: 230 });
    for (const line of who?.lines ?? []) doc.text(line, { width: 230 });
  };
  doc.moveDown(1.5);
  const top = doc.y;
  party('Seller', p.seller, 56, top);
  const sellerEnd = doc.y;
  party('Bill to', p.buyer, 320, top);
  doc.y = Math.max(sellerEnd, doc.y);
  doc.x = 56;

  doc.moveDown(2);
  const row = (cells: [string, string, string], bold = false) => {
    const y = doc.y;
    doc.font(bold ? 'Helvetica-Bold' : 'Helvetica');
    doc.text(cells[0], 56, y, { width: 280 });
    doc.text(cells[1], 340, y, { width: 60, align: 'right' });
    doc.text(cells[2], 410, y, { width: 130, align: 'right' });
    doc.x = 56;
    doc.moveDown(0.4);
  };
  row(['Description', 'Qty', `Amount (${cur})`], true);
  row([
    `Prepaid credits: ${formatCredits(BigInt(p.credits))} credits`,
    '1',
    fixedMinor(toMinor(p.net_amount ?? p.amount, cur), cur),
  ]);
  doc.moveDown(1);
  row(['Net amount', '', show(p.net_amount ?? p.amount)]);
  row([`VAT rate ${p.vat_rate === null ? '0' : stripZeros(p.vat_rate)}%`, '', show(p.vat_amount ?? '0')]);
  row(['Total', '', show(p.amount)], true);
  if (p.status === 'refunded' || p.status === 'disputed' || p.refunded_amount !== '0.00') {
    doc.moveDown(1);
    doc
      .font('Helvetica')
      .text(
        `Status: ${p.status}. Refunded ${show(p.refunded_amount)}; disputed ${show(p.disputed_amount)}.`,
        56,
      );
  }
  doc.moveDown(2);
  doc.font('Helvetica').fontSize(8).text('Prices include VAT. Credits are prepaid and do not expire.', 56);
  doc.end();
  return done;
}

const stripZeros = (rate: string) => (rate.includes('.') ? rate.replace(/0+$/, '').replace(/\.$/, '') : rate);
