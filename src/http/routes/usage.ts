/** Usage out: summary, time series, breakdowns, the events log, daily and monthly totals. */
import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { FIRST_YEAR, isCalendarDate, LAST_YEAR } from '../../domain/calendar.ts';
import { GRANULARITIES, RANGES } from '../../domain/ranges.ts';
import { LIMIT_STATUSES } from '../../services/limits/getLimits.ts';
import { getDailyUsage } from '../../services/usage/getDailyUsage.ts';
import { getMonthlyUsage } from '../../services/usage/getMonthlyUsage.ts';
import { getUsageBreakdown } from '../../services/usage/getUsageBreakdown.ts';
import { getUsageSummary } from '../../services/usage/getUsageSummary.ts';
import { getUsageTimeseries } from '../../services/usage/getUsageTimeseries.ts';
import { listUsageEvents } from '../../services/usage/listUsageEvents.ts';
import { DIMENSIONS } from '../../services/usage/scope.ts';
import type { AppEnv } from '../env.ts';
import { errorResponses, json, OrgParam, Text, usageShape } from '../schemas.ts';

export const Amount = z.string().openapi({ example: '125.5' });
export const Count = z.int().nonnegative();

export const Filters = {
  member: Text(200).optional().openapi({ description: "Member id (mem_...) or the host app's user id" }),
  feature: Text(200).optional(),
  model: Text(200).optional().openapi({ description: 'Model name, or provider/model' }),
  provider: Text(200).optional(),
  workspace: Text(200).optional(),
  workspace_group: Text(200).optional(),
  surface: Text(200).optional().openapi({ description: 'web, cli, api, mobile or an integration name' }),
  project: Text(200).optional(),
  api_key: Text(200).optional(),
  integration: Text(200)
    .optional()
    .openapi({ description: 'An integration: the surface of calls not made on web, cli, api or mobile' }),
  tool: Text(200).optional().openapi({ description: 'A tool, as events name it in metadata.tool' }),
};
const Range = {
  range: z
    .enum(RANGES)
    .optional()
    .openapi({ description: 'Default 30d (custom when from/to are given); buckets in the org time zone' }),
  from: z.string().max(40).optional().openapi({ description: 'range=custom: YYYY-MM-DD or RFC 3339 time' }),
  to: z
    .string()
    .max(40)
    .optional()
    .openapi({ description: 'range=custom: YYYY-MM-DD (included) or RFC 3339 time (excluded)' }),
  granularity: z.enum(GRANULARITIES).optional(),
};
export const UsageQuery = z.strictObject({ ...Range, ...Filters });
export const Cursor = z.string().max(512).optional();

export const RangeSchema = z
  .object({
    name: z.enum(RANGES),
    start: z.string(),
    end: z.string(),
    previous_start: z.string(),
    previous_end: z.string(),
  })
  .openapi('UsageRange');
export const Tokens = z
  .object({ input: Count, output: Count, cache_read: Count, cache_write: Count, total: Count })
  .openapi('TokenCounts');
export const Unit = z.enum(['credits', 'usd', 'tokens']).openapi({
  description: 'What the org pays in: credits; USD provider cost (BYOM); tokens only (BYOK)',
});
const Figures = {
  credits: Amount,
  cost: Amount,
  provider_cost_usd: Amount.nullable().openapi({ description: 'Operator keys only' }),
  calls: Count,
  tokens: Tokens,
};
export const Total = z.object({
  credits: Amount,
  cost: Amount,
  provider_cost_usd: Amount.nullable(),
  calls: Count,
});

export const UsageSummarySchema = z
  .object({
    object: z.literal('usage_summary'),
    org_id: z.string(),
    range: RangeSchema,
    billing_mode: z.enum(['credits', 'byom', 'byok']),
    unit: Unit,
    currency: z.string(),
    ...Figures,
    active_members: Count,
    failed_calls: Count.openapi({ description: 'Calls of the range whose metadata.error says they failed' }),
    error_rate: z.string().openapi({ description: 'failed_calls as a percentage of calls, to a tenth' }),
    features: Count,
    model_tiers: Count,
    previous: z.object(Figures),
    trend: z.object({
      direction: z.enum(['up', 'down', 'flat', 'new']),
      percent: z.int().nullable(),
      label: z.string().openapi({ example: '+12%' }),
    }),
  })
  .openapi('UsageSummary');

