/**
 * What a confirmed payment does, in the caller's transaction under the org balance lock: the topup
 * grant (once: the payment row is locked and its grant_id set), the next gapless invoice number, the
 * VAT split and the seller and buyer as they stand now. And what a refund or dispute does: the credits
 * bought are taken back from that grant as far as they are unused; the rest is recorded as unrecovered.
 */
import { formatCredits, Ratio } from '../../domain/money.ts';
import { fixedMinor, MINOR_DIGITS, splitVat, toMinor } from '../../domain/vat.ts';
import type { Queryable } from '../../store/db.ts';
import { writeAudit } from '../context.ts';
import { addToBalance } from '../ledger/balances.ts';
import { recordGrant } from '../ledger/recordGrant.ts';
import { loadOrg } from '../orgs/shape.ts';
import { emitWebhookEvent } from '../webhooks/emitWebhookEvent.ts';
import { readInvoiceSettings } from './invoiceSettings.ts';
import type { InvoiceParty, PaymentRow } from './shape.ts';
import { PAYMENT_COLUMNS, paymentView } from './shape.ts';

export async function lockPayment(
  tx: Queryable,
  orgId: string,
  paymentId: string,
): Promise<PaymentRow | null> {
  const [row] = await tx.query<PaymentRow>(
    `SELECT ${PAYMENT_COLUMNS} FROM payments WHERE org_id = $1 AND id = $2 FOR UPDATE`,
    [orgId, paymentId],
  );
  return row ?? null;
}

export type CompleteOutcome = 'completed' | 'already_completed' | 'amount_mismatch';

/** The caller holds the org balance lock and has locked the payment row (`lockPayment`). */
export async function completePayment(
  tx: Queryable,
  payment: PaymentRow,
  paid: {
    reference: string | null;
    sessionId?: string | null;
    amountMinor?: bigint | null;
    currency?: string | null;
  },
  actor: string,
): Promise<CompleteOutcome> {
  const orgId = payment.org_id;
  if (payment.grant_id !== null) {
    if (paid.reference && !payment.payment_reference) {
      await tx.query('UPDATE payments SET payment_reference = $3 WHERE org_id = $1 AND id = $2', [
        orgId,
        payment.id,
        paid.reference,
      ]);
    }
    return 'already_completed';
  }
  const totalMinor = toMinor(payment.amount, payment.currency);
  if (
    (paid.amountMinor != null && paid.amountMinor !== totalMinor) ||
    (paid.currency != null && paid.currency.toUpperCase() !== payment.currency)
  ) {
    await tx.query(
      `UPDATE payments SET failure_reason = $3, updated_at = now() WHERE org_id = $1 AND id = $2`,
      [
        orgId,
        payment.id,
        `Paid ${paid.amountMinor} ${paid.currency} (minor units) does not match ${totalMinor} ${payment.currency}`,
      ],
    );
    return 'amount_mismatch';
  }
  const grant = await recordGrant(tx, orgId, {
    kind: 'topup',
    source: 'payment',
    amount: BigInt(payment.credits),
    effectiveAt: new Date(),
    expiresAt: null,
    reason: `Top-up ${payment.id}`,
    createdBy: actor,
  });
  const settings = await readInvoiceSettings(tx);
  const [counter] = await tx.query<{ last_number: string }>(
    `UPDATE invoice_counters SET last_number = last_number + 1 WHERE series = 'invoice' RETURNING last_number`,
  );
  const invoiceNumber = `${settings.invoice_prefix}-${counter!.last_number.padStart(6, '0')}`;
  const digits = MINOR_DIGITS[payment.currency];
  const split = splitVat(totalMinor, settings.vat_rate, digits);
  const org = await loadOrg(tx, orgId);
  const seller: InvoiceParty = {
    name: settings.seller_name,
    lines: [
      ...settings.seller_details,
      ...(settings.seller_vat_id ? [`VAT ID: ${settings.seller_vat_id}`] : []),
    ],
  };
  const buyer: InvoiceParty = {
    name: org.name,
    lines: [`Organization ${org.id}`, ...(org.external_id ? [`Customer reference: ${org.external_id}`] : [])],
  };
  await tx.query(
    `UPDATE payments SET status = 'completed', grant_id = $3, invoice_number = $4, vat_rate = $5, net_amount = $6,
            vat_amount = $7, seller = $8, buyer = $9, payment_reference = COALESCE(payment_reference, $10),
            checkout_session_id = COALESCE(checkout_session_id, $11), failure_reason = NULL,
            completed_at = now(), updated_at = now()
      WHERE org_id = $1 AND id = $2`,
    [
      orgId,
      payment.id,
      grant!.id,
      invoiceNumber,
      settings.vat_rate,
      fixedMinor(split.net, payment.currency),
      fixedMinor(split.vat, payment.currency),
      JSON.stringify(seller),
      JSON.stringify(buyer),
      paid.reference,
      paid.sessionId ?? null,
    ],
  );
  await writeAudit(tx, {
    orgId,
    actor,
    action: 'payment.completed',
    target: payment.id,
    data: {
      grant_id: grant!.id,
      invoice_number: invoiceNumber,
      amount: payment.amount,
      currency: payment.currency,
    },
  });
  // A refund or dispute that arrived before the confirmation is applied now.
  const after = (await lockPayment(tx, orgId, payment.id))!;
  await emitWebhookEvent(tx, orgId, 'payment.completed', paymentView(after));
  await applyReversal(tx, after, 'reversal recorded before completion', actor);
  return 'completed';
}

