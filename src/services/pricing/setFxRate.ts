import { Ratio } from '../../domain/money.ts';
import { audit, type Ctx, requireOperator } from '../context.ts';
import { invalid } from '../errors.ts';
import { effectiveFrom } from './operatorPrices.ts';
import { bumpPriceGeneration } from './priceBook.ts';

/** Sets how many units of a currency one USD buys, from `valid_from` (default now) on. */
export async function setFxRate(ctx: Ctx, currency: 'EUR', input: { rate: string; valid_from?: string }) {
  requireOperator(ctx);
  const rate = Ratio.parse(input.rate);
  if (rate.cmp(Ratio.ZERO) <= 0) throw invalid('rate', 'rate must be greater than 0');
  const validFrom = effectiveFrom(input.valid_from);
  const result = await ctx.db.transaction(async (tx) => {
    await tx.query('INSERT INTO fx_rates (currency, rate, valid_from) VALUES ($1, $2, $3)', [
      currency,
      input.rate,
      validFrom.toISOString(),
    ]);
    await bumpPriceGeneration(tx);
    await audit(tx, ctx, 'operator', 'fx_rate.set', currency, { ...input });
    return {
      object: 'fx_rate' as const,
      base: 'USD',
      currency,
      rate: rate.toDecimal(10),
      valid_from: validFrom.toISOString(),
    };
  });
  // This process prices with the change at once; others see it within a second.
  await ctx.prices.refresh(ctx.db, true);
  return result;
}
