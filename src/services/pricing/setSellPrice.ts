import { Ratio } from '../../domain/money.ts';
import type { Component, SellUnit } from '../../domain/pricing.ts';
import { audit, type Ctx, requireOperator } from '../context.ts';
import { invalid } from '../errors.ts';
import { loadOrg } from '../orgs/shape.ts';
import { effectiveFrom } from './operatorPrices.ts';
import { bumpPriceGeneration } from './priceBook.ts';

export interface SetSellPriceInput {
  provider: string;
  model: string;
  component: Component;
  price: string;
  unit: SellUnit;
  currency: 'EUR' | 'USD';
  org_id?: string | null;
  valid_from?: string;
}

/**
 * Sets an explicit sell price for one operation of a model, operator-wide or for one org (which
 * also lets an org use a model the catalog does not know). It wins over cost x markup x FX.
 */
export async function setSellPrice(ctx: Ctx, input: SetSellPriceInput) {
  requireOperator(ctx);
  const validFrom = effectiveFrom(input.valid_from);
  if (Ratio.parse(input.price).isNegative()) throw invalid('price', 'price must not be negative');
  const result = await ctx.db.transaction(async (tx) => {
    if (input.org_id) {
      const org = await loadOrg(tx, input.org_id);
      if (org.currency !== input.currency) {
        throw invalid('currency', `The org is billed in ${org.currency}; give the price in that currency`);
      }
    }
    const [row] = await tx.query<{ id: string; valid_from: Date }>(
      `INSERT INTO sell_prices (org_id, provider, model, component, price, unit, currency, valid_from)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id, valid_from`,
      [
        input.org_id ?? null,
        input.provider.toLowerCase(),
        input.model,
        input.component,
        input.price,
        input.unit,
        input.currency,
        validFrom.toISOString(),
      ],
    );
    await bumpPriceGeneration(tx);
    await audit(tx, ctx, input.org_id ?? 'operator', 'sell_price.set', `${input.provider}/${input.model}`, {
      ...input,
    });
    return {
      object: 'sell_price' as const,
      id: row!.id,
      ...input,
      org_id: input.org_id ?? null,
      price: Ratio.parse(input.price).toDecimal(12),
      valid_from: row!.valid_from.toISOString(),
    };
  });
  // This process prices with the change at once; others see it within a second.
  await ctx.prices.refresh(ctx.db, true);
  return result;
}
