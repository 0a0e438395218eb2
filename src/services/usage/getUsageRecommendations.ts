/**
 * Ways to spend less, ranked by what they would have saved in the range, from the org's own usage:
 * - switch_model: a feature's calls priced on a cheaper model of the same provider that the org
 *   already uses (so it is known to work in the product), per feature and model;
 * - prompt_caching: a feature that sends many input tokens with almost no cache reads, on a model
 *   whose cache reads cost less, priced as if half of its input were read from the cache;
 * - review_member: one member drives more than half of the spend of three or more;
 * - long_context: calls of a feature on a model whose catalog price has long-context tiers (a
 *   higher rate for the WHOLE call once its input passes a threshold, 128k tokens or more) that
 *   passed it: the share of calls above the threshold and what they cost beyond the model's
 *   standard rate (the same tokens priced at the rate just below the threshold), read from the
 *   raw events of the range (a partial index keeps only calls above 128k input tokens);
 * - set_limit: the org has no monthly limit.
 * Savings are estimates: each (feature, model) is priced as its calls' average call, with today's
 * prices, for the current and the suggested model alike, so price changes inside the range and
 * per-request tiers do not pass for savings. Amounts are in the org's unit (credits, or USD for
 * BYOM) with the money equivalent; BYOK orgs pay their provider directly, so only limits apply.
 */
import { CREDIT_SCALE, formatUnits, Ratio } from '../../domain/money.ts';
import {
  creditsToMoney,
  type ProviderPriceSpec,
  priceEvent,
  tierPrice,
  type Usage,
} from '../../domain/pricing.ts';
import type { Totals } from '../../domain/usageTotals.ts';
import type { Ctx } from '../context.ts';
import type { OrgRow } from '../orgs/shape.ts';
import {
  loadScope,
  type MemberLabelRow,
  memberLabel,
  rangeView,
  SUM_COLUMNS,
  type SumRow,
  totalsOf,
  type UsageQuery,
  whereOf,
} from './scope.ts';
import { wideRows } from './source.ts';

const MONTH_MS = 30 * 86_400_000;
/** Below these a feature's input is too small, or its cache use already real, for caching advice. */
const CACHING_MIN_INPUT_TOKENS = 1_000_000n;
const CACHING_MAX_READ_SHARE = Ratio.of(1n, 10n);
const CACHED_SHARE_ASSUMED = Ratio.of(1n, 2n);
const MEMBER_SHARE = Ratio.of(1n, 2n);
const MEMBERS_FOR_CONCENTRATION = 3;
/** A switch must save at least this share of the feature's spend on that model to be worth it. */
const SWITCH_MIN_SHARE = Ratio.of(1n, 10n);
/**
 * Tiers starting at this many input tokens or more are long-context prices (the lowest the catalog
 * has); migration 0012's partial index `events_long_input` holds exactly the calls above it.
 */
const LONG_CONTEXT_TOKENS = 128_000;

type Kind = 'switch_model' | 'prompt_caching' | 'long_context' | 'review_member' | 'set_limit';

interface Recommendation {
  id: string;
  kind: Kind;
  title: string;
  detail: string;
  feature: string | null;
  current_model: string | null;
  suggested_model: string | null;
  member_id: string | null;
  calls: number | null;
  savings: string | null;
  savings_cost: string | null;
  savings_share: string | null;
  monthly_savings: string | null;
  monthly_savings_cost: string | null;
  /** long_context only: the figures it rests on. */
  long_context: LongContextBasis | null;
}

interface LongContextBasis {
  threshold_tokens: number;
  calls: number;
  long_calls: number;
  share_of_calls: string;
  extra: string;
  extra_cost: string;
}

interface Group extends Totals {
  feature: string;
  provider: string;
  model: string;
}