export const UsageTimeseriesSchema = z
  .object({
    object: z.literal('usage_timeseries'),
    org_id: z.string(),
    range: RangeSchema,
    granularity: z.enum(GRANULARITIES),
    timezone: z.string(),
    cumulative: z.boolean(),
    split: z.enum(DIMENSIONS).nullable(),
    unit: Unit,
    currency: z.string(),
    series: z.array(z.object({ key: z.string(), label: z.string() })),
    total: Total,
    data: z.array(
      z.object({
        start: z.string(),
        end: z.string(),
        ...Figures,
        groups: z
          .array(z.object({ key: z.string(), credits: Amount, cost: Amount, calls: Count }))
          .optional(),
      }),
    ),
  })
  .openapi('UsageTimeseries');

export const UsageBreakdownSchema = z
  .object({
    object: z.literal('usage_breakdown'),
    org_id: z.string(),
    by: z.enum(DIMENSIONS),
    range: RangeSchema,
    unit: Unit,
    currency: z.string(),
    groups: Count.openapi({ description: 'How many rows exist in all ("Show all (N)")' }),
    total: Total,
    data: z.array(
      z.object({
        key: z.string(),
        label: z.string(),
        provider: z.string().optional(),
        email: z.string().nullable().optional(),
        ...Figures,
        share: z.string().openapi({ description: 'Fraction of the total, 4 decimals; rows add up to 1' }),
        failed_calls: Count.openapi({
          description:
            "Calls of the group that failed: their metadata.error names the error (a non-empty string) or is true; counted as they stand now, at most the group's calls",
        }),
        error_rate: z.string().openapi({ description: 'failed_calls as a percentage of calls, to a tenth' }),
        top_error: z
          .string()
          .nullable()
          .openapi({ description: "The error the group's failed calls gave most ('error' for error: true)" }),
      }),
    ),
    has_more: z.boolean(),
    next_cursor: z.string().nullable(),
  })
  .openapi('UsageBreakdown');

/** Every quantity an event recorded, as sent; a kind it did not count is left out. */
const RecordedUsage = z.object(usageShape(Count)).openapi('RecordedUsage', {
  description:
    'Every quantity the event recorded (tokens by kind, images, seconds, requests, web searches); zero counts are left out',
});

/** A member on a usage row: always labelled ("Unknown user" once removed), details only while active. */
export const UsageMember = z.object({
  id: z.string().nullable(),
  label: z.string(),
  name: z.string().nullable(),
  email: z.string().nullable(),
  external_id: z.string().nullable(),
  removed: z.boolean(),
});

export const UsageEventSchema = z
  .object({
    id: z.string(),
    object: z.literal('usage_event'),
    occurred_at: z.string(),
    member: UsageMember,
    feature: z.string(),
    provider: z.string(),
    model: z.string(),
    surface: z.string().nullable(),
    surface_label: z.string().nullable().openapi({
      description: "The surface's name on the usage pages: Web, CLI, API, Mobile, or an integration as sent",
    }),
    workspace: z.string().nullable(),
    workspace_group: z.string().nullable(),
    project: z.string().nullable(),
    api_key_id: z.string().nullable(),
    conversation_id: z.string().nullable(),
    error: z.string().nullable().openapi({
      description:
        "A failed call's error (its metadata.error: the code, or 'error' for true); null when it succeeded",
    }),
    tokens: Tokens,
    usage: RecordedUsage,
    credits: Amount,
    cost: Amount,
    currency: z.string(),
    provider_cost_usd: Amount.nullable(),
  })
  .openapi('UsageEventRecord');

export const UsageEventsPageSchema = z
  .object({
    data: z.array(UsageEventSchema),
    has_more: z.boolean(),
    next_cursor: z.string().nullable(),
    range: RangeSchema,
    unit: Unit,
  })
  .openapi('UsageEventsPage');

const DayFigures = z.object({ ...Total.shape, tokens: Tokens });
export const UsageDailySchema = z
  .object({
    object: z.literal('usage_daily'),
    org_id: z.string(),
    month: z.string(),
    timezone: z.string(),
    unit: Unit,
    currency: z.string(),
    total: Total,
    data: z.array(z.object({ date: z.string(), start: z.string(), end: z.string(), ...DayFigures.shape })),
  })
  .openapi('UsageDaily');

const MonthLimit = z
  .object({
    alert_threshold: z.string().nullable(),
    allowed_limit: z.string().nullable(),
    spent: z
      .string()
      .openapi({ description: "The month's spend on the limits' basis, in the limits' currency" }),
    used_percent: z
      .string()
      .nullable()
      .openapi({ description: 'spent as a percentage of allowed_limit, to a tenth' }),
    status: z.enum(LIMIT_STATUSES),
  })
  .nullable()
  .openapi('MonthLimit', {
    description:
      "The org's monthly limits in force at the month's end (now, in the current month) against its spend; null when none were set, for months to come and in a filtered view",
  });

