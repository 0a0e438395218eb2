/**
 * Usage insights: the itemized entries of one day, the conversations of a range with their totals,
 * one conversation with its messages and files, patterns (busiest hours and weekdays, week over
 * week), the spend forecast, spend and error rate anomalies and recommendations.
 */
import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { getConversation } from '../../services/usage/getConversation.ts';
import { getDayItems } from '../../services/usage/getDayItems.ts';
import { getUsageAnomalies } from '../../services/usage/getUsageAnomalies.ts';
import { getUsageForecast } from '../../services/usage/getUsageForecast.ts';
import { getUsagePatterns } from '../../services/usage/getUsagePatterns.ts';
import { getUsageRecommendations } from '../../services/usage/getUsageRecommendations.ts';
import { CONVERSATION_SORTS, listConversations } from '../../services/usage/listConversations.ts';
import { listUsageFiles } from '../../services/usage/listUsageFiles.ts';
import type { AppEnv } from '../env.ts';
import { errorResponses, json, OrgParam, Text } from '../schemas.ts';
import {
  Amount,
  Count,
  Cursor,
  Filters,
  RangeSchema,
  Tokens,
  Total,
  Unit,
  UsageMember,
  UsageQuery,
} from './usage.ts';

const Operator = Amount.nullable().openapi({ description: 'Operator keys only' });

export const UsageDaySchema = z
  .object({
    object: z.literal('usage_day'),
    org_id: z.string(),
    date: z.string(),
    timezone: z.string(),
    start: z.string(),
    end: z.string(),
    unit: Unit,
    currency: z.string(),
    total: Total,
    data: z.array(
      z.object({
        category: z.string().openapi({ description: 'The feature' }),
        operation: z.string().openapi({ example: 'openai/gpt-4o output tokens' }),
        provider: z.string(),
        model: z.string(),
        component: z.string(),
        quantity: z.string().openapi({ description: 'Units of the component (tokens, images, ...)' }),
        billing_unit: z.string().openapi({ example: '1 000 tokens' }),
        unit_price: Amount.openapi({ description: 'Cost per billing unit, 8 decimals' }),
        calls: Count,
        credits: Amount,
        cost: Amount,
        provider_cost_usd: Operator,
      }),
    ),
    truncated: z.boolean(),
  })
  .openapi('UsageDay');

const ConversationFigures = {
  calls: Count,
  tokens: Tokens,
  input_breakdown: z
    .object({ message: z.int().nullable(), context: z.int().nullable(), files: z.int().nullable() })
    .openapi({
      description:
        'From metadata.input_tokens ({message, context, files}) of the events, when they give it as a whole number of tokens',
    }),
  output_breakdown: z.object({ response: z.int().nullable(), tools: z.int().nullable() }).openapi({
    description:
      "The output split into the model's response and tool outputs, from metadata.output_tokens ({response, tools}) of the events, when they give it as a whole number of tokens",
  }),
  processing_ms: z.int().nonnegative().nullable().openapi({
    description:
      'How long the model took, summed over the calls (milliseconds, rounded down), from metadata.processing_ms of the events; null when none says',
  }),
  credits: Amount,
  cost: Amount,
  provider_cost_usd: Operator,
};
export const ConversationUsageSchema = z
  .object({
    object: z.literal('conversation_usage'),
    id: z.string(),
    org_id: z.string(),
    title: z.string().nullable().openapi({
      description:
        'The latest non-empty metadata.conversation_title of its events, trimmed and cut to 200 characters',
      example: 'Q3 Marketing Analysis',
    }),
    unit: Unit,
    currency: z.string(),
    started_at: z.string(),
    ended_at: z.string(),
    duration_seconds: z.int().nonnegative(),
    members: Count,
    messages: Count,
    ...ConversationFigures,
    files: z.array(
      z.object({
        id: z.string(),
        name: z.string().nullable(),
        size_bytes: z.int().nullable(),
        extracted_tokens: z.int().nullable(),
        messages: Count,
      }),
    ),
    data: z.array(
      z.object({
        message_id: z.string(),
        started_at: z.string(),
        ended_at: z.string(),
        models: z.array(z.string()),
        features: z.array(z.string()),
        ...ConversationFigures,
        components: z
          .array(
            z.object({
              component: z.string().openapi({ example: 'output' }),
              quantity: z.string().openapi({ description: 'Units of the component (tokens, images, ...)' }),
              credits: Amount,
              cost: Amount,
            }),
          )
          .openapi({
            description:
              "The exact pricing breakdown of the message's calls by priced component ('call' for calls priced without components): the credits and costs add up to the message's exactly",
          }),
      }),
    ),
    has_more: z.boolean(),
    next_cursor: z.string().nullable(),
  })
  .openapi('ConversationUsage');

