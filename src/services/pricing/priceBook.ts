/**
 * An in-process copy of the price tables (provider catalog, sell prices, FX rates, markup), so that
 * pricing an event costs no query. Every pricing write bumps `price_generation`; each process
 * reloads when it sees a new generation, checked at most once a second.
 */

import { type MatchRule, matchesModel } from '../../domain/modelMatch.ts';
import { Ratio } from '../../domain/money.ts';
import { pickListEntry } from '../../domain/priceList.ts';
import type { Component, ProviderPriceSpec, SellOverride, SellUnit } from '../../domain/pricing.ts';
import type { Queryable } from '../../store/db.ts';

export interface ProviderPriceRow {
  id: string;
  origin: 'catalog' | 'operator';
  provider: string;
  model: string;
  name: string | null;
  match: MatchRule | null;
  valid_from: Date;
  time_of_day: { start_time: string; end_time: string } | null;
  prices: ProviderPriceSpec;
  context_window: number | null;
  /** Catalog rows only: when the model's price list they belong to took effect, and their place in it. */
  list_from: Date | null;
  list_position: number | null;
}

interface SellPriceRow {
  id: string;
  org_id: string | null;
  provider: string;
  model: string;
  component: Component;
  price: string;
  unit: SellUnit;
  currency: string;
  valid_from: Date;
}

export interface ResolvedPrice {
  providerPrice: ProviderPriceRow | null;
  sellOverrides: Partial<Record<Component, SellOverride>>;
  sellPriceIds: string[];
  markup: Ratio;
  markupText: string;
  fxRate: Ratio;
  fxRateText: string;
}

const CHECK_EVERY_MS = 1000;

export class PriceBook {
  private generation = '';
  private checkedAt = 0;
  private byProvider = new Map<string, ProviderPriceRow[]>();
  /** The rows of each catalog model, by `modelKey`: a price is looked up among its model's rows only. */
  private byModel = new Map<string, ProviderPriceRow[]>();
  private matchCache = new Map<string, string | null>();
  private sell = new Map<string, SellPriceRow[]>();
  private fx = new Map<string, { rate: string; valid_from: Date }[]>();
  private markup = '1';

  constructor(private readonly defaultMarkup: string) {}

  /** Reloads when another process (or this one) changed prices since the last look. */
  async refresh(db: Queryable, force = false): Promise<void> {
    const now = Date.now();
    if (!force && now - this.checkedAt < CHECK_EVERY_MS) return;
    this.checkedAt = now;
    const [row] = await db.query<{ value: string }>(
      "SELECT value FROM operator_settings WHERE key = 'price_generation'",
    );
    const generation = row?.value ?? '0';
    if (!force && generation === this.generation) return;
    await this.load(db);
    this.generation = generation;
  }

  private async load(db: Queryable): Promise<void> {
    const rows = await db.query<ProviderPriceRow>(
      `SELECT id, origin, provider, model, name, match, valid_from, time_of_day, prices, context_window,
              list_from, list_position
         FROM provider_prices ORDER BY valid_from, id`,
    );
    this.byProvider = group(rows, (r) => r.provider);
    this.byModel = group(rows, (r) => modelKey(r.provider, r.model));
    this.matchCache.clear();
    const sells = await db.query<SellPriceRow>(
      'SELECT id, org_id, provider, model, component, price, unit, currency, valid_from FROM sell_prices ORDER BY valid_from, id',
    );
    this.sell = group(sells, (r) => modelKey(r.provider, r.model.toLowerCase()));
    const fx = await db.query<{ currency: string; rate: string; valid_from: Date }>(
      'SELECT currency, rate, valid_from FROM fx_rates ORDER BY valid_from, id',
    );
    this.fx = group(
      fx.map((r) => ({ ...r, rate: Ratio.parse(r.rate).toDecimal(10) })),
      (r) => r.currency,
    );
    const [markup] = await db.query<{ value: string }>(
      "SELECT value FROM operator_settings WHERE key = 'default_markup'",
    );
    this.markup = markup?.value ?? this.defaultMarkup;
  }

  /** The catalog model id an event's model name belongs to, by exact id first, then match rules. */
  private catalogModel(provider: string, model: string): string | null {
    const key = modelKey(provider, model);
    const cached = this.matchCache.get(key);
    if (cached !== undefined) return cached;
    const rows = this.byProvider.get(provider) ?? [];
    const lower = model.toLowerCase();
    const found =
      rows.find((r) => r.model.toLowerCase() === lower)?.model ??
      rows.find((r) => r.match && matchesModel(r.match, model))?.model ??
      null;
    if (this.matchCache.size > 100_000) this.matchCache.clear();
    this.matchCache.set(key, found);
    return found;
  }