export async function getUsageRecommendations(ctx: Ctx, orgId: string, query: UsageQuery, now = new Date()) {
  const scope = await loadScope(ctx, orgId, { range: '30d', ...query }, now);
  const { org, range } = scope;
  await ctx.prices.refresh(ctx.db);
  const params: unknown[] = [];
  const rows = wideRows(org.id, range, query, params, query.tool !== undefined);
  const [groups, members, limits] = await Promise.all([
    ctx.db.read.query<SumRow & { feature: string; provider: string; model: string }>(
      `SELECT feature, provider, model, ${SUM_COLUMNS} FROM ${rows} AS w
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
      params,
    ),
    ctx.db.read.query<MemberLabelRow & SumRow>(
      `SELECT m.id, m.name, m.email, m.external_id, m.status, u.*
         FROM (SELECT member_id, ${SUM_COLUMNS} FROM ${rows} AS w GROUP BY 1) AS u
         JOIN members m ON m.org_id = $1 AND m.id = u.member_id`,
      params,
    ),
    ctx.db.read.query<{ allowed_limit: string | null }>(
      'SELECT allowed_limit::text FROM org_limits WHERE org_id = $1',
      [org.id],
    ),
  ]);
  const usage: Group[] = groups.map((g) => ({
    ...totalsOf(g),
    feature: g.feature,
    provider: g.provider,
    model: g.model,
  }));
  const spendOf = (t: Totals) => (org.billing_mode === 'byom' ? t.cost / 1_000_000n : t.credits);
  const total = usage.reduce((sum, g) => sum + spendOf(g), 0n);
  const money = moneyOf(org);
  const currency = org.billing_mode === 'byom' ? 'USD' : org.currency;
  const unitName = org.billing_mode === 'byom' ? 'USD' : 'credits';
  const spanMs = BigInt(range.end.getTime() - range.start.getTime());
  const view = (saved: bigint) => {
    const monthly = Ratio.of(saved * BigInt(MONTH_MS), spanMs).roundHalfEven(0);
    return {
      savings: formatUnits(saved, CREDIT_SCALE),
      savings_cost: money(saved),
      savings_share: total > 0n ? Ratio.of(saved * 100n, total).toDecimal(1) : null,
      monthly_savings: formatUnits(monthly, CREDIT_SCALE),
      monthly_savings_cost: money(monthly),
    };
  };

  const found: (Recommendation & { saved: bigint })[] = [];
  if (org.billing_mode !== 'byok') {
    const price = (provider: string, model: string, g: Totals, cached: boolean) =>
      priceAverageCall(ctx, org, provider, model, g, cached, now);
    for (const g of usage) {
      if (g.calls === 0n) continue;
      const current = price(g.provider, g.model, g, false);
      if (current === null || current === 0n) continue;
      const cheapest = usage
        .filter((o) => o.provider === g.provider && o.model !== g.model)
        .map((o) => ({ model: o.model, cost: price(g.provider, o.model, g, false) }))
        .filter((o): o is { model: string; cost: bigint } => o.cost !== null && o.cost < current)
        .sort((a, b) => (a.cost < b.cost ? -1 : a.cost > b.cost ? 1 : a.model < b.model ? -1 : 1))[0];
      const calls = Number(g.calls);
      if (cheapest && Ratio.of(current - cheapest.cost, current).cmp(SWITCH_MIN_SHARE) >= 0) {
        const saved = current - cheapest.cost;
        found.push({
          ...blank('switch_model', `switch_model:${g.feature}:${g.provider}/${g.model}`),
          title: `Use ${cheapest.model} for ${g.feature} where quality permits`,
          detail: `${calls} calls of ${g.feature} ran on ${g.model}; the same calls on ${cheapest.model}, which this organization already uses, would have cost ${Ratio.of((current - cheapest.cost) * 100n, current).toDecimal(0)} % less.`,
          feature: g.feature,
          current_model: `${g.provider}/${g.model}`,
          suggested_model: `${g.provider}/${cheapest.model}`,
          calls,
          saved,
          ...view(saved),
        });
      }
      const readShare = g.input === 0n ? Ratio.ONE : Ratio.of(g.cacheRead, g.input);
      if (g.input >= CACHING_MIN_INPUT_TOKENS && readShare.cmp(CACHING_MAX_READ_SHARE) < 0) {
        const withCache = price(g.provider, g.model, g, true);
        if (withCache !== null && withCache < current) {
          const saved = current - withCache;
          found.push({
            ...blank('prompt_caching', `prompt_caching:${g.feature}:${g.provider}/${g.model}`),
            title: `Cache the repeated context of ${g.feature}`,
            detail: `${g.feature} sent ${g.input} input tokens to ${g.model} with few cache reads; if half of them were read from the prompt cache the calls would cost this much less.`,
            feature: g.feature,
            current_model: `${g.provider}/${g.model}`,
            calls,
            saved,
            ...view(saved),
          });
        }
      }
    }
    for (const l of await longContextCalls(ctx, org, range, query, usage, now)) {
      if (l.extra <= 0n) continue;
      const model = `${l.provider}/${l.model}`;
      const share = Ratio.of(l.long * 100n, l.calls).toDecimal(1);
      const extraCost = money(l.extra);
      found.push({
        ...blank('long_context', `long_context:${l.feature}:${model}`),
        title: `Keep ${l.feature} prompts on ${l.model} under ${l.threshold} input tokens`,
        detail: `${l.long} of ${l.calls} calls of ${l.feature} on ${l.model} (${share} %) sent more than ${l.threshold} input tokens, where its long-context rate applies to the whole call: they cost ${formatUnits(l.extra, CREDIT_SCALE)} ${unitName} (${extraCost} ${currency}) more than the same tokens at its standard rate. Trimming or summarizing the context, or starting a new conversation, keeps calls under the threshold.`,
        feature: l.feature,
        current_model: model,
        calls: Number(l.long),
        saved: l.extra,
        ...view(l.extra),
        long_context: {
          threshold_tokens: l.threshold,
          calls: Number(l.calls),
          long_calls: Number(l.long),
          share_of_calls: share,
          extra: formatUnits(l.extra, CREDIT_SCALE),
          extra_cost: extraCost,
        },
      });
    }
    const memberSpend = members.map((m) => ({ m, spend: spendOf(totalsOf(m)) }));
    const top = memberSpend.sort((a, b) => (a.spend > b.spend ? -1 : a.spend < b.spend ? 1 : 0))[0];
    if (
      top &&
      total > 0n &&
      memberSpend.length >= MEMBERS_FOR_CONCENTRATION &&
      Ratio.of(top.spend, total).cmp(MEMBER_SHARE) > 0
    ) {
      const label = memberLabel(top.m);
      found.push({
        ...blank('review_member', `review_member:${top.m.id}`),
        title: `Review what ${label} uses AI for`,
        detail: `${label} accounts for ${Ratio.of(top.spend * 100n, total).toDecimal(0)} % of the spend of ${memberSpend.length} members in this period; some of that work may be automated more cheaply.`,
        member_id: top.m.id,
        saved: -1n,
      });
    }
  }
  if (!limits[0]?.allowed_limit) {
    found.push({
      ...blank('set_limit', 'set_limit'),
      title: 'Set a monthly limit',
      detail:
        'No monthly limit is set: an alert threshold and a hard limit keep a busy month from surprising you.',
      saved: -2n,
    });
  }
  found.sort((a, b) => (a.saved > b.saved ? -1 : a.saved < b.saved ? 1 : a.id < b.id ? -1 : 1));
  return {
    object: 'usage_recommendations' as const,
    org_id: org.id,
    range: rangeView(range),
    unit: org.billing_mode === 'byom' ? ('usd' as const) : ('credits' as const),
    currency,
    total_spend: formatUnits(total, CREDIT_SCALE),
    data: found.map(({ saved: _saved, ...r }) => r),
  };
}

function blank(kind: Kind, id: string): Omit<Recommendation, 'title' | 'detail'> {
  return {
    id,
    kind,
    feature: null,
    current_model: null,
    suggested_model: null,
    member_id: null,
    calls: null,
    savings: null,
    savings_cost: null,
    savings_share: null,
    monthly_savings: null,
    monthly_savings_cost: null,
    long_context: null,
  };
}

/** Micro-units of the org's spend (credits, or USD for BYOM) to money in its currency. */
function moneyOf(org: OrgRow): (micro: bigint) => string {
  if (org.billing_mode === 'byom') return (micro) => formatUnits(micro, CREDIT_SCALE);
  const creditValue = Ratio.parse(org.credit_value);
  return (micro) => creditsToMoney(micro, creditValue);
}

/**
 * What the calls of a (feature, model) would cost on `model` with today's prices, in micro-units
 * of the org's spend: the average call priced once, times the calls. `cached`: half of the input
 * read from the cache instead. Null when the model has no price.
 */
function priceAverageCall(
  ctx: Ctx,
  org: OrgRow,
  provider: string,
  model: string,
  t: Totals,
  cached: boolean,
  now: Date,
): bigint | null {
  const average = (n: bigint) => Number(n / t.calls);
  const input = average(t.input);
  const usage: Usage = {
    input_tokens: input,
    output_tokens: average(t.output),
    cache_read_tokens: cached
      ? Number(Ratio.int(input).mul(CACHED_SHARE_ASSUMED).roundHalfEven(0))
      : average(t.cacheRead),
    cache_write_tokens: cached ? 0 : average(t.cacheWrite),
  };
  const perCall = chargeFor(ctx, org, provider, model, usage, 1n, now);
  return perCall === null ? null : perCall * t.calls;
}

/**
 * The charge for `usage` on (provider, model) with today's prices, in micro-units of the org's
 * spend (credits, or USD for BYOM), counting `requests` calls where a request has a price. `pin`
 * rewrites the catalog prices first. Null when the model has no price.
 */
function chargeFor(
  ctx: Ctx,
  org: OrgRow,
  provider: string,
  model: string,
  usage: Usage,
  requests: bigint,
  now: Date,
  pin: (spec: ProviderPriceSpec) => ProviderPriceSpec = (spec) => spec,
): bigint | null {
  const resolved = ctx.prices.resolve(org.id, org.currency, provider, model, now);
  if (!resolved?.providerPrice) return null;
  const result = priceEvent({
    usage,
    providerPrices: pin(resolved.providerPrice.prices),
    sellOverrides: resolved.sellOverrides,
    markup: resolved.markup,
    fxRate: resolved.fxRate,
    creditValue: Ratio.parse(org.credit_value),
    defaultRequests: requests,
  });
  if (!result.ok) return null;
  return org.billing_mode === 'byom'
    ? Ratio.fromUnits(result.providerCostUsd, 10).roundHalfEven(CREDIT_SCALE)
    : result.credits;
}

/** The long-context tier starts of a catalog price (any of its kinds), ascending. */
function longContextStarts(spec: ProviderPriceSpec): number[] {
  const starts = new Set<number>();
  for (const value of Object.values(spec)) {
    if (typeof value === 'string') continue;
    for (const tier of value.tiers) if (tier.start >= LONG_CONTEXT_TOKENS) starts.add(tier.start);
  }
  return [...starts].sort((a, b) => a - b);
}

/** The catalog price with every tiered rate fixed at what a call of `inputTokens` pays. */
const pinnedAt =
  (inputTokens: bigint) =>
  (spec: ProviderPriceSpec): ProviderPriceSpec =>
    Object.fromEntries(
      Object.entries(spec).map(([key, value]) => [
        key,
        typeof value === 'string' ? value : tierPrice(value, inputTokens).toDecimal(20),
      ]),
    );

interface LongCalls {
  feature: string;
  provider: string;
  model: string;
  threshold: number;
  /** Every call of the (feature, model) in the range, and those above the threshold. */
  calls: bigint;
  long: bigint;
  /** What the long calls cost beyond the same tokens at the standard rate, in the org's unit. */
  extra: bigint;
}

/**
 * Per (feature, model) with long-context tiers: the calls above the lowest such tier, grouped by
 * the tier they reached and priced per group with today's prices at that tier and at the rate
 * just below the threshold. Pricing is linear within a tier, so a group is priced as one call
 * with its summed tokens (rounded once, not per call: an estimate within a micro-unit per group).
 */
async function longContextCalls(
  ctx: Ctx,
  org: OrgRow,
  range: { start: Date; end: Date },
  query: UsageQuery,
  usage: Group[],
  now: Date,
): Promise<LongCalls[]> {
  const tiered = new Map<string, number[]>();
  for (const g of usage) {
    const key = `${g.provider}/${g.model}`;
    if (tiered.has(key)) continue;
    const spec = ctx.prices.resolve(org.id, org.currency, g.provider, g.model, now)?.providerPrice?.prices;
    const starts = spec ? longContextStarts(spec) : [];
    if (starts.length > 0) tiered.set(key, starts);
  }
  if (tiered.size === 0) return [];
  const params: unknown[] = [];
  const where = whereOf('events', org.id, range, query, params);
  params.push(JSON.stringify([...tiered].map(([key, starts]) => ({ key, starts }))));
  const rows = await ctx.db.read.query<{
    feature: string;
    provider: string;
    model: string;
    tier: number;
    calls: string;
    input_tokens: string;
    output_tokens: string;
    cache_read_tokens: string;
    cache_write_tokens: string;
  }>(
    `SELECT e.feature, e.provider, e.model, t.tier, count(*)::text AS calls,
            sum(e.input_tokens)::text AS input_tokens, sum(e.output_tokens)::text AS output_tokens,
            sum(e.cache_read_tokens)::text AS cache_read_tokens, sum(e.cache_write_tokens)::text AS cache_write_tokens
       FROM events e
       JOIN jsonb_to_recordset($${params.length}::jsonb) AS m (key text, starts bigint[])
         ON m.key = e.provider || '/' || e.model
      CROSS JOIN LATERAL (SELECT count(*)::int AS tier FROM unnest(m.starts) AS s WHERE e.input_tokens > s) AS t
      WHERE ${where} AND e.input_tokens > ${LONG_CONTEXT_TOKENS} AND t.tier > 0
      GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
    params,
  );
  const out = new Map<string, LongCalls>();
  for (const r of rows) {
    const starts = tiered.get(`${r.provider}/${r.model}`)!;
    const summed: Usage = {
      input_tokens: Number(r.input_tokens),
      output_tokens: Number(r.output_tokens),
      cache_read_tokens: Number(r.cache_read_tokens),
      cache_write_tokens: Number(r.cache_write_tokens),
    };
    const calls = BigInt(r.calls);
    const at = (level: bigint) =>
      chargeFor(ctx, org, r.provider, r.model, summed, calls, now, pinnedAt(level));
    const charged = at(BigInt(starts[r.tier - 1]!) + 1n);
    const standard = at(BigInt(starts[0]!));
    if (charged === null || standard === null) continue;
    const key = `${r.feature}\u0000${r.provider}/${r.model}`;
    const group = usage.find(
      (g) => g.feature === r.feature && g.provider === r.provider && g.model === r.model,
    );
    const entry = out.get(key) ?? {
      feature: r.feature,
      provider: r.provider,
      model: r.model,
      threshold: starts[0]!,
      calls: group?.calls ?? calls,
      long: 0n,
      extra: 0n,
    };
    entry.long += calls;
    entry.extra += charged - standard;
    out.set(key, entry);
  }
  return [...out.values()];
}
