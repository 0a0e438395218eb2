/**
 * Pricing of one usage event, exact end to end.
 *
 * THE ROUNDING RULE (the only place Tally rounds an event's amount):
 *   1. The exact sell amount of the event, in the org currency, is the sum over its components of
 *      either the explicit sell price x quantity / sell unit, or the provider list price (USD) x
 *      quantity / catalog unit x markup x FX rate. Nothing is rounded here: these are `Ratio`s.
 *   2. credits = sell amount / credit value, rounded ONCE, half to even, to whole micro-credits
 *      (6 decimals): `roundHalfEven(CREDIT_SCALE)`.
 *   3. cost (org currency) = credits x credit value, exact (the credit value has at most 6 decimals,
 *      so the product has at most 12); see `creditsToMoney`.
 *   4. The per-component credits are the rounded total allocated by largest remainder in proportion
 *      to each component's exact sell amount (`allocate`), so they add up to the total exactly.
 *   5. The provider cost in USD (what BYOM orgs see as their cost) is the exact catalog cost rounded
 *      once, half to even, to 10 decimals; its per-component parts are allocated the same way.
 *
 * CATALOG SEMANTICS (as `@pydantic/genai-prices`): prices are USD per million tokens (`*_mtok`),
 * per thousand (`*_kcount`) or per hour of audio (`audio_hours`). `input_tokens` counts every input
 * token and each is priced once: the cache-read, cache-write and audio-input tokens among them at
 * their own rate when the price has one, else at the input rate (likewise audio among
 * `output_tokens`). `cache_audio_read_tokens` are the cached audio tokens, among both
 * `cache_read_tokens` and `input_audio_tokens` (OpenAI's `cached_tokens_details.audio_tokens`):
 * priced at `cache_audio_read_mtok` when the price has one, else as the other cache reads, else as
 * audio input; the cache reads and audio input are priced without them. An event that does not say
 * how many cached tokens were audio has as many as its counts force: cache reads, cache writes and
 * audio beyond `input_tokens` (cache writes are text: no provider reports audio cache writes).
 * `cache_write_1h_tokens` are the 1-hour cache writes among `cache_write_tokens` (Anthropic charges
 * them more than 5-minute ones): priced at `cache_write_1h_mtok` when the price has one, else as the
 * other cache writes (so at the input rate when there is no cache-write price either). An org's own
 * cache-write or cache-read price covers its 1-hour writes or its cached audio too, unless it set one
 * for them. A tiered ("long context") price applies to ALL tokens of its kind at the last tier whose
 * `start` the event's total `input_tokens` exceeds. A model the catalog knows charges nothing for a
 * kind it has no price for (a free model has no prices at all); a model the catalog does not know
 * needs a sell price for every kind it uses, and so does anything the catalog cannot price (images).
 * A model with a per-request price charges one request per event unless `usage.requests` says how
 * many.
 */
import { allocate, CREDIT_SCALE, PROVIDER_COST_SCALE, Ratio } from './money.ts';

/** The countable things an event can carry in `usage`. */
export const USAGE_KEYS = [
  'input_tokens',
  'output_tokens',
  'cache_read_tokens',
  'cache_audio_read_tokens',
  'cache_write_tokens',
  'cache_write_1h_tokens',
  'input_audio_tokens',
  'output_audio_tokens',
  'images',
  'seconds',
  'requests',
  'web_searches',
] as const;
export type UsageKey = (typeof USAGE_KEYS)[number];
/** The counts that are not tokens, each its own unit. */
export const UNIT_COUNTS = ['images', 'seconds', 'requests', 'web_searches'] as const satisfies UsageKey[];
export type Usage = Partial<Record<UsageKey, number>>;

/** What an event is billed for: its quantities split into the kinds that carry their own price. */
export const COMPONENTS = [
  'input',
  'cache_read',
  'cache_audio_read',
  'cache_write',
  'cache_write_1h',
  'input_audio',
  'output',
  'output_audio',
  'images',
  'seconds',
  'requests',
  'web_searches',
] as const;
export type Component = (typeof COMPONENTS)[number];

export const isComponent = (name: string): name is Component =>
  (COMPONENTS as readonly string[]).includes(name);

/** What each component is called wherever an operation is named (the price list, the daily detail). */
export const COMPONENT_LABELS: Record<Component, string> = {
  input: 'Input tokens',
  cache_read: 'Cached input tokens (read)',
  cache_audio_read: 'Cached audio input tokens (read)',
  cache_write: 'Cache write tokens',
  cache_write_1h: 'Cache write tokens (1 hour)',
  input_audio: 'Audio input tokens',
  output: 'Output tokens',
  output_audio: 'Audio output tokens',
  images: 'Images',
  seconds: 'Audio / video time',
  requests: 'Requests',
  web_searches: 'Web searches',
};

/** The daily detail's line for the calls of a model that carried no priced component. */
export const UNPRICED_CALLS_LABEL = 'Calls (unpriced)';

/** An operation as the price list and the daily detail name it: "GPT-4o: Output tokens". */
export const operationName = (modelName: string, component: Component) =>
  `${modelName}: ${COMPONENT_LABELS[component]}`;