export const UsageConversationsSchema = z
  .object({
    object: z.literal('usage_conversations'),
    org_id: z.string(),
    range: RangeSchema,
    sort: z.enum(CONVERSATION_SORTS),
    unit: Unit,
    currency: z.string(),
    data: z.array(
      z.object({
        object: z.literal('usage_conversation'),
        conversation_id: z.string(),
        title: z.string().nullable().openapi({
          description: 'The conversation title, as GET /v1/orgs/{org}/conversations/{conversation} shows it',
          example: 'Q3 Marketing Analysis',
        }),
        member: UsageMember.openapi({ description: 'Who started the conversation in the range' }),
        members: Count.openapi({ description: 'Members who took part in the range' }),
        first_activity_at: z.string(),
        last_activity_at: z.string(),
        messages: Count.openapi({ description: 'Distinct message_id (an event without one counts alone)' }),
        calls: Count,
        tokens: Tokens,
        credits: Amount,
        cost: Amount,
        provider_cost_usd: Operator,
        currency: z.string(),
      }),
    ),
    has_more: z.boolean(),
    next_cursor: z.string().nullable(),
  })
  .openapi('UsageConversations');

export const UsageFilesSchema = z
  .object({
    object: z.literal('usage_files'),
    org_id: z.string(),
    range: RangeSchema,
    unit: Unit,
    currency: z.string(),
    data: z.array(
      z.object({
        id: z.string(),
        object: z.literal('usage_file'),
        name: z.string().nullable(),
        size_bytes: z.int().nullable(),
        extracted_tokens: z.int().nullable(),
        processing: z
          .object({ calls: Count, credits: Amount, cost: Amount, provider_cost_usd: Operator })
          .openapi({
            description:
              'The calls that processed the file ("processed": true in its metadata.files entry), shared among the files each processed by extracted tokens',
          }),
        conversations: Count.openapi({ description: 'Conversations that used it (reuse count)' }),
        calls: Count.openapi({ description: 'Calls that used it' }),
        first_used_at: z.string(),
        last_used_at: z.string(),
      }),
    ),
    has_more: z.boolean(),
    next_cursor: z.string().nullable(),
  })
  .openapi('UsageFiles');

const Cell = { credits: Amount, cost: Amount, calls: Count, tokens: Count, share: z.string() };
const Trend = z.object({
  direction: z.enum(['up', 'down', 'flat', 'new']),
  percent: z.int().nullable(),
  label: z.string(),
});
const Short = z.object({ credits: Amount, cost: Amount, calls: Count, tokens: Count });
export const UsagePatternsSchema = z
  .object({
    object: z.literal('usage_patterns'),
    org_id: z.string(),
    range: RangeSchema,
    timezone: z.string(),
    unit: Unit,
    currency: z.string(),
    total: Short,
    busiest_hour: z.int().min(0).max(23).nullable(),
    busiest_weekday: z.int().min(1).max(7).nullable().openapi({ description: '1 = Monday ... 7 = Sunday' }),
    hours: z.array(z.object({ hour: z.int(), ...Cell })),
    weekdays: z.array(z.object({ weekday: z.int(), name: z.string(), days: Count, ...Cell })),
    weeks: z.array(
      z.object({
        start: z.string(),
        end: z.string(),
        credits: Amount,
        cost: Amount,
        calls: Count,
        change: Trend.nullable(),
      }),
    ),
    week_over_week: z.object({ current: Short, previous: Short, trend: Trend }),
  })
  .openapi('UsagePatterns');

