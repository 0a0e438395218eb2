/**
 * The sell price list: what one unit of each operation costs in a currency, as the org sees it.
 * A price is either set explicitly (source `sell_price`) or derived as provider cost x markup x FX.
 * An org that pays its provider itself (billing mode byom or byok) is charged no sell price: it
 * sees the provider's list prices in USD (source `provider_cost`), which is what byom spend counts.
 */
import { Ratio } from '../../domain/money.ts';
import {
  CATALOG_KEYS,
  COMPONENTS,
  type Component,
  operationName,
  SELL_UNITS,
  type SellUnit,
  tierPrice,
} from '../../domain/pricing.ts';
import { type Ctx, scopeOrg } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { loadOrg } from '../orgs/shape.ts';
import { decodeCursor, type Page, toPage } from '../pagination.ts';

export const UNIT_LABELS: Record<SellUnit, string> = {
  per_1k_tokens: 'per 1 000 tokens',
  per_1m_tokens: 'per 1 000 000 tokens',
  per_image: 'per image',
  per_minute: 'per minute',
  per_second: 'per second',
  per_request: 'per request',
  per_1k_requests: 'per 1 000 requests',
};

const DEFAULT_UNIT: Record<Component, SellUnit> = {
  input: 'per_1k_tokens',
  cache_read: 'per_1k_tokens',
  cache_audio_read: 'per_1k_tokens',
  cache_write: 'per_1k_tokens',
  cache_write_1h: 'per_1k_tokens',
  input_audio: 'per_1k_tokens',
  output: 'per_1k_tokens',
  output_audio: 'per_1k_tokens',
  images: 'per_image',
  seconds: 'per_minute',
  requests: 'per_request',
  web_searches: 'per_request',
};

export interface PriceView {
  id: string;
  object: 'price';
  provider: string;
  model: string;
  model_name: string | null;
  component: Component;
  operation: string;
  unit: SellUnit;
  unit_label: string;
  price: string;
  currency: 'EUR' | 'USD';
  source: 'markup' | 'sell_price' | 'provider_cost';
  long_context: { above_input_tokens: number; price: string }[];
}

/** A price of the list: what searching and paging read, and its figures, worked out when shown. */
interface ListedPrice {
  id: string;
  operation: string;
  modelName: string | null;
  view: () => PriceView;
}

export async function listPrices(
  ctx: Ctx,
  query: { q?: string; currency?: 'EUR' | 'USD'; org_id?: string; limit: number; cursor?: string },
): Promise<Page<PriceView>> {
  // The operator sees one org's list when it names the org; a key sees its own org's.
  const named = query.org_id ?? (ctx.principal.kind === 'operator' ? null : ctx.principal.orgId);
  const org =
    named === null ? null : await loadOrg(ctx.db, scopeOrg(ctx, named, 'usage:read', 'org_id'), 'org_id');
  const orgId = org?.id ?? null;
  const providerCost = org !== null && org.billing_mode !== 'credits';
  if (providerCost && query.currency !== undefined && query.currency !== 'USD') {
    throw new ServiceError(
      422,
      'invalid_request',
      `This org pays its provider itself (billing mode ${org.billing_mode}): its prices are the provider's, in USD`,
      'currency',
    );
  }
  const currency = query.currency ?? (providerCost ? 'USD' : (org?.currency ?? 'USD'));
  await ctx.prices.refresh(ctx.db);
  const now = new Date();
  const fx = ctx.prices.fxRate(currency, now);
  if (!fx)
    throw new ServiceError(
      409,
      'fx_rate_missing',
      `No exchange rate from USD to ${currency} is set`,
      'currency',
    );
  const factor = providerCost ? Ratio.ONE : Ratio.parse(ctx.prices.markupText()).mul(Ratio.parse(fx));
  // Every price of the catalog is listed, but only a page's worth is worked out: the exact
  // arithmetic for all of them took about a third of a request (1 694 models).
  const rows = new Map<string, ListedPrice>();
  for (const model of ctx.prices.current(now)) {
    for (const component of COMPONENTS) {
      const ref = CATALOG_KEYS[component];
      const value = ref ? model.prices[ref.key] : undefined;
      if (!ref || value === undefined) continue;
      const unit = DEFAULT_UNIT[component];
      const perUnit = (p: Ratio) => p.mul(factor).mul(Ratio.of(SELL_UNITS[unit], ref.per)).toDecimal(12);
      const id = `${model.provider}/${model.model}/${component}`;
      const operation = operationName(model.name ?? model.model, component);
      rows.set(id, {
        id,
        operation,
        modelName: model.name,
        view: () => ({
          id,
          object: 'price',
          provider: model.provider,
          model: model.model,
          model_name: model.name,
          component,
          operation,
          unit,
          unit_label: UNIT_LABELS[unit],
          price: perUnit(tierPrice(value, 0n)),
          currency,
          source: providerCost ? 'provider_cost' : 'markup',
          long_context:
            typeof value === 'string'
              ? []
              : value.tiers.map((t) => ({
                  above_input_tokens: t.start,
                  price: perUnit(Ratio.parse(t.price)),
                })),
        }),
      });
    }
  }
  // Operator-wide prices first, then the org's own, each oldest first: the last one written wins.
  const sells = (providerCost ? [] : ctx.prices.sellRows())
    .filter(
      (s) => s.currency === currency && s.valid_from <= now && (s.org_id === null || s.org_id === orgId),
    )
    .sort(
      (a, b) =>
        Number(a.org_id !== null) - Number(b.org_id !== null) ||
        a.valid_from.getTime() - b.valid_from.getTime(),
    );
  for (const sell of sells) {
    const id = `${sell.provider}/${sell.model}/${sell.component}`;
    const catalogName = rows.get(id)?.modelName ?? null;
    const operation = operationName(catalogName ?? sell.model, sell.component);
    rows.set(id, {
      id,
      operation,
      modelName: catalogName,
      view: () => ({
        id,
        object: 'price',
        provider: sell.provider,
        model: sell.model,
        model_name: catalogName,
        component: sell.component,
        operation,
        unit: sell.unit,
        unit_label: UNIT_LABELS[sell.unit],
        price: Ratio.parse(sell.price).toDecimal(12),
        currency,
        source: 'sell_price',
        long_context: [],
      }),
    });
  }
  const needle = query.q?.toLowerCase();
  const after = decodeCursor(query.cursor, ['text'])?.[0] as string | undefined;
  const list = [...rows.values()]
    .filter((r) => !needle || `${r.id} ${r.operation}`.toLowerCase().includes(needle))
    .sort((a, b) => (a.id < b.id ? -1 : 1))
    .filter((r) => after === undefined || r.id > after)
    .slice(0, query.limit + 1)
    .map((r) => r.view());
  return toPage(
    list,
    query.limit,
    (r) => [r.id],
    (r) => r,
  );
}
