/**
 * Itemized entries of one day in the org's time zone (the daily detail page): one line per
 * category (feature), operation (provider, model and priced component: input tokens, cached input,
 * output tokens, images, ...), with the quantity, the unit price and the cost, read from the
 * components each event was priced with (`events.components`).
 *
 * Credits per line are the sums of the components' credits, which add up to each event's credits,
 * so the lines add up to the day's total exactly. The cost of a line is its credits times the
 * credit value the event was priced at (exact); for BYOM orgs, whose events cost their provider cost
 * rounded once to micro-dollars, it is the parts of those rounded costs the line's components take
 * (see ITEM_FROM), so BYOM lines add up to the day's total exactly too. The unit price is cost /
 * quantity per billing unit, rounded once, half to even, to 8 decimals. An event without priced
 * components (BYOK) is one "call" line with its tokens.
 */
import { isCalendarDate } from '../../domain/calendar.ts';
import { CREDIT_SCALE, decimalUnits, formatCredits, formatUnits, Ratio } from '../../domain/money.ts';
import { startOfLocalDay } from '../../domain/periods.ts';
import {
  COMPONENTS,
  type Component,
  isComponent,
  operationName,
  UNPRICED_CALLS_LABEL,
} from '../../domain/pricing.ts';
import { floorHour } from '../../domain/ranges.ts';
import { COST_SCALE, PCOST_SCALE, SUM_NAMES } from '../../domain/usageTotals.ts';
import type { Ctx } from '../context.ts';
import { ServiceError } from '../errors.ts';
import { figuresView, loadScope, type SumRow, totalsOf, type UsageFilters, whereOf } from './scope.ts';
import { coverageOf } from './source.ts';

/**
 * How many units of each component a unit price is quoted for, and what that unit is called: every
 * component has one (`satisfies`); a stored line of a name not known here falls back to 'unit'.
 */
const BILLING_UNITS: Record<string, { per: bigint; unit: string }> = {
  input: { per: 1000n, unit: '1 000 tokens' },
  cache_read: { per: 1000n, unit: '1 000 tokens' },
  cache_audio_read: { per: 1000n, unit: '1 000 tokens' },
  cache_write: { per: 1000n, unit: '1 000 tokens' },
  cache_write_1h: { per: 1000n, unit: '1 000 tokens' },
  input_audio: { per: 1000n, unit: '1 000 tokens' },
  output: { per: 1000n, unit: '1 000 tokens' },
  output_audio: { per: 1000n, unit: '1 000 tokens' },
  images: { per: 1n, unit: 'image' },
  seconds: { per: 60n, unit: 'minute' },
  requests: { per: 1n, unit: 'request' },
  web_searches: { per: 1n, unit: 'search' },
  call: { per: 1n, unit: 'call' },
} satisfies Record<Component | 'call', { per: bigint; unit: string }>;
const UNIT_PRICE_SCALE = 8;
export const MAX_DAY_ITEMS = 2_000;

/** The line of an event's component (an event without priced components is one 'call' line). */
export const ITEM_GROUP = `e.feature AS category, e.provider, e.model, coalesce(c.component, 'call') AS component`;
/** A BYOM event's cost in whole micro-dollars (see priceUsageEvent.ts), and one micro-dollar. */
const BYOM_UNITS = `e.cost * ${10n ** BigInt(CREDIT_SCALE)}`;
const MICRO = formatUnits(1n, CREDIT_SCALE);
/**
 * Each component parsed once into typed columns (jsonb_to_recordset), the pricing record once per
 * event; the LIMIT (an event has at most one line per component kind) tells the planner how few
 * rows an event expands to, so it hashes a day's groups in memory instead of sorting an estimated
 * hundred rows per event on disk.
 *
 * A BYOM event's rounded cost is split over its components by their provider costs, as money.ts
 * `allocate` does: each takes the floor of its exact share (div and mod are exact on numeric), the
 * units left go one each to the largest remainders, ties to the earlier component, and with no
 * provider cost at all the first takes everything; so per event the parts add up to its cost.
 * `byom_parts` holds them in component order, worked out once per BYOM event (OFFSET 0 keeps the
 * planner from copying it into every component row) and for no other event.
 */
