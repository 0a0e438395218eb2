/**
 * Loads the provider cost catalog of `@pydantic/genai-prices` into the database as a new version.
 * Prices already on file are kept; a model whose price changed gets a new row starting now, so
 * events priced before keep the row they were charged at.
 */
import { createRequire } from 'node:module';
import { type Provider, waitForUpdate } from '@pydantic/genai-prices';
import type { PriceValue, ProviderPriceSpec } from '../../domain/pricing.ts';
import type { Db } from '../../store/db.ts';
import { bumpPriceGeneration } from './priceBook.ts';

const SOURCE = 'genai-prices';
const EPOCH = '1970-01-01T00:00:00Z';

/** Catalog numbers are decimal literals; their shortest round-trip text is that literal. */
function toDecimalText(value: number): string {
  const text = String(value);
  if (!/^\d+(\.\d+)?$/.test(text)) throw new RangeError(`catalog price is not a plain decimal: ${text}`);
  return text;
}

function toSpec(prices: Record<string, unknown>): ProviderPriceSpec {
  const spec: ProviderPriceSpec = {};
  for (const [key, value] of Object.entries(prices)) {
    if (typeof value === 'number') spec[key] = toDecimalText(value);
    else if (value && typeof value === 'object' && 'base' in value) {
      const tiered = value as { base: number; tiers: { start: number; price: number }[] };
      spec[key] = {
        base: toDecimalText(tiered.base),
        tiers: tiered.tiers.map((t) => ({ start: t.start, price: toDecimalText(t.price) })),
      } satisfies PriceValue;
    }
  }
  return spec;
}

interface CatalogRow {
  provider: string;
  model: string;
  name: string | null;
  match: unknown;
  validFrom: string | null;
  timeOfDay: { start_time: string; end_time: string } | null;
  prices: ProviderPriceSpec;
  contextWindow: number | null;
}

export function catalogRows(providers: Provider[]): CatalogRow[] {
  const rows: CatalogRow[] = [];
  for (const provider of providers) {
    for (const model of provider.models) {
      const base = {
        provider: provider.id,
        model: model.id,
        name: model.name ?? null,
        match: model.match,
        contextWindow: model.context_window ?? null,
      };
      const variants = Array.isArray(model.prices) ? model.prices : [{ prices: model.prices }];
      for (const variant of variants) {
        const c = 'constraint' in variant ? variant.constraint : undefined;
        rows.push({
          ...base,
          validFrom: c && 'start_date' in c ? `${c.start_date}T00:00:00Z` : null,
          timeOfDay: c && 'start_time' in c ? { start_time: c.start_time, end_time: c.end_time } : null,
          prices: toSpec(variant.prices as Record<string, unknown>),
        });
      }
    }
  }
  return rows;
}

export function packageVersion(): string {
  const require = createRequire(import.meta.url);
  const main = require.resolve('@pydantic/genai-prices');
  const pkg = require(main.replace(/dist\/index\.cjs$/, 'package.json')) as { version: string };
  return pkg.version;
}

export async function loadCatalog(
  db: Db,
  source: { providers?: Provider[]; version?: string } = {},
): Promise<{ version: string; inserted: number; loaded: boolean }> {
  const version = source.version ?? packageVersion();
  const providers = source.providers ?? (await waitForUpdate()) ?? [];
  return db.transaction(async (tx) => {
    await tx.query('LOCK TABLE catalog_versions IN EXCLUSIVE MODE');
    const existing = await tx.query('SELECT 1 FROM catalog_versions WHERE source = $1 AND version = $2', [
      SOURCE,
      version,
    ]);
    if (existing.length > 0) return { version, inserted: 0, loaded: false };
    const rows = catalogRows(providers);
    const [first] = await tx.query<{ n: string }>(
      "SELECT count(*) AS n FROM provider_prices WHERE origin = 'catalog'",
    );
    const initial = first?.n === '0';
    const [versionRow] = await tx.query<{ id: number }>(
      'INSERT INTO catalog_versions (source, version, models) VALUES ($1, $2, $3) RETURNING id',
      [SOURCE, version, new Set(rows.map((r) => `${r.provider}/${r.model}`)).size],
    );
    // A row is new unless the same model already has the same prices, start and window on file.
    const [result] = await tx.query<{ n: string }>(
      `WITH incoming AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(provider text, model text, name text, match jsonb,
           "validFrom" timestamptz, "timeOfDay" jsonb, prices jsonb, "contextWindow" integer)
       ), inserted AS (
         INSERT INTO provider_prices (catalog_version_id, origin, provider, model, name, match, valid_from,
                                      time_of_day, prices, context_window)
         SELECT $2, 'catalog', i.provider, i.model, i.name, i.match,
                COALESCE(i."validFrom", CASE WHEN $3 THEN $4::timestamptz ELSE now() END),
                i."timeOfDay", i.prices, i."contextWindow"
           FROM incoming i
          WHERE NOT EXISTS (
            SELECT 1 FROM provider_prices p
             WHERE p.origin = 'catalog' AND p.provider = i.provider AND p.model = i.model
               AND p.prices = i.prices AND p.time_of_day IS NOT DISTINCT FROM i."timeOfDay"
               AND (i."validFrom" IS NULL OR p.valid_from = i."validFrom"))
         RETURNING 1)
       SELECT count(*) AS n FROM inserted`,
      [JSON.stringify(rows), versionRow!.id, initial, EPOCH],
    );
    await bumpPriceGeneration(tx);
    return { version, inserted: Number(result!.n), loaded: true };
  });
}