/** Provider catalog price per component: the catalog's key, and how many units its price is for. */
export const CATALOG_KEYS: Record<Component, { key: string; per: bigint } | null> = {
  input: { key: 'input_mtok', per: 1_000_000n },
  cache_read: { key: 'cache_read_mtok', per: 1_000_000n },
  cache_audio_read: { key: 'cache_audio_read_mtok', per: 1_000_000n },
  cache_write: { key: 'cache_write_mtok', per: 1_000_000n },
  cache_write_1h: { key: 'cache_write_1h_mtok', per: 1_000_000n },
  input_audio: { key: 'input_audio_mtok', per: 1_000_000n },
  output: { key: 'output_mtok', per: 1_000_000n },
  output_audio: { key: 'output_audio_mtok', per: 1_000_000n },
  web_searches: { key: 'web_searches_kcount', per: 1_000n },
  requests: { key: 'requests_kcount', per: 1_000n },
  seconds: { key: 'audio_hours', per: 3_600n },
  images: null,
};

/** Sell price units, as shown in the price list. */
export const SELL_UNITS = {
  per_1k_tokens: 1_000n,
  per_1m_tokens: 1_000_000n,
  per_image: 1n,
  per_minute: 60n,
  per_second: 1n,
  per_request: 1n,
  per_1k_requests: 1_000n,
} as const;
export type SellUnit = keyof typeof SELL_UNITS;

/** A catalog price: a decimal string, or a base price with long-context tiers. */
export type TieredPrice = { base: string; tiers: { start: number; price: string }[] };
export type PriceValue = string | TieredPrice;
export type ProviderPriceSpec = Record<string, PriceValue>;

export type SellOverride = { price: string; unit: SellUnit };

export interface PricingInput {
  usage: Usage;
  /** Provider list prices in USD (catalog keys), or null when the catalog does not know the model. */
  providerPrices: ProviderPriceSpec | null;
  /** Explicit sell prices in the org currency, per component; they win over cost x markup x FX. */
  sellOverrides: Partial<Record<Component, SellOverride>>;
  markup: Ratio;
  /** Units of org currency per USD. */
  fxRate: Ratio;
  /** Org currency per credit. */
  creditValue: Ratio;
  /**
   * Requests counted when `usage.requests` is absent or 0 and the model has a per-request price:
   * one event is one call (default 1). A caller pricing a part of a call (a streamed increment)
   * passes 0 so the request is charged once.
   */
  defaultRequests?: bigint;
}

export interface PricedComponent {
  component: Component;
  quantity: bigint;
  providerCostUsd: string;
  credits: bigint;
}

export type PricingResult =
  | { ok: true; credits: bigint; providerCostUsd: bigint; components: PricedComponent[] }
  | { ok: false; code: 'model_unpriced' | 'component_unpriced'; detail: string; component?: Component };

/**
 * Where a kind without a price of its own is billed, nearest first (the last one always): cached
 * audio as a cache read, else as audio input; 1-hour cache writes as cache writes; the rest of the
 * input as input, audio output as output.
 */
const BILLED_AS: Partial<Record<Component, Component[]>> = {
  cache_read: ['input'],
  cache_audio_read: ['cache_read', 'input_audio', 'input'],
  cache_write: ['input'],
  cache_write_1h: ['cache_write', 'input'],
  input_audio: ['input'],
  output_audio: ['output'],
};
const BILLED_AS_ENTRIES = Object.entries(BILLED_AS) as [Component, Component[]][];
/** The kinds an org's own price for another kind covers when it set none for them. */
const COVERED_BY: Partial<Record<Component, Component>> = {
  cache_write_1h: 'cache_write',
  cache_audio_read: 'cache_read',
};

/**
 * The cached audio tokens of an event, among both its cache reads and its audio input: as many as
 * it says, at least as many as its counts force (cache reads, cache writes and audio beyond its
 * input), never more than its cache reads or its audio.
 */
function cachedAudioTokens(usage: Usage): number {
  const { cache_read_tokens: cacheRead = 0, input_audio_tokens: audio = 0 } = usage;
  const forced = cacheRead + (usage.cache_write_tokens ?? 0) + audio - (usage.input_tokens ?? 0);
  return Math.max(0, Math.min(Math.max(usage.cache_audio_read_tokens ?? 0, forced), cacheRead, audio));
}

const countOf = (usage: Usage, k: UsageKey) => BigInt(usage[k] ?? 0);