  /** The provider list price in force for a model, as written by a client, at an instant (pickPrice). */
  providerPrice(provider: string, model: string, at: Date): ProviderPriceRow | null {
    const id = this.catalogModel(provider, model);
    if (!id) return null;
    return pickPrice(this.byModel.get(modelKey(provider, id)) ?? [], at);
  }

  resolve(orgId: string, currency: string, provider: string, model: string, at: Date): ResolvedPrice | null {
    const fxRows =
      currency === 'USD' ? [{ rate: '1', valid_from: new Date(0) }] : (this.fx.get(currency) ?? []);
    const fx = latest(fxRows, at);
    if (!fx) return null;
    const sellOverrides: Partial<Record<Component, SellOverride>> = {};
    const chosen = new Map<Component, SellPriceRow>();
    for (const row of this.sell.get(modelKey(provider, model.toLowerCase())) ?? []) {
      if (row.currency !== currency || row.valid_from > at) continue;
      if (row.org_id !== null && row.org_id !== orgId) continue;
      const current = chosen.get(row.component);
      // An org's own price beats the operator-wide one; within a level the newest wins.
      if (!current || (row.org_id !== null) >= (current.org_id !== null)) chosen.set(row.component, row);
    }
    for (const [component, row] of chosen) sellOverrides[component] = { price: row.price, unit: row.unit };
    return {
      providerPrice: this.providerPrice(provider, model, at),
      sellOverrides,
      sellPriceIds: [...chosen.values()].map((r) => r.id),
      markup: Ratio.parse(this.markup),
      markupText: this.markup,
      fxRate: Ratio.parse(fx.rate),
      fxRateText: fx.rate,
    };
  }

  /**
   * A model's name as the price list gives it: the catalog's name ("GPT-4o"), else the catalog's
   * id for it, else the model as written (a model only the org's own sell prices know).
   */
  modelName(provider: string, model: string, at: Date = new Date()): string {
    const row = this.providerPrice(provider, model, at);
    return row?.name ?? row?.model ?? model;
  }

  /** Every provider price row in force now, for the price list and the models endpoint. */
  current(at: Date = new Date()): ProviderPriceRow[] {
    const out: ProviderPriceRow[] = [];
    for (const rows of this.byModel.values()) {
      const row = pickPrice(rows, at);
      if (row) out.push(row);
    }
    return out;
  }

  sellRows(): SellPriceRow[] {
    return [...this.sell.values()].flat();
  }

  fxRate(currency: string, at: Date = new Date()): string | null {
    return currency === 'USD' ? '1' : (latest(this.fx.get(currency) ?? [], at)?.rate ?? null);
  }

  markupText(): string {
    return this.markup;
  }
}

/** The key of a provider's model in the book's maps. */
const modelKey = (provider: string, model: string) => `${provider}\u0000${model}`;

/**
 * Of one model's rows (ordered by start), the price in force at an instant: the catalog's newest
 * list that has taken effect, evaluated as genai-prices does, unless an operator price started at
 * or after it.
 */
function pickPrice(rows: ProviderPriceRow[], at: Date): ProviderPriceRow | null {
  let operator: ProviderPriceRow | null = null;
  let listFrom: Date | null = null;
  let list: ProviderPriceRow[] = [];
  for (const row of rows) {
    if (row.list_from === null) {
      if (row.valid_from <= at && (!operator || row.valid_from >= operator.valid_from)) operator = row;
    } else if (row.list_from <= at) {
      // Rows come ordered by start, so a list that took effect later replaces the one gathered so far.
      if (!listFrom || row.list_from > listFrom) [listFrom, list] = [row.list_from, []];
      if (row.list_from.getTime() === listFrom.getTime()) list.push(row);
    }
  }
  const catalog = pickListEntry(list, at);
  if (operator && (!catalog || operator.valid_from >= catalog.valid_from)) return operator;
  return catalog;
}

function latest<T extends { valid_from: Date }>(rows: T[], at: Date): T | undefined {
  let found: T | undefined;
  for (const row of rows) if (row.valid_from <= at) found = row;
  return found;
}

function group<T>(rows: T[], key: (row: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const row of rows) {
    const k = key(row);
    const list = map.get(k);
    if (list) list.push(row);
    else map.set(k, [row]);
  }
  return map;
}

export async function bumpPriceGeneration(tx: Queryable): Promise<void> {
  await tx.query(
    `INSERT INTO operator_settings (key, value) VALUES ('price_generation', '1')
     ON CONFLICT (key) DO UPDATE SET value = (operator_settings.value::bigint + 1)::text, updated_at = now()`,
  );
}
