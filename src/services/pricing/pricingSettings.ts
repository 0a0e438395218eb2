import { Ratio } from '../../domain/money.ts';
import { audit, type Ctx, requireOperator } from '../context.ts';
import { bumpPriceGeneration } from './priceBook.ts';

/** The operator's pricing defaults: markup over provider cost and the current FX rates. */
export async function getPricingSettings(ctx: Ctx) {
  await ctx.prices.refresh(ctx.db);
  return {
    object: 'pricing_settings' as const,
    default_markup: ctx.prices.markupText(),
    fx_rates: { USD: '1', EUR: ctx.prices.fxRate('EUR') },
  };
}

export async function setDefaultMarkup(ctx: Ctx, markup: string) {
  requireOperator(ctx);
  const value = Ratio.parse(markup).toDecimal(6);
  await ctx.db.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO operator_settings (key, value) VALUES ('default_markup', $1)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
      [value],
    );
    await bumpPriceGeneration(tx);
    await audit(tx, ctx, 'operator', 'markup.set', null, { default_markup: value });
  });
  await ctx.prices.refresh(ctx.db, true);
  return getPricingSettings(ctx);
}