export const ITEM_FROM = `events e
      CROSS JOIN LATERAL (
        SELECT e.pricing->>'billing_mode' = 'byom' AS byom, e.pricing->>'billing_mode' = 'byok' AS byok,
               (e.pricing->>'credit_value')::numeric AS credit_value,
               CASE WHEN e.pricing->>'billing_mode' = 'byom' THEN ARRAY(
                 SELECT (a.part + CASE WHEN row_number() OVER (ORDER BY a.rest DESC, a.ord)
                                           <= ${BYOM_UNITS} - sum(a.part) OVER () THEN 1 ELSE 0 END) * ${MICRO}
                   FROM (
                     SELECT a.ord,
                            coalesce(div(${BYOM_UNITS} * a.weight, nullif(sum(a.weight) OVER (), 0)),
                                     CASE a.ord WHEN 1 THEN ${BYOM_UNITS} ELSE 0 END) AS part,
                            mod(${BYOM_UNITS} * a.weight, nullif(sum(a.weight) OVER (), 0)) AS rest
                       FROM ROWS FROM (jsonb_to_recordset(CASE WHEN jsonb_typeof(e.components) = 'array' THEN e.components END)
                                         AS (provider_cost_usd numeric)) WITH ORDINALITY AS a (weight, ord)
                   ) AS a
                  ORDER BY a.ord) END AS byom_parts
        OFFSET 0
      ) AS p
       LEFT JOIN LATERAL (
         SELECT c.*, p.byom_parts[c.ord] AS byom_cost
           FROM ROWS FROM (jsonb_to_recordset(CASE WHEN jsonb_typeof(e.components) = 'array' THEN e.components END)
                             AS (component text, quantity numeric, credits numeric, provider_cost_usd numeric))
                WITH ORDINALITY AS c (component, quantity, credits, provider_cost_usd, ord)
          LIMIT ${COMPONENTS.length}
       ) AS c ON true`;
/**
 * A line's sums, unrounded: the cost of a line is its credits times the credit value its event was
 * priced at (`valued_cost`), or, for events priced without one, the org's (`unvalued_credits`,
 * valued on read); BYOM lines cost their parts of their events' rounded costs, unpriced events
 * their own cost. BYOK lines count their quantities only: the org's own provider key paid for them
 * (their components keep the credits the catalog would have charged, which nobody was).
 */
export const ITEM_SUMS = `sum(coalesce(c.quantity, 1)) AS quantity, count(*) AS calls,
       sum(CASE WHEN p.byom OR p.byok THEN 0 ELSE coalesce(c.credits, e.credits / 1000000.0) END) AS credits,
       sum(CASE WHEN p.byok THEN 0 WHEN p.byom THEN coalesce(c.byom_cost, e.cost) WHEN c.component IS NULL THEN e.cost
                WHEN p.credit_value IS NOT NULL THEN c.credits * p.credit_value ELSE 0 END) AS valued_cost,
       sum(CASE WHEN p.byom OR p.byok OR c.component IS NULL OR p.credit_value IS NOT NULL THEN 0 ELSE c.credits END)
         AS unvalued_credits,
       sum(coalesce(c.provider_cost_usd, e.provider_cost_usd)) AS provider_cost_usd`;

