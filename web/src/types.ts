/** The API answers the app reads (the fields it uses; amounts are decimal strings). */

export interface Page<T> {
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
}

export interface Session {
  kind: 'operator' | 'org_key' | 'embed';
  org_id: string | null;
  role: string | null;
  member_id: string | null;
  permissions: string[];
  /** When an embed token stops working; null for keys. */
  expires_at: string | null;
}

export interface Org {
  id: string;
  name: string;
  currency: string;
  timezone: string;
  billing_mode: 'credits' | 'byom' | 'byok';
  credit_value: string;
  plan_allowance_credits: string;
  /** The date of a cycle's first day (YYYY-MM-DD): its day of the month starts every cycle. */
  billing_cycle_anchor: string;
  /** The activity log names the provider and model of credit-billed calls. */
  activity_shows_model: boolean;
  /** On the host's free plan: the usage bar always offers the upgrade. */
  free_tier: boolean;
  created_at: string;
}

export interface Figures {
  credits: string;
  cost: string;
  calls: number;
}

export interface Tokens {
  input: number;
  output: number;
  cache_read: number;
  cache_write: number;
  total: number;
}

export interface UsageRange {
  name: string;
  start: string;
  end: string;
  /** The period the trend compares with (end excluded), as the API chose it. */
  previous_start: string;
  previous_end: string;
}

export type Unit = 'credits' | 'usd' | 'tokens';

export interface Summary extends Figures {
  range: UsageRange;
  unit: Unit;
  currency: string;
  provider_cost_usd?: string;
  tokens: Tokens;
  active_members: number;
  /** Calls whose metadata.error says they failed, and their percentage of calls. */
  failed_calls: number;
  error_rate: string;
  features: number;
  model_tiers: number;
  trend: { direction: 'up' | 'down' | 'flat'; percent: number | null; label: string };
}

export interface GrantSplit {
  granted_credits: string;
  used_credits: string;
  remaining_credits: string;
}

export interface Balance {
  billing_mode: Org['billing_mode'];
  tracking: string;
  notice: string | null;
  unit: Unit;
  currency: string;
  available_credits: string;
  available_amount: string;
  held_credits: string;
  /** Credits used past every grant (recorded, billed beyond the credits), and their worth. */
  overage_credits: string;
  overage_amount: string;
  granted_credits: string;
  consumed_credits: string;
  remaining_credits: string;
  monthly: GrantSplit;
  bonus: GrantSplit;
  cycle: {
    start: string;
    end: string;
    days_elapsed: number;
    days_remaining: number;
    spent_credits: string;
    average_per_day_credits: string;
    run_out_in_days: number | null;
    /** What runs out first: the credits, the month's allowed limit, or a BYOM org's spend cap. */
    run_out_by: 'credits' | 'allowed_limit' | 'spend_cap' | null;
    runs_out_before_cycle_end: boolean;
  };
}

export interface Limits {
  currency: string;
  basis: string;
  alert_threshold: string | null;
  allowed_limit: string | null;
  spent: string;
  held: string;
  status: string;
  period: { start: string; end: string };
}

export interface SeriesPoint extends Figures {
  start: string;
  end: string;
  groups?: { key: string; credits: string; cost: string; calls: number }[];
}

export interface Timeseries {
  granularity: 'hour' | 'day' | 'week';
  unit: Unit;
  cumulative: boolean;
  series: { key: string; label: string }[];
  total: Figures;
  data: SeriesPoint[];
}

export interface BreakdownRow extends Figures {
  key: string;
  label: string;
  /** By model: the model's provider. */
  provider?: string;
  email?: string | null;
  share: string;
  tokens: Tokens;
  /** Calls whose metadata named an error, their percentage of calls, and the error most given. */
  failed_calls: number;
  error_rate: string;
  top_error: string | null;
}

export interface Breakdown extends Page<BreakdownRow> {
  by: string;
  unit: Unit;
  groups: number;
  total: Figures;
}

/** An uploaded file the calls of the range used (GET /usage/files). */
export interface UsageFile {
  id: string;
  name: string | null;
  size_bytes: number | null;
  extracted_tokens: number | null;
  /** The calls that processed it (extracted its text), its share of their spend. */
  processing: Figures;
  /** Conversations that used it: its reuse count. */
  conversations: number;
  calls: number;
  first_used_at: string;
  last_used_at: string;
}

export interface UsageFiles extends Page<UsageFile> {
  unit: Unit;
  currency: string;
}

/** A conversation (chat) active in the range, with its figures there (GET /conversations). */
export interface UsageConversation extends Figures {
  conversation_id: string;
  title: string | null;
  /** Who started it in the range. */
  member: { id: string | null; label: string };
  last_activity_at: string;
  messages: number;
  tokens: Tokens;
}

export interface UsageConversations extends Page<UsageConversation> {
  unit: Unit;
  currency: string;
}

export interface UsageEvent {
  id: string;
  occurred_at: string;
  member: { id: string | null; label: string; email: string | null; removed: boolean } | null;
  feature: string;
  provider: string;
  model: string;
  surface: string | null;
  /** Its name on the usage pages (Web, CLI, API, Mobile, or an integration as sent). */
  surface_label: string | null;
  workspace: string | null;
  conversation_id: string | null;
  /** A failed call's error (its metadata.error), null when it succeeded. */
  error: string | null;
  tokens: Tokens;
  /** Every quantity the event recorded: tokens by kind, images, seconds, requests, web searches. */
  usage: Partial<Record<string, number>>;
  credits: string;
  cost: string;
  currency: string;
}

export interface Member {
  id: string;
  external_id: string | null;
  name: string | null;
  email: string | null;
  role: string;
  status: 'active' | 'removed';
}
