import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { COMPONENTS, SELL_UNITS } from '../../domain/pricing.ts';
import { addModelPrice, PRICE_KEYS } from '../../services/pricing/addModelPrice.ts';
import { listModels } from '../../services/pricing/listModels.ts';
import { listPrices } from '../../services/pricing/listPrices.ts';
import { getPricingSettings, setDefaultMarkup } from '../../services/pricing/pricingSettings.ts';
import { setFxRate } from '../../services/pricing/setFxRate.ts';
import { setSellPrice } from '../../services/pricing/setSellPrice.ts';
import type { AppEnv } from '../env.ts';
import {
  body,
  Currency,
  errorResponses,
  json,
  ListQuery,
  OptionalText,
  PositiveDecimal,
  pageOf,
  Text,
} from '../schemas.ts';

const Price = PositiveDecimal(12);
const TieredPrice = z.strictObject({
  base: Price,
  tiers: z
    .array(z.strictObject({ start: z.int().min(0), price: Price }))
    .min(1)
    .max(10),
});

const ModelPriceSchema = z
  .object({
    object: z.literal('model_price'),
    price_id: z.string(),
    provider: z.string(),
    model: z.string(),
    name: z.string().nullable(),
    origin: z.enum(['catalog', 'operator']),
    currency: z.literal('USD'),
    valid_from: z.string(),
    time_of_day: z.object({ start_time: z.string(), end_time: z.string() }).nullable(),
    context_window: z.int().nullable(),
    prices: z.record(
      z.string(),
      z.union([
        z.string(),
        z.object({ base: z.string(), tiers: z.array(z.object({ start: z.int(), price: z.string() })) }),
      ]),
    ),
  })
  .openapi('ModelPrice');

const PriceSchema = z
  .object({
    id: z.string(),
    object: z.literal('price'),
    provider: z.string(),
    model: z.string(),
    model_name: z.string().nullable(),
    component: z.enum(COMPONENTS),
    operation: z.string(),
    unit: z.enum(Object.keys(SELL_UNITS) as [keyof typeof SELL_UNITS]),
    unit_label: z.string(),
    price: z.string(),
    currency: Currency,
    source: z.enum(['markup', 'sell_price', 'provider_cost']).openapi({
      description:
        'markup: provider cost x markup x FX; sell_price: set by the operator or the org; provider_cost: the provider list price in USD, for an org that pays its provider itself (byom, byok)',
    }),
    long_context: z.array(z.object({ above_input_tokens: z.int(), price: z.string() })),
  })
  .openapi('Price');

const AddModelPrice = z
  .strictObject({
    provider: Text(100),
    model: Text(200),
    name: OptionalText(200),
    prices: z.partialRecord(z.enum(PRICE_KEYS as [string, ...string[]]), z.union([Price, TieredPrice])),
    context_window: z.int().min(1).nullish(),
    valid_from: z.string().max(40).optional(),
  })
  .openapi('AddModelPrice');

const SetSellPrice = z
  .strictObject({
    provider: Text(100),
    model: Text(200),
    component: z.enum(COMPONENTS),
    price: Price,
    unit: z.enum(Object.keys(SELL_UNITS) as [keyof typeof SELL_UNITS]),
    currency: Currency,
    org_id: z.string().max(64).nullish(),
    valid_from: z.string().max(40).optional(),
  })
  .openapi('SetSellPrice');

const SellPriceSchema = z
  .object({
    object: z.literal('sell_price'),
    id: z.string(),
    org_id: z.string().nullable(),
    price: z.string(),
    valid_from: z.string(),
  })
  .passthrough()
  .openapi('SellPrice');

const PricingSettings = z
  .object({
    object: z.literal('pricing_settings'),
    default_markup: z.string(),
    fx_rates: z.object({ USD: z.string(), EUR: z.string().nullable() }),
  })
  .openapi('PricingSettings');

const FxRate = z
  .object({
    object: z.literal('fx_rate'),
    base: z.string(),
    currency: z.string(),
    rate: z.string(),
    valid_from: z.string(),
  })
  .openapi('FxRate');

export function pricingRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/prices',
      tags: ['Prices'],
      summary: 'The sell price list, searchable by name',
      request: {
        query: ListQuery.extend({
          q: z.string().max(200).optional(),
          currency: Currency.optional(),
          org_id: z.string().max(64).optional().openapi({
            description:
              "That org's list (its currency and its own prices; an org paying its provider itself gets the provider's prices in USD). An org key may name only its own org: any other id is answered as a missing org (404)",
          }),
        }),
      },
      responses: { 200: json(pageOf(PriceSchema), 'A page of prices'), ...errorResponses },
    }),
    async (c) => c.json(await listPrices(c.get('ctx'), c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/prices',
      tags: ['Prices'],
      summary: 'Set an explicit sell price, operator-wide or for one org (operator)',
      request: body(SetSellPrice),
      responses: { 201: json(SellPriceSchema, 'The price'), ...errorResponses },
    }),
    async (c) => c.json(await setSellPrice(c.get('ctx'), c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/models',
      tags: ['Prices'],
      summary: 'The provider cost catalog (USD list prices in force now)',
      request: {
        query: ListQuery.extend({
          q: z.string().max(200).optional(),
          provider: z.string().max(100).optional(),
        }),
      },
      responses: { 200: json(pageOf(ModelPriceSchema), 'A page of model prices'), ...errorResponses },
    }),
    async (c) => c.json(await listModels(c.get('ctx'), c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/models',
      tags: ['Prices'],
      summary: 'Add a model or override its provider price from a date on (operator)',
      request: body(AddModelPrice),
      responses: { 201: json(ModelPriceSchema, 'The model price'), ...errorResponses },
    }),
    async (c) => c.json(await addModelPrice(c.get('ctx'), c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/settings/pricing',
      tags: ['Prices'],
      summary: 'Default markup and FX rates',
      responses: { 200: json(PricingSettings, 'Pricing settings'), ...errorResponses },
    }),
    async (c) => c.json(await getPricingSettings(c.get('ctx')), 200),
  );
  app.openapi(
    createRoute({
      method: 'put',
      path: '/v1/settings/pricing',
      tags: ['Prices'],
      summary: 'Set the default markup over provider cost (operator)',
      request: body(z.strictObject({ default_markup: PositiveDecimal(6) }).openapi('SetMarkup')),
      responses: { 200: json(PricingSettings, 'Pricing settings'), ...errorResponses },
    }),
    async (c) => c.json(await setDefaultMarkup(c.get('ctx'), c.req.valid('json').default_markup), 200),
  );
  app.openapi(
    createRoute({
      method: 'put',
      path: '/v1/fx_rates/{currency}',
      tags: ['Prices'],
      summary: 'Set how many units of a currency one USD buys (operator)',
      request: {
        params: z.object({ currency: z.enum(['EUR']).openapi({ param: { name: 'currency', in: 'path' } }) }),
        ...body(
          z
            .strictObject({
              // fx_rates.rate is NUMERIC(20, 10): 10 integer digits at most, else a 500 from Postgres.
              rate: PositiveDecimal(10).regex(/^\d{1,10}(\.|$)/, 'must be below 10 000 000 000'),
              valid_from: z.string().max(40).optional(),
            })
            .openapi('SetFxRate'),
        ),
      },
      responses: { 200: json(FxRate, 'The rate'), ...errorResponses },
    }),
    async (c) =>
      c.json(await setFxRate(c.get('ctx'), c.req.valid('param').currency, c.req.valid('json')), 200),
  );
}
