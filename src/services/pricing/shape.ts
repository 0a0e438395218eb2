import type { ProviderPriceSpec } from '../../domain/pricing.ts';

export interface ModelRow {
  id: string;
  origin: 'catalog' | 'operator';
  provider: string;
  model: string;
  name: string | null;
  valid_from: Date;
  time_of_day: { start_time: string; end_time: string } | null;
  prices: ProviderPriceSpec;
  context_window: number | null;
}

/** A provider list price in USD, per million tokens (`*_mtok`) or per thousand (`*_kcount`). */
export const modelView = (row: ModelRow) => ({
  object: 'model_price' as const,
  price_id: row.id,
  provider: row.provider,
  model: row.model,
  name: row.name,
  origin: row.origin,
  currency: 'USD' as const,
  valid_from: row.valid_from.toISOString(),
  time_of_day: row.time_of_day,
  context_window: row.context_window,
  prices: row.prices,
});
export type ModelView = ReturnType<typeof modelView>;