export async function getDayItems(
  ctx: Ctx,
  orgId: string,
  date: string,
  filters: UsageFilters,
  now = new Date(),
) {
  const scope = await loadScope(ctx, orgId, { range: '1d' }, now);
  await ctx.prices.refresh(ctx.db);
  const modelName = (provider: string, model: string) => ctx.prices.modelName(provider, model, now);
  if (!isCalendarDate(date)) {
    throw new ServiceError(400, 'invalid_field', 'date must be a calendar date (YYYY-MM-DD)', 'date');
  }
  const zone = scope.org.timezone;
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const next = new Date(Date.UTC(y, m - 1, d + 1));
  // The day on whole UTC hours, as report ranges and the daily totals cut it.
  const start = floorHour(startOfLocalDay(zone, y, m, d));
  const end = floorHour(
    startOfLocalDay(zone, next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate()),
  );
  // A busy day the build_usage_rollups job itemized (no filter, no event since) is read from its
  // lines; any other from raw events. Both give the same sums (see ITEM_SUMS).
  const coverage = Object.values(filters).some((v) => v !== undefined)
    ? null
    : await coverageOf(ctx.db.read, orgId, [start, end]);
  const built =
    coverage?.hours.length === 0 && coverage.days.length === 1 && coverage.days[0]!.paired
      ? coverage.days[0]!
      : null;
  const params: unknown[] = [];
  const lines = built
    ? `SELECT * FROM usage_daily_items WHERE org_id = $1 AND bucket = $2 AND day_end = $3`
    : `SELECT ${ITEM_GROUP}, ${ITEM_SUMS} FROM ${ITEM_FROM}
        WHERE ${whereOf('events', orgId, { start, end }, filters, params)} GROUP BY 1, 2, 3, 4`;
  if (built) params.push(orgId, built.start.toISOString(), built.end.toISOString());
  // The credit value of lines whose events did not carry theirs: the org's.
  const items = await ctx.db.read.query<{
    category: string;
    provider: string;
    model: string;
    component: string;
    quantity: string;
    calls: string;
    credits: string;
    cost: string;
    provider_cost_usd: string;
  }>(
    `SELECT category, provider, model, component, quantity::text, calls::text, round(credits, 6)::text AS credits,
            round(coalesce(valued_cost, 0) + coalesce(unvalued_credits, 0) * $${params.length + 1}::numeric, 12)::text AS cost,
            round(provider_cost_usd, 10)::text AS provider_cost_usd
       FROM (${lines}) AS l
      ORDER BY l.credits DESC, 1, 2, 3, 4
      LIMIT ${MAX_DAY_ITEMS + 1}`,
    [...params, scope.org.credit_value],
  );
  const totalParams: unknown[] = [];
  const [total] = await ctx.db.read.query<SumRow>(
    built
      ? `SELECT ${SUM_NAMES.split(', ')
          .map((c) => `${c}::text`)
          .join(', ')} FROM usage_daily_dim
          WHERE org_id = $1 AND dimension = 'all' AND bucket = $2 AND day_end = $3 AND key = ''`
      : `SELECT count(*)::text AS calls, coalesce(sum(credits), 0)::text AS credits, coalesce(sum(cost), 0)::text AS cost,
            coalesce(sum(provider_cost_usd), 0)::text AS provider_cost_usd,
            coalesce(sum(input_tokens), 0)::text AS input_tokens, coalesce(sum(output_tokens), 0)::text AS output_tokens,
            coalesce(sum(cache_read_tokens), 0)::text AS cache_read_tokens,
            coalesce(sum(cache_write_tokens), 0)::text AS cache_write_tokens
       FROM events e WHERE ${whereOf('events', orgId, { start, end }, filters, totalParams)}`,
    built ? params : totalParams,
  );
  const truncated = items.length > MAX_DAY_ITEMS;
  return {
    object: 'usage_day' as const,
    org_id: orgId,
    date,
    timezone: zone,
    start: start.toISOString(),
    end: end.toISOString(),
    unit: scope.unit,
    currency: scope.currency,
    total: (() => {
      const v = figuresView(totalsOf(total!), scope.operator);
      return { credits: v.credits, cost: v.cost, provider_cost_usd: v.provider_cost_usd, calls: v.calls };
    })(),
    data: items.slice(0, MAX_DAY_ITEMS).map((r) => {
      const billing = BILLING_UNITS[r.component] ?? { per: 1n, unit: 'unit' };
      const quantity = BigInt(r.quantity.split('.')[0]!);
      const cost = decimalUnits(r.cost, COST_SCALE);
      const unitPrice =
        quantity > 0n
          ? formatUnits(
              Ratio.fromUnits(cost, COST_SCALE)
                .mul(Ratio.of(billing.per, quantity))
                .roundHalfEven(UNIT_PRICE_SCALE),
              UNIT_PRICE_SCALE,
            )
          : '0';
      return {
        category: r.category,
        // Named as the price list names it, so an operation can be looked up there.
        operation: isComponent(r.component)
          ? operationName(modelName(r.provider, r.model), r.component)
          : `${modelName(r.provider, r.model)}: ${UNPRICED_CALLS_LABEL}`,
        provider: r.provider,
        model: r.model,
        component: r.component,
        quantity: quantity.toString(),
        billing_unit: billing.unit,
        unit_price: unitPrice,
        calls: Number(r.calls),
        credits: formatCredits(decimalUnits(r.credits, 6)),
        cost: formatUnits(cost, COST_SCALE),
        provider_cost_usd: scope.operator
          ? formatUnits(decimalUnits(r.provider_cost_usd, PCOST_SCALE), PCOST_SCALE)
          : null,
      };
    }),
    truncated,
  };
}
export type UsageDay = Awaited<ReturnType<typeof getDayItems>>;
