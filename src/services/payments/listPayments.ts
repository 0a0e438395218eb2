import { type Ctx, scopeOrg } from '../context.ts';
import { notFound } from '../errors.ts';
import { cursorTime, decodeCursor, type Page, toPage } from '../pagination.ts';
import {
  PAYMENT_COLUMNS,
  type PaymentRow,
  type PaymentStatus,
  type PaymentView,
  paymentView,
} from './shape.ts';

/** Every top-up of the org with its status (or those in the given statuses), newest first. */
export async function listPayments(
  ctx: Ctx,
  orgId: string,
  query: { limit: number; cursor?: string; statuses?: PaymentStatus[] },
): Promise<Page<PaymentView>> {
  scopeOrg(ctx, orgId, 'billing:purchase');
  const after = decodeCursor(query.cursor, ['time', 'text']);
  const rows = await ctx.db.query<PaymentRow & { cursor_at: string }>(
    `SELECT ${PAYMENT_COLUMNS}, ${cursorTime('created_at')} AS cursor_at FROM payments
      WHERE org_id = $1 AND ($2::text[] IS NULL OR status = ANY($2::text[]))
        AND ($3::timestamptz IS NULL OR (created_at, id) < ($3::timestamptz, $4::text))
      ORDER BY created_at DESC, id DESC LIMIT $5`,
    [orgId, query.statuses ?? null, after?.[0] ?? null, after?.[1] ?? null, query.limit + 1],
  );
  return toPage(rows, query.limit, (r) => [r.cursor_at, r.id], paymentView);
}

export async function getPayment(ctx: Ctx, orgId: string, paymentId: string): Promise<PaymentRow> {
  scopeOrg(ctx, orgId, 'billing:purchase');
  const [row] = await ctx.db.query<PaymentRow>(
    `SELECT ${PAYMENT_COLUMNS} FROM payments WHERE org_id = $1 AND id = $2`,
    [orgId, paymentId],
  );
  if (!row) throw notFound('Payment', 'payment');
  return row;
}
