/**
 * Prices one usage event for its org (credits, currency amount, provider cost, per-component
 * parts, and the price rows used), or answers why it is rejected. No database access.
 */
import { CREDIT_SCALE, formatCredits, formatUnits, PROVIDER_COST_SCALE, Ratio } from '../../domain/money.ts';
import { creditsToMoney, priceEvent } from '../../domain/pricing.ts';
import { contentHash, timestampProblem, type UsageEventInput } from '../../domain/usageEvent.ts';
import type { Ctx } from '../context.ts';
import { toUnits } from '../limits/scopes.ts';
import type { OrgRow } from '../orgs/shape.ts';
import type { ResolvedPrice } from '../pricing/priceBook.ts';

export type EventResult =
  | {
      id: string;
      status: 'accepted' | 'duplicate';
      credits: string;
      cost: string;
      currency: string;
      error: null;
    }
  | {
      id: string;
      status: 'rejected';
      credits: null;
      cost: null;
      currency: null;
      error: { code: string; message: string };
    };

/** What an event's usage costs; holds and increments need no more than this, and no fingerprint. */
export interface PricedUsage {
  input: UsageEventInput;
  org: OrgRow;
  credits: bigint;
  /** What counts against limits and budgets: micro-credits, or micro-USD for BYOM orgs. */
  units: bigint;
  cost: string;
  currency: string;
  providerCostUsd: string;
  components: unknown;
  providerPriceId: string | null;
  pricing: Record<string, unknown>;
}

/** An event as it is stored: priced, with the fingerprint that tells a retry from a reused id. */
export interface StorableEvent extends PricedUsage {
  hash: string;
}

/** An event of an ingest batch, with its position in the batch. */
export interface PricedEvent extends StorableEvent {
  index: number;
}

export type RejectedResult = Extract<EventResult, { status: 'rejected' }>;

export const rejected = (id: string, code: string, message: string): RejectedResult => ({
  id,
  status: 'rejected',
  credits: null,
  cost: null,
  currency: null,
  error: { code, message },
});

/** Which org each event belongs to; an org the caller may not see is answered as not found. */
export interface IngestOptions {
  /** Trusted loaders (demo data, the CLI importer) may record history older than the 35-day window. */
  backfill?: boolean;
}

interface OrgTerms {
  creditValue: Ratio;
  maxUnits: bigint;
  /** The `pricing` record of each distinct set of prices used, shared by the events priced with it. */
  pricings: Map<string, Record<string, unknown>>;
}

/**
 * An org's credit value and the most units (micro-credits, or micro-USD for BYOM orgs) one event
 * may cost under TALLY_MAX_EVENT_COST, worked out once per org row (a batch shares one row per
 * org): an event costs more than the ceiling exactly when its units exceed this.
 */
const orgTerms = new WeakMap<OrgRow, OrgTerms>();

function termsOf(ctx: Ctx, org: OrgRow): OrgTerms {
  let terms = orgTerms.get(org);
  if (!terms) {
    terms = {
      creditValue: Ratio.parse(org.credit_value),
      maxUnits: toUnits(org, ctx.config.TALLY_MAX_EVENT_COST),
      pricings: new Map(),
    };
    orgTerms.set(org, terms);
  }
  return terms;
}

/** What an event was priced with, one record per distinct set in a batch (recordEvents sends each once). */
function pricingOf(terms: OrgTerms, org: OrgRow, resolved: ResolvedPrice): Record<string, unknown> {
  const providerPriceId = resolved.providerPrice?.id ?? null;
  const key = `${providerPriceId}\u0000${resolved.sellPriceIds.join(',')}\u0000${resolved.markupText}\u0000${resolved.fxRateText}`;
  let pricing = terms.pricings.get(key);
  if (!pricing) {
    pricing = {
      provider_price_id: providerPriceId,
      sell_price_ids: resolved.sellPriceIds,
      markup: resolved.markupText,
      fx_rate: resolved.fxRateText,
      credit_value: org.credit_value,
      billing_mode: org.billing_mode,
    };
    terms.pricings.set(key, pricing);
  }
  return pricing;
}

/** An event as ingest stores it: priced, with its position in the batch and its fingerprint. */
export function priceUsageEvent(
  ctx: Ctx,
  input: UsageEventInput,
  org: OrgRow,
  index: number,
  now: Date,
  options: IngestOptions,
): PricedEvent | RejectedResult {
  const priced = priceUsage(ctx, input, org, now, options);
  return 'status' in priced ? priced : { ...priced, index, hash: contentHash(input) };
}

export function priceUsage(
  ctx: Ctx,
  input: UsageEventInput,
  org: OrgRow,
  now: Date,
  options: IngestOptions,
): PricedUsage | RejectedResult {
  const at = new Date(input.occurred_at);
  const late = options.backfill && at <= now ? null : timestampProblem(at, now);
  if (late) return rejected(input.id, 'timestamp_out_of_range', late);
  const provider = input.provider.toLowerCase();
  const resolved = ctx.prices.resolve(org.id, org.currency, provider, input.model, at);
  if (!resolved) {
    return rejected(input.id, 'fx_rate_missing', `No exchange rate from USD to ${org.currency} is set`);
  }
  const terms = termsOf(ctx, org);
  const { creditValue, maxUnits } = terms;
  const result = priceEvent({
    usage: input.usage,
    providerPrices: resolved.providerPrice?.prices ?? null,
    sellOverrides: resolved.sellOverrides,
    markup: resolved.markup,
    fxRate: resolved.fxRate,
    creditValue,
  });
  if (!result.ok && org.billing_mode !== 'byok') {
    const what = `model "${input.model}" of provider "${input.provider}"`;
    return rejected(
      input.id,
      'model_unpriced',
      result.code === 'model_unpriced'
        ? `No price is known for ${what}; the operator or the org can add one`
        : `No price is set for the ${result.component} used by ${what}`,
    );
  }
  const priced = result.ok ? result : { credits: 0n, providerCostUsd: 0n, components: [] };
  // BYOM orgs pay their provider themselves: Tally shows provider cost in USD (rounded once, half
  // to even, to micro-dollars) and charges no credits. BYOK calls are tracked in tokens only.
  const credits = org.billing_mode === 'credits' ? priced.credits : 0n;
  const byomMicroUsd =
    org.billing_mode === 'byom'
      ? Ratio.fromUnits(priced.providerCostUsd, PROVIDER_COST_SCALE).roundHalfEven(CREDIT_SCALE)
      : 0n;
  const units = org.billing_mode === 'credits' ? credits : byomMicroUsd;
  const cost =
    org.billing_mode === 'credits'
      ? creditsToMoney(credits, creditValue)
      : formatUnits(byomMicroUsd, CREDIT_SCALE);
  const currency = org.billing_mode === 'byom' ? 'USD' : org.currency;
  if (units > maxUnits) {
    return rejected(
      input.id,
      'amount_too_large',
      `This event would cost ${cost} ${currency}, above the ceiling of ${ctx.config.TALLY_MAX_EVENT_COST} for one event`,
    );
  }
  return {
    input,
    org,
    credits,
    units,
    cost,
    currency,
    providerCostUsd: formatUnits(priced.providerCostUsd, PROVIDER_COST_SCALE),
    components: priced.components.map((c) => ({
      component: c.component,
      quantity: c.quantity.toString(),
      credits: formatCredits(c.credits),
      provider_cost_usd: c.providerCostUsd,
    })),
    providerPriceId: resolved.providerPrice?.id ?? null,
    pricing: pricingOf(terms, org, resolved),
  };
}
