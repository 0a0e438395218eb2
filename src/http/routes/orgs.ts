import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { createOrg } from '../../services/orgs/createOrg.ts';
import { getOrg } from '../../services/orgs/getOrg.ts';
import { listOrgs } from '../../services/orgs/listOrgs.ts';
import { updateOrg } from '../../services/orgs/updateOrg.ts';
import type { AppEnv } from '../env.ts';
import {
  BillingMode,
  body,
  CalendarDate,
  Currency,
  errorResponses,
  GrantedCredits,
  json,
  ListQuery,
  OptionalText,
  OrgParam,
  PositiveDecimal,
  pageOf,
  Text,
  TimeZone,
} from '../schemas.ts';

export const OrgSchema = z
  .object({
    id: z.string(),
    object: z.literal('org'),
    name: z.string(),
    external_id: z.string().nullable(),
    currency: Currency,
    timezone: z.string(),
    billing_mode: BillingMode,
    credit_value: z.string().openapi({ description: 'Org currency per credit', example: '0.01' }),
    plan_allowance_credits: z.string().openapi({ example: '500' }),
    plan_rollover_max_credits: z.string().openapi({
      description:
        "Unused plan credits carried into the next cycle at most (a bonus grant expiring at that cycle's end); 0: none",
      example: '100',
    }),
    billing_cycle_anchor: z
      .string()
      .openapi({ description: 'Cycles start on this day of the month', example: '2026-11-01' }),
    activity_shows_model: z.boolean().openapi({
      description:
        "The usage page's activity log has a provider/model column for calls billed in credits (the operator's display choice; BYOM and BYOK orgs always see it; the API still returns every call's model)",
    }),
    free_tier: z.boolean().openapi({
      description:
        "On the host's free plan (the operator's to set; by default, an org created without a plan allowance of its own): the usage bar shows its upgrade button at every level of use, not only from 75 %",
    }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi('Org');

const CreditValue = PositiveDecimal(6).refine((v) => /[1-9]/.test(v), 'must be greater than 0');

const CreateOrg = z
  .strictObject({
    name: Text(200),
    currency: Currency,
    timezone: TimeZone,
    billing_mode: BillingMode.optional(),
    external_id: OptionalText(200),
    credit_value: CreditValue.optional(),
    plan_allowance_credits: GrantedCredits.optional(),
    plan_rollover_max_credits: GrantedCredits.optional(),
    billing_cycle_anchor: CalendarDate.optional(),
    activity_shows_model: z.boolean().optional(),
    free_tier: z.boolean().optional(),
  })
  .openapi('CreateOrg');

const ListOrgsQuery = ListQuery.extend({
  q: z.string().max(200).optional().openapi({ description: 'Only orgs whose name contains this, any case' }),
  include: z
    .enum(['month_spend'])
    .optional()
    .openapi({ description: "month_spend: each org's usage this calendar month, in one request" }),
});

const MonthSpendSchema = z
  .object({
    start: z.string(),
    end: z.string(),
    calls: z.int(),
    credits: z.string(),
    cost: z.string().openapi({ description: 'In currency (BYOK orgs track no cost)' }),
    currency: Currency,
  })
  .openapi('MonthSpend', {
    description: "The org's usage this calendar month in its time zone, as the summary's mtd range counts it",
  });

const OrgListItemSchema = OrgSchema.extend({ month_spend: MonthSpendSchema.optional() }).openapi(
  'OrgListItem',
);

const UpdateOrg = CreateOrg.omit({ currency: true }).partial().openapi('UpdateOrg');

export function orgRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/orgs',
      tags: ['Orgs'],
      summary: 'Create an organization (operator)',
      request: body(CreateOrg),
      responses: { 201: json(OrgSchema, 'The new org'), ...errorResponses },
    }),
    async (c) => c.json(await createOrg(c.get('ctx'), c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs',
      tags: ['Orgs'],
      summary:
        'List organizations (an org key sees its own), optionally searched by name and with their spend',
      request: { query: ListOrgsQuery },
      responses: { 200: json(pageOf(OrgListItemSchema), 'A page of orgs'), ...errorResponses },
    }),
    async (c) => c.json(await listOrgs(c.get('ctx'), c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}',
      tags: ['Orgs'],
      summary: 'Get an organization',
      request: { params: OrgParam },
      responses: { 200: json(OrgSchema, 'The org'), ...errorResponses },
    }),
    async (c) => c.json(await getOrg(c.get('ctx'), c.req.valid('param').org), 200),
  );
  app.openapi(
    createRoute({
      method: 'patch',
      path: '/v1/orgs/{org}',
      tags: ['Orgs'],
      summary: 'Change organization settings (billing terms: operator only)',
      request: { params: OrgParam, ...body(UpdateOrg) },
      responses: { 200: json(OrgSchema, 'The org'), ...errorResponses },
    }),
    async (c) => c.json(await updateOrg(c.get('ctx'), c.req.valid('param').org, c.req.valid('json')), 200),
  );
}