const Scenario = z.object({ amount: Amount, cost: Amount });
const Scenarios = { conservative: Scenario, likely: Scenario, aggressive: Scenario };
export const UsageForecastSchema = z
  .object({
    object: z.literal('usage_forecast'),
    org_id: z.string(),
    timezone: z.string(),
    unit: Unit,
    currency: z.string(),
    method: z.string(),
    as_of: z.string(),
    history_days: Count,
    weekday_factors: z.array(z.string()).openapi({ description: 'Sunday first' }),
    trend_per_day: Amount,
    today: z.object({ date: z.string(), actual: Scenario, elapsed: z.string() }),
    next_30_days: z.object({ start: z.string(), end: z.string(), ...Scenarios }),
    end_of_month: z.object({ month: z.string(), end: z.string(), month_to_date: Scenario, ...Scenarios }),
    run_out: z
      .object({
        available: Amount,
        likely_date: z.string().nullable(),
        earliest_date: z.string().nullable(),
        latest_date: z.string().nullable(),
      })
      .nullable()
      .openapi({ description: 'Credit orgs only; a date is null when not within a year' }),
  })
  .openapi('UsageForecast');

export const UsageAnomaliesSchema = z
  .object({
    object: z.literal('usage_anomalies'),
    org_id: z.string(),
    timezone: z.string(),
    unit: Unit,
    currency: z.string(),
    measure: z.enum(['credits', 'usd', 'calls']),
    baseline_days: Count,
    days: Count,
    method: z.string(),
    data: z.array(
      z.object({
        date: z.string(),
        metric: z.enum(['spend', 'error_rate']).openapi({
          description: 'spend: value, median and MAD in the unit; error_rate: in percent of the calls',
        }),
        scope: z.enum(['org', 'member', 'feature']).openapi({ description: 'error_rate: org or feature' }),
        key: z.string(),
        label: z.string(),
        value: Amount,
        median: Amount,
        mad: Amount,
        score: z.number(),
        severity: z.enum(['low', 'medium', 'high']),
        failed_calls: z.int().nullable().openapi({ description: "error_rate: the day's failed calls" }),
        calls: z.int().nullable().openapi({ description: "error_rate: the day's calls" }),
      }),
    ),
  })
  .openapi('UsageAnomalies');

const Nullable = Amount.nullable();
export const UsageRecommendationsSchema = z
  .object({
    object: z.literal('usage_recommendations'),
    org_id: z.string(),
    range: RangeSchema,
    unit: z.enum(['credits', 'usd']),
    currency: z.string(),
    total_spend: Amount,
    data: z.array(
      z.object({
        id: z.string(),
        kind: z.enum(['switch_model', 'prompt_caching', 'long_context', 'review_member', 'set_limit']),
        title: z.string(),
        detail: z.string(),
        feature: z.string().nullable(),
        current_model: z.string().nullable().openapi({ example: 'openai/gpt-4o' }),
        suggested_model: z.string().nullable().openapi({ example: 'openai/gpt-4o-mini' }),
        member_id: z.string().nullable(),
        calls: z.int().nullable(),
        savings: Nullable.openapi({ description: 'Estimated saving in the range, in the unit' }),
        savings_cost: Nullable.openapi({ description: 'The same in the currency' }),
        savings_share: z
          .string()
          .nullable()
          .openapi({ description: 'Percent of the total spend', example: '17.0' }),
        monthly_savings: Nullable.openapi({ description: 'The saving scaled to 30 days' }),
        monthly_savings_cost: Nullable,
        long_context: z
          .object({
            threshold_tokens: Count.openapi({
              description: 'Input tokens above which the long-context rate applies',
            }),
            calls: Count.openapi({ description: 'Calls of the feature on the model in the range' }),
            long_calls: Count.openapi({ description: 'Those above the threshold' }),
            share_of_calls: z.string().openapi({ description: 'Percent of the calls', example: '12.5' }),
            extra: Amount.openapi({ description: 'What they cost beyond the standard rate, in the unit' }),
            extra_cost: Amount.openapi({ description: 'The same in the currency' }),
          })
          .nullable()
          .openapi({ description: 'long_context only: the figures it rests on' }),
      }),
    ),
  })
  .openapi('UsageRecommendations');

const route = <R extends Parameters<typeof createRoute>[0]>(r: R) => createRoute({ tags: ['Usage'], ...r });