/** Quantities per component, each token in one; a kind with no price of its own is billed as its parent. */
function quantities(input: PricingInput): Map<Component, bigint> {
  const { usage } = input;
  const cachedAudio = BigInt(cachedAudioTokens(usage));
  const [cacheRead, cacheWrite, audio] = [
    countOf(usage, 'cache_read_tokens'),
    countOf(usage, 'cache_write_tokens'),
    countOf(usage, 'input_audio_tokens'),
  ];
  const out = new Map<Component, bigint>([
    ['cache_read', cacheRead - cachedAudio],
    ['cache_audio_read', cachedAudio],
    ['cache_write', cacheWrite - countOf(usage, 'cache_write_1h_tokens')],
    ['cache_write_1h', countOf(usage, 'cache_write_1h_tokens')],
    ['input_audio', audio - cachedAudio],
    ['input', countOf(usage, 'input_tokens') - cacheRead - cacheWrite - audio + cachedAudio],
    ['output_audio', countOf(usage, 'output_audio_tokens')],
    ['output', countOf(usage, 'output_tokens') - countOf(usage, 'output_audio_tokens')],
  ]);
  for (const [kind, parents] of BILLED_AS_ENTRIES) {
    // Most events have none of most kinds: no price needs looking up for them.
    if (out.get(kind) === 0n) {
      out.delete(kind);
      continue;
    }
    if (hasPrice(input, kind)) continue;
    const to = parents.find((parent) => hasPrice(input, parent)) ?? parents.at(-1)!;
    out.set(to, out.get(to)! + out.get(kind)!);
    out.delete(kind);
  }
  for (const unit of ['images', 'seconds', 'web_searches'] as const) out.set(unit, countOf(usage, unit));
  const requests = countOf(usage, 'requests');
  out.set(
    'requests',
    requests > 0n ? requests : hasPrice(input, 'requests') ? (input.defaultRequests ?? 1n) : 0n,
  );
  return out;
}

/** The price that applies to all tokens of a kind: the last tier whose start the input exceeds. */
export function tierPrice(value: PriceValue, totalInputTokens: bigint): Ratio {
  if (typeof value === 'string') return Ratio.parse(value);
  let price = value.base;
  for (const tier of [...value.tiers].sort((a, b) => a.start - b.start)) {
    if (totalInputTokens > BigInt(tier.start)) price = tier.price;
  }
  return Ratio.parse(price);
}

// Module functions rather than closures made per event: the hot path of every ingested event.
function catalogValue(providerPrices: ProviderPriceSpec | null, c: Component): PriceValue | undefined {
  const ref = CATALOG_KEYS[c];
  return ref && providerPrices ? providerPrices[ref.key] : undefined;
}

function hasPrice({ providerPrices, sellOverrides }: PricingInput, c: Component): boolean {
  const coveredBy = COVERED_BY[c];
  if (coveredBy && sellOverrides[coveredBy] && !sellOverrides[c]) return false;
  return sellOverrides[c] !== undefined || catalogValue(providerPrices, c) !== undefined;
}

export function priceEvent(input: PricingInput): PricingResult {
  const { usage, providerPrices, sellOverrides } = input;
  if (!providerPrices && Object.keys(sellOverrides).length === 0) {
    return { ok: false, code: 'model_unpriced', detail: 'no price' };
  }
  const totalInput = BigInt(usage.input_tokens ?? 0);
  const parts: { component: Component; quantity: bigint; cost: Ratio; sell: Ratio }[] = [];
  for (const [component, quantity] of quantities(input)) {
    if (quantity <= 0n) continue;
    const override = sellOverrides[component];
    const value = catalogValue(providerPrices, component);
    const ref = CATALOG_KEYS[component];
    let cost: Ratio | null = null;
    if (value !== undefined && ref) cost = tierPrice(value, totalInput).mul(Ratio.of(quantity, ref.per));
    // A catalog model without a price for this kind does not charge for it (genai-prices semantics).
    else if (providerPrices && ref) cost = Ratio.ZERO;
    let sell: Ratio;
    if (override) sell = Ratio.parse(override.price).mul(Ratio.of(quantity, SELL_UNITS[override.unit]));
    else if (cost) sell = cost.mul(input.markup).mul(input.fxRate);
    else {
      return {
        ok: false,
        code: 'component_unpriced',
        component,
        detail: `no price for ${component.replace('_', ' ')}`,
      };
    }
    parts.push({ component, quantity, cost: cost ?? Ratio.ZERO, sell });
  }
  const totalSell = parts.reduce((acc, p) => acc.add(p.sell), Ratio.ZERO);
  const credits = totalSell.div(input.creditValue).roundHalfEven(CREDIT_SCALE);
  const totalCost = parts.reduce((acc, p) => acc.add(p.cost), Ratio.ZERO);
  const providerCostUsd = totalCost.roundHalfEven(PROVIDER_COST_SCALE);
  const creditParts = allocate(
    credits,
    parts.map((p) => p.sell),
  );
  const costParts = allocate(
    providerCostUsd,
    parts.map((p) => p.cost),
  );
  return {
    ok: true,
    credits,
    providerCostUsd,
    components: parts.map((p, i) => ({
      component: p.component,
      quantity: p.quantity,
      providerCostUsd: Ratio.fromUnits(costParts[i]!, PROVIDER_COST_SCALE).toDecimal(PROVIDER_COST_SCALE),
      credits: creditParts[i]!,
    })),
  };
}

/** The currency value of credits: exact, since the credit value is a finite decimal. */
export function creditsToMoney(microCredits: bigint, creditValue: Ratio): string {
  return Ratio.fromUnits(microCredits, CREDIT_SCALE)
    .mul(creditValue)
    .toDecimal(CREDIT_SCALE + 6);
}
