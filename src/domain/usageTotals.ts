/**
 * Sums of usage rows (calls, credits, cost, provider cost, tokens) kept exact in integer units while
 * they are added up: by reports reading rollups, and by ingest summing a batch into them. Cost is
 * in units of 10^-COST_SCALE, provider cost of 10^-PCOST_SCALE.
 */

/** The rollup tables' columns of the sums, in the order of Totals' fields. */
export const SUM_NAMES =
  'calls, credits, cost, provider_cost_usd, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens';

/** Cost sums are NUMERIC(30, 12) in SQL; provider cost NUMERIC(30, 10). */
export const COST_SCALE = 12;
export const PCOST_SCALE = 10;

/** Sums kept exact in integer units while rows are added up. */
export interface Totals {
  calls: bigint;
  credits: bigint;
  cost: bigint;
  providerCost: bigint;
  input: bigint;
  output: bigint;
  cacheRead: bigint;
  cacheWrite: bigint;
}

export const zeroTotals = (): Totals => ({
  calls: 0n,
  credits: 0n,
  cost: 0n,
  providerCost: 0n,
  input: 0n,
  output: 0n,
  cacheRead: 0n,
  cacheWrite: 0n,
});

/** Adds `more` into `into`, field by field (it runs for every row a report reads and every event ingest sums). */
export function addTotals(into: Totals, more: Totals): Totals {
  into.calls += more.calls;
  into.credits += more.credits;
  into.cost += more.cost;
  into.providerCost += more.providerCost;
  into.input += more.input;
  into.output += more.output;
  into.cacheRead += more.cacheRead;
  into.cacheWrite += more.cacheWrite;
  return into;
}