/**
 * Records a reversal (refund: Stripe's cumulative refunded amount; dispute: the disputed amount) and
 * takes the matching credits back once the payment has its grant. Repeats and reordering are harmless:
 * refunds keep the largest cumulative amount seen, and credits taken back only ever catch up with
 * what the reversed amount calls for.
 */
export async function recordReversal(
  tx: Queryable,
  payment: PaymentRow,
  change: { refundedMinor?: bigint; disputedMinor?: bigint },
  memo: string,
  actor: string,
): Promise<void> {
  const refunded = toMinor(payment.refunded_amount, payment.currency);
  const disputed = toMinor(payment.disputed_amount, payment.currency);
  const nextRefunded =
    change.refundedMinor !== undefined && change.refundedMinor > refunded ? change.refundedMinor : refunded;
  const nextDisputed = disputed + (change.disputedMinor ?? 0n);
  await tx.query(
    `UPDATE payments SET refunded_amount = $3, disputed_amount = $4, updated_at = now() WHERE org_id = $1 AND id = $2`,
    [
      payment.org_id,
      payment.id,
      fixedMinor(nextRefunded, payment.currency),
      fixedMinor(nextDisputed, payment.currency),
    ],
  );
  const after = (await lockPayment(tx, payment.org_id, payment.id))!;
  await applyReversal(tx, after, memo, actor);
}

async function applyReversal(tx: Queryable, payment: PaymentRow, memo: string, actor: string): Promise<void> {
  if (payment.grant_id === null) return;
  const total = toMinor(payment.amount, payment.currency);
  const refunded = toMinor(payment.refunded_amount, payment.currency);
  const disputed = toMinor(payment.disputed_amount, payment.currency);
  const reversed = refunded + disputed > total ? total : refunded + disputed;
  if (reversed === 0n) return;
  const credits = BigInt(payment.credits);
  // Credits in proportion to the amount reversed, rounded once (half to even) to the micro-credit.
  const target = reversed === total ? credits : Ratio.of(credits * reversed, total).roundHalfEven(0);
  const done = BigInt(payment.reversed_credits) + BigInt(payment.unrecovered_credits);
  const status = disputed > 0n ? 'disputed' : reversed === total ? 'refunded' : payment.status;
  const due = target - done;
  let take = 0n;
  if (due > 0n) {
    const [grant] = await tx.query<{ remaining: string }>(
      'SELECT remaining FROM grants WHERE org_id = $1 AND id = $2 FOR UPDATE',
      [payment.org_id, payment.grant_id],
    );
    const remaining = BigInt(grant!.remaining);
    take = due < remaining ? due : remaining;
    if (take > 0n) {
      await tx.query(
        `UPDATE grants SET expired = expired + $3, remaining = remaining - $3,
                status = CASE WHEN $4::boolean THEN 'voided' ELSE status END
          WHERE org_id = $1 AND id = $2`,
        [payment.org_id, payment.grant_id, String(take), reversed === total && take === remaining],
      );
      await tx.query(
        `INSERT INTO ledger_entries (org_id, kind, grant_id, amount, memo) VALUES ($1, 'void', $2, $3, $4)`,
        [payment.org_id, payment.grant_id, String(-take), `${memo} (payment ${payment.id})`.slice(0, 500)],
      );
      await addToBalance(tx, payment.org_id, { expired: take, remaining: -take });
    }
  }
  await tx.query(
    `UPDATE payments SET status = $3, reversed_credits = reversed_credits + $4,
            unrecovered_credits = unrecovered_credits + $5, updated_at = now()
      WHERE org_id = $1 AND id = $2`,
    [payment.org_id, payment.id, status, String(take), String(due > 0n ? due - take : 0n)],
  );
  if (due > 0n) {
    await writeAudit(tx, {
      orgId: payment.org_id,
      actor,
      action: 'payment.reversed',
      target: payment.id,
      data: {
        memo,
        refunded_amount: fixedMinor(refunded, payment.currency),
        disputed_amount: fixedMinor(disputed, payment.currency),
        credits_taken_back: String(take),
        credits_unrecovered: String(due - take),
      },
    });
    const reversed = (await lockPayment(tx, payment.org_id, payment.id))!;
    await emitWebhookEvent(tx, payment.org_id, 'payment.reversed', {
      ...paymentView(reversed),
      credits_taken_back: formatCredits(take),
      credits_unrecovered: formatCredits(due - take),
    });
  }
}
