/**
 * Loads the provider cost catalog of `@pydantic/genai-prices` into the database as a new version.
 * Each model's ordered price list is kept whole (see domain/priceList.ts). A model whose list is
 * unchanged keeps its rows; a model whose list changed gets the whole new list, in force from now,
 * so events priced before keep the rows they were charged at.
 */
import { createRequire } from 'node:module';
import { type Provider, waitForUpdate } from '@pydantic/genai-prices';
import type { PriceValue, ProviderPriceSpec } from '../../domain/pricing.ts';
import type { Db, Queryable } from '../../store/db.ts';
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
  position: number;
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
      for (const [position, variant] of variants.entries()) {
        const c = 'constraint' in variant ? variant.constraint : undefined;
        rows.push({
          ...base,
          position,
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
    const changed = await changedModels(tx, rows);
    const incoming = rows.filter((r) => changed.has(modelKey(r)));
    const [result] = await tx.query<{ n: string }>(
      `WITH incoming AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(provider text, model text, name text, match jsonb,
           "validFrom" timestamptz, "timeOfDay" jsonb, prices jsonb, "contextWindow" integer, position integer)
       ), inserted AS (
         INSERT INTO provider_prices (catalog_version_id, origin, provider, model, name, match, valid_from,
                                      time_of_day, prices, context_window, list_from, list_position)
         SELECT $2, 'catalog', i.provider, i.model, i.name, i.match,
                COALESCE(i."validFrom", l.list_from), i."timeOfDay", i.prices, i."contextWindow",
                l.list_from, i.position
           FROM incoming i
          CROSS JOIN (SELECT CASE WHEN $3 THEN $4::timestamptz ELSE now() END AS list_from) l
         RETURNING 1)
       SELECT count(*) AS n FROM inserted`,
      [JSON.stringify(incoming), versionRow!.id, initial, EPOCH],
    );
    await bumpPriceGeneration(tx);
    return { version, inserted: Number(result!.n), loaded: true };
  });
}

const modelKey = (r: { provider: string; model: string }) => `${r.provider}\u0000${r.model}`;

/** A list entry as text that compares equal exactly when prices, start date and window are equal. */
function entryText(prices: unknown, validFrom: string | null, timeOfDay: unknown): string {
  return stableJson([prices, validFrom === null ? null : new Date(validFrom).toISOString(), timeOfDay]);
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The models whose incoming price list differs from the list on file now (or that are new). */
async function changedModels(tx: Queryable, rows: CatalogRow[]): Promise<Set<string>> {
  const stored = await tx.query<{
    provider: string;
    model: string;
    list_from: Date;
    catalog_version_id: number;
    list_position: number;
    valid_from: Date;
    time_of_day: unknown;
    prices: unknown;
  }>(
    `SELECT DISTINCT ON (p.provider, p.model, p.list_position)
            p.provider, p.model, p.list_from, p.catalog_version_id, p.list_position, p.valid_from,
            p.time_of_day, p.prices
       FROM provider_prices p
       JOIN (SELECT DISTINCT ON (provider, model) provider, model, list_from, catalog_version_id
               FROM provider_prices WHERE origin = 'catalog'
              ORDER BY provider, model, list_from DESC, catalog_version_id DESC) cur
         ON cur.provider = p.provider AND cur.model = p.model AND cur.list_from = p.list_from
        AND cur.catalog_version_id = p.catalog_version_id
      WHERE p.origin = 'catalog'
      ORDER BY p.provider, p.model, p.list_position`,
  );
  const onFile = new Map<string, string[]>();
  for (const r of stored) {
    // An entry without a start date was stored as starting with its list.
    const dated = r.valid_from.getTime() !== r.list_from.getTime() ? r.valid_from.toISOString() : null;
    const list = onFile.get(modelKey(r)) ?? [];
    list[r.list_position] = entryText(r.prices, dated, r.time_of_day);
    onFile.set(modelKey(r), list);
  }
  const incoming = new Map<string, string[]>();
  for (const r of rows) {
    const list = incoming.get(modelKey(r)) ?? [];
    list[r.position] = entryText(r.prices, r.validFrom, r.timeOfDay);
    incoming.set(modelKey(r), list);
  }
  const changed = new Set<string>();
  for (const [key, list] of incoming) {
    const current = onFile.get(key);
    if (!current || current.length !== list.length || current.some((e, i) => e !== list[i])) changed.add(key);
  }
  return changed;
}