export function usageInsightRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(
    route({
      method: 'get',
      path: '/v1/orgs/{org}/usage/days/{date}',
      summary: 'Itemized entries of one day: category, operation, unit price, quantity and cost',
      request: {
        params: OrgParam.extend({
          date: z
            .string()
            .max(10)
            .openapi({ param: { name: 'date', in: 'path' }, example: '2026-03-14' }),
        }),
        query: z.strictObject(Filters),
      },
      responses: { 200: json(UsageDaySchema, 'The day'), ...errorResponses },
    }),
    async (c) => {
      const { org, date } = c.req.valid('param');
      return c.json(await getDayItems(c.get('ctx'), org, date, c.req.valid('query')), 200);
    },
  );
  app.openapi(
    route({
      method: 'get',
      path: '/v1/orgs/{org}/usage/files',
      summary: 'Uploaded files used in the range: extracted tokens, processing cost and reuse, latest first',
      request: {
        params: OrgParam,
        query: UsageQuery.extend({
          limit: z.coerce.number().int().min(1).max(200).default(50),
          cursor: Cursor,
        }),
      },
      responses: { 200: json(UsageFilesSchema, 'A page of files'), ...errorResponses },
    }),
    async (c) =>
      c.json(await listUsageFiles(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')), 200),
  );
  app.openapi(
    route({
      method: 'get',
      path: '/v1/orgs/{org}/conversations/{conversation}',
      summary: 'One conversation: totals, duration, files, and its messages oldest first',
      request: {
        params: OrgParam.extend({
          conversation: Text(200).openapi({ param: { name: 'conversation', in: 'path' } }),
        }),
        query: z.strictObject({
          limit: z.coerce.number().int().min(1).max(500).default(100),
          cursor: Cursor,
        }),
      },
      responses: { 200: json(ConversationUsageSchema, 'The conversation'), ...errorResponses },
    }),
    async (c) => {
      const { org, conversation } = c.req.valid('param');
      return c.json(await getConversation(c.get('ctx'), org, conversation, c.req.valid('query')), 200);
    },
  );
  app.openapi(
    route({
      method: 'get',
      path: '/v1/orgs/{org}/conversations',
      summary: 'Conversations active in the range with their totals, newest activity (or most spent) first',
      request: {
        params: OrgParam,
        query: UsageQuery.extend({
          sort: z.enum(CONVERSATION_SORTS).default('last_activity').openapi({
            description: "credits: most spent first, in the org's unit (USD cost for BYOM, tokens for BYOK)",
          }),
          limit: z.coerce.number().int().min(1).max(200).default(50),
          cursor: Cursor,
        }),
      },
      responses: { 200: json(UsageConversationsSchema, 'A page of conversations'), ...errorResponses },
    }),
    async (c) =>
      c.json(await listConversations(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')), 200),
  );
  app.openapi(
    route({
      method: 'get',
      path: '/v1/orgs/{org}/usage/patterns',
      summary: 'Busiest hours and weekdays in the org time zone, and week over week',
      request: { params: OrgParam, query: UsageQuery },
      responses: { 200: json(UsagePatternsSchema, 'The patterns'), ...errorResponses },
    }),
    async (c) =>
      c.json(await getUsagePatterns(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')), 200),
  );
  app.openapi(
    route({
      method: 'get',
      path: '/v1/orgs/{org}/usage/forecast',
      summary: 'Next 30 days and end of month (conservative, likely, aggressive) and the run-out date',
      request: { params: OrgParam, query: z.strictObject({}) },
      responses: { 200: json(UsageForecastSchema, 'The forecast'), ...errorResponses },
    }),
    async (c) => c.json(await getUsageForecast(c.get('ctx'), c.req.valid('param').org), 200),
  );
  app.openapi(
    route({
      method: 'get',
      path: '/v1/orgs/{org}/usage/anomalies',
      summary:
        'Unusual daily spend and error rates of the org, members and features against the trailing 4 weeks',
      request: {
        params: OrgParam,
        query: z.strictObject({ days: z.coerce.number().int().min(1).max(30).default(7) }),
      },
      responses: { 200: json(UsageAnomaliesSchema, 'The anomalies'), ...errorResponses },
    }),
    async (c) =>
      c.json(await getUsageAnomalies(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')), 200),
  );
  app.openapi(
    route({
      method: 'get',
      path: '/v1/orgs/{org}/usage/recommendations',
      summary: 'Ways to spend less (cheaper model, prompt caching, limits), ranked by estimated saving',
      request: { params: OrgParam, query: UsageQuery },
      responses: { 200: json(UsageRecommendationsSchema, 'The recommendations'), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await getUsageRecommendations(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')),
        200,
      ),
  );
}
