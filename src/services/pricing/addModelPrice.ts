import { CATALOG_KEYS, type ProviderPriceSpec } from '../../domain/pricing.ts';
import { audit, type Ctx, requireOperator } from '../context.ts';
import { invalid } from '../errors.ts';
import { effectiveFrom } from './operatorPrices.ts';
import { bumpPriceGeneration } from './priceBook.ts';
import { type ModelView, modelView } from './shape.ts';

export const PRICE_KEYS = Object.values(CATALOG_KEYS)
  .filter((v) => v !== null)
  .map((v) => v.key);

export interface AddModelPriceInput {
  provider: string;
  model: string;
  name?: string | null;
  prices: Partial<ProviderPriceSpec>;
  context_window?: number | null;
  valid_from?: string;
}

/** Adds a model to the provider cost catalog, or overrides its price from `valid_from` on. */
export async function addModelPrice(ctx: Ctx, input: AddModelPriceInput): Promise<ModelView> {
  requireOperator(ctx);
  const unknown = Object.keys(input.prices).find((k) => !PRICE_KEYS.includes(k));
  if (unknown) throw invalid(`prices.${unknown}`, `Unknown price key; use one of ${PRICE_KEYS.join(', ')}`);
  if (Object.keys(input.prices).length === 0) throw invalid('prices', 'Give at least one price');
  const validFrom = effectiveFrom(input.valid_from);
  const result = await ctx.db.transaction(async (tx) => {
    const [row] = await tx.query<Parameters<typeof modelView>[0]>(
      `INSERT INTO provider_prices (origin, provider, model, name, match, valid_from, prices, context_window)
       VALUES ('operator', $1, $2, $3, $4, $5, $6, $7)
       RETURNING id, origin, provider, model, name, valid_from, time_of_day, prices, context_window`,
      [
        input.provider.toLowerCase(),
        input.model,
        input.name ?? null,
        JSON.stringify({ equals: input.model }),
        validFrom.toISOString(),
        JSON.stringify(input.prices),
        input.context_window ?? null,
      ],
    );
    await bumpPriceGeneration(tx);
    await audit(tx, ctx, 'operator', 'model_price.added', `${input.provider}/${input.model}`, { ...input });
    return modelView(row!);
  });
  // This process prices with the change at once; others see it within a second.
  await ctx.prices.refresh(ctx.db, true);
  return result;
}
