/**
 * The FOCUS (FinOps Open Cost and Usage Specification) column set of the usage export: one charge
 * row per event, so FinOps tools read Tally exports next to cloud bills. Every event is a
 * usage-based charge of its org (the billing account) in the org currency; the model is the
 * resource and SKU, the provider its publisher, the feature the service, the workspace the
 * sub-account. Charge periods are the event's hour; billing periods the org's billing cycle.
 * Columns Tally has no notion of (regions, commitment discounts) are present and empty, as the
 * specification asks; Tally's own figures follow as `x_` columns.
 */
import { anchorDayOf, billingCycle } from '../../domain/periods.ts';
import { UNIT_COUNTS } from '../../domain/pricing.ts';
import type { OrgRow } from '../orgs/shape.ts';

export const FOCUS_COLUMNS = [
  'AvailabilityZone',
  'BilledCost',
  'BillingAccountId',
  'BillingAccountName',
  'BillingCurrency',
  'BillingPeriodEnd',
  'BillingPeriodStart',
  'ChargeCategory',
  'ChargeClass',
  'ChargeDescription',
  'ChargeFrequency',
  'ChargePeriodEnd',
  'ChargePeriodStart',
  'CommitmentDiscountCategory',
  'CommitmentDiscountId',
  'CommitmentDiscountName',
  'CommitmentDiscountStatus',
  'CommitmentDiscountType',
  'ConsumedQuantity',
  'ConsumedUnit',
  'ContractedCost',
  'ContractedUnitPrice',
  'EffectiveCost',
  'InvoiceIssuerName',
  'ListCost',
  'ListUnitPrice',
  'PricingCategory',
  'PricingQuantity',
  'PricingUnit',
  'ProviderName',
  'PublisherName',
  'RegionId',
  'RegionName',
  'ResourceId',
  'ResourceName',
  'ResourceType',
  'ServiceCategory',
  'ServiceName',
  'SkuId',
  'SkuPriceId',
  'SubAccountId',
  'SubAccountName',
  'Tags',
  'x_EventId',
  'x_MemberId',
  'x_MemberName',
  'x_Credits',
  'x_InputTokens',
  'x_OutputTokens',
  'x_CacheReadTokens',
  'x_CacheWriteTokens',
  'x_ProviderCostUsd',
] as const;
export type FocusColumn = (typeof FOCUS_COLUMNS)[number];

/** The columns of numbers, written as they are. */
const FOCUS_NUMBER_COLUMNS: ReadonlySet<FocusColumn> = new Set<FocusColumn>([
  'BilledCost',
  'ConsumedQuantity',
  'ContractedCost',
  'ContractedUnitPrice',
  'EffectiveCost',
  'ListCost',
  'ListUnitPrice',
  'PricingQuantity',
  'x_Credits',
  'x_InputTokens',
  'x_OutputTokens',
  'x_CacheReadTokens',
  'x_CacheWriteTokens',
  'x_ProviderCostUsd',
]);
/**
 * Every other column may hold text from events (a provider named freely, a tag), which CSV guards
 * against formula injection; listed by what it is not, so no text column is left out.
 */
export const FOCUS_TEXT_COLUMNS: ReadonlySet<string> = new Set(
  FOCUS_COLUMNS.filter((c) => !FOCUS_NUMBER_COLUMNS.has(c)),
);

/** The export's own row, as the default column set has it. */
export interface TallyRow {
  occurred_at: string;
  event_id: string;
  member_id: string | null;
  member_name: string | null;
  feature: string;
  provider: string;
  model: string;
  surface: string | null;
  workspace: string | null;
  workspace_group: string | null;
  project: string | null;
  conversation_id: string | null;
  input_tokens: string;
  output_tokens: string;
  cache_read_tokens: string;
  cache_write_tokens: string;
  images: string;
  seconds: string;
  requests: string;
  web_searches: string;
  credits: string;
  cost: string;
  currency: string;
  provider_cost_usd: string | null;
}

const UNIT_NAMES: Record<(typeof UNIT_COUNTS)[number], string> = {
  images: 'Images',
  seconds: 'Seconds',
  requests: 'Requests',
  web_searches: 'Web searches',
};

/** What the row consumed: its tokens, or for an event that counts none, its first other unit. */
function consumed(row: TallyRow): { quantity: string; unit: string } {
  const tokens = BigInt(row.input_tokens) + BigInt(row.output_tokens);
  const other = UNIT_COUNTS.find((kind) => row[kind] !== '0');
  return tokens === 0n && other
    ? { quantity: row[other], unit: UNIT_NAMES[other] }
    : { quantity: String(tokens), unit: 'Tokens' };
}

const HOUR_MS = 3_600_000;

export function focusRow(org: OrgRow, row: TallyRow): Record<FocusColumn, string | null> {
  const at = new Date(row.occurred_at);
  const hour = Math.floor(at.getTime() / HOUR_MS) * HOUR_MS;
  const cycle = billingCycle(org.timezone, anchorDayOf(org.billing_cycle_anchor), at);
  const credits = org.billing_mode === 'credits';
  const resource = `${row.provider}/${row.model}`;
  const { quantity, unit } = consumed(row);
  const tags = Object.fromEntries(
    (
      [
        ['surface', row.surface],
        ['workspace_group', row.workspace_group],
        ['project', row.project],
        ['conversation_id', row.conversation_id],
      ] as const
    ).filter(([, v]) => v !== null),
  );
  return {
    AvailabilityZone: null,
    BilledCost: row.cost,
    BillingAccountId: org.id,
    BillingAccountName: org.name,
    BillingCurrency: row.currency,
    BillingPeriodEnd: cycle.end.toISOString(),
    BillingPeriodStart: cycle.start.toISOString(),
    ChargeCategory: 'Usage',
    ChargeClass: null,
    ChargeDescription: `${row.feature}: ${resource}`,
    ChargeFrequency: 'Usage-Based',
    ChargePeriodEnd: new Date(hour + HOUR_MS).toISOString(),
    ChargePeriodStart: new Date(hour).toISOString(),
    CommitmentDiscountCategory: null,
    CommitmentDiscountId: null,
    CommitmentDiscountName: null,
    CommitmentDiscountStatus: null,
    CommitmentDiscountType: null,
    ConsumedQuantity: quantity,
    ConsumedUnit: unit,
    ContractedCost: row.cost,
    ContractedUnitPrice: credits ? org.credit_value : null,
    EffectiveCost: row.cost,
    InvoiceIssuerName: null,
    ListCost: row.cost,
    ListUnitPrice: credits ? org.credit_value : null,
    PricingCategory: 'Standard',
    PricingQuantity: credits ? row.credits : null,
    PricingUnit: credits ? 'Credits' : null,
    ProviderName: row.provider,
    PublisherName: row.provider,
    RegionId: null,
    RegionName: null,
    ResourceId: resource,
    ResourceName: row.model,
    ResourceType: 'Model',
    ServiceCategory: 'AI and Machine Learning',
    ServiceName: row.feature,
    SkuId: resource,
    SkuPriceId: null,
    SubAccountId: row.workspace,
    SubAccountName: row.workspace,
    Tags: JSON.stringify(tags),
    x_EventId: row.event_id,
    x_MemberId: row.member_id,
    x_MemberName: row.member_name,
    x_Credits: row.credits,
    x_InputTokens: row.input_tokens,
    x_OutputTokens: row.output_tokens,
    x_CacheReadTokens: row.cache_read_tokens,
    x_CacheWriteTokens: row.cache_write_tokens,
    x_ProviderCostUsd: row.provider_cost_usd,
  };
}