export const UsageMonthlySchema = z
  .object({
    object: z.literal('usage_monthly'),
    org_id: z.string(),
    year: z.int(),
    timezone: z.string(),
    unit: Unit,
    currency: z.string(),
    total: Total,
    previous_year_total: Total,
    data: z.array(
      z.object({
        month: z.string(),
        ...Total.shape,
        limit: MonthLimit,
        previous_year: z.object({ month: z.string(), ...Total.shape }),
      }),
    ),
  })
  .openapi('UsageMonthly');

const route = <R extends Parameters<typeof createRoute>[0]>(r: R) => createRoute({ tags: ['Usage'], ...r });

export function usageRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(
    route({
      method: 'get',
      path: '/v1/orgs/{org}/usage/summary',
      summary: 'Credits, cost, calls, active members, features, model tiers, tokens and the trend',
      request: { params: OrgParam, query: UsageQuery },
      responses: { 200: json(UsageSummarySchema, 'The usage summary'), ...errorResponses },
    }),
    async (c) =>
      c.json(await getUsageSummary(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')), 200),
  );
  app.openapi(
    route({
      method: 'get',
      path: '/v1/orgs/{org}/usage/timeseries',
      summary: 'Usage per hour, day or week in the org time zone, optionally split and cumulative',
      request: {
        params: OrgParam,
        query: UsageQuery.extend({
          split: z.enum(DIMENSIONS).optional(),
          split_limit: z.coerce.number().int().min(1).max(50).default(10),
          cumulative: z.enum(['true', 'false']).default('false'),
        }),
      },
      responses: { 200: json(UsageTimeseriesSchema, 'The time series'), ...errorResponses },
    }),
    async (c) => {
      const query = c.req.valid('query');
      return c.json(
        await getUsageTimeseries(c.get('ctx'), c.req.valid('param').org, {
          ...query,
          cumulative: query.cumulative === 'true',
        }),
        200,
      );
    },
  );
  app.openapi(
    route({
      method: 'get',
      path: '/v1/orgs/{org}/usage/breakdown',
      summary:
        'Usage by feature, member, model, provider, workspace, group, surface, project, key, integration or tool',
      request: {
        params: OrgParam,
        query: UsageQuery.extend({
          by: z.enum(DIMENSIONS).default('feature'),
          limit: z.coerce.number().int().min(1).max(500).default(5),
          // It carries a row's key (up to 200 characters of any script) and what the first page pinned.
          cursor: z.string().max(2048).optional(),
        }),
      },
      responses: { 200: json(UsageBreakdownSchema, 'A page of ranked rows'), ...errorResponses },
    }),
    async (c) =>
      c.json(await getUsageBreakdown(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')), 200),
  );
  app.openapi(
    route({
      method: 'get',
      path: '/v1/orgs/{org}/usage/events',
      summary: 'The activity log, newest first, keyset-paginated',
      request: {
        params: OrgParam,
        query: UsageQuery.extend({
          limit: z.coerce.number().int().min(1).max(500).default(50),
          cursor: Cursor,
        }),
      },
      responses: { 200: json(UsageEventsPageSchema, 'A page of events'), ...errorResponses },
    }),
    async (c) =>
      c.json(await listUsageEvents(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')), 200),
  );
  app.openapi(
    route({
      method: 'get',
      path: '/v1/orgs/{org}/usage/daily',
      summary: 'Daily totals of one month in the org time zone',
      request: {
        params: OrgParam,
        query: z.strictObject({
          month: z
            .string()
            .regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'must be a month as YYYY-MM')
            .refine(
              (month) => isCalendarDate(`${month}-01`),
              `must be a month in the years ${FIRST_YEAR} to ${LAST_YEAR}`,
            )
            .optional(),
          ...Filters,
        }),
      },
      responses: { 200: json(UsageDailySchema, 'Daily totals'), ...errorResponses },
    }),
    async (c) =>
      c.json(await getDailyUsage(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')), 200),
  );
  app.openapi(
    route({
      method: 'get',
      path: '/v1/orgs/{org}/usage/monthly',
      summary: 'Month-by-month totals of a year with the year before beside them',
      request: {
        params: OrgParam,
        query: z.strictObject({ year: z.coerce.number().int().min(2000).max(2200).optional(), ...Filters }),
      },
      responses: { 200: json(UsageMonthlySchema, 'Monthly totals'), ...errorResponses },
    }),
    async (c) =>
      c.json(await getMonthlyUsage(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')), 200),
  );
}
