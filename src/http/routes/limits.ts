import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { BUDGET_STATUSES, createBudget, deleteBudget, listBudgets } from '../../services/limits/budgets.ts';
import { getLimits, LIMIT_STATUSES } from '../../services/limits/getLimits.ts';
import { setLimits } from '../../services/limits/setLimits.ts';
import type { AppEnv } from '../env.ts';
import {
  body,
  errorResponses,
  Id,
  json,
  ListQuery,
  OrgParam,
  PositiveDecimal,
  pageOf,
  Text,
} from '../schemas.ts';

const Money = PositiveDecimal(6);

export const LimitsSchema = z
  .object({
    object: z.literal('limits'),
    org_id: z.string(),
    currency: z.string(),
    basis: z.enum(['credits', 'provider_cost']),
    period: z.object({ kind: z.literal('calendar_month'), start: z.string(), end: z.string() }),
    alert_threshold: z.string().nullable(),
    allowed_limit: z.string().nullable(),
    spent: z.string(),
    held: z.string(),
    status: z.enum(LIMIT_STATUSES),
  })
  .openapi('Limits');

const ScopeKind = z.enum(['member', 'workspace', 'workspace_group', 'project', 'api_key']);

export const BudgetSchema = z
  .object({
    id: z.string(),
    object: z.literal('budget'),
    org_id: z.string(),
    name: z.string(),
    scope: z.object({
      kind: ScopeKind,
      id: z.string(),
      label: z.string().openapi({
        description:
          'How the pages name the scope: a member as usage names them (name, else email, else the host app user id; "Unknown user" once removed), any other scope by its id',
      }),
    }),
    period: z.enum(['month', 'cycle']),
    amount: z.string(),
    enforcement: z.enum(['hard', 'soft']),
    created_at: z.string(),
    current_period: z
      .object({
        start: z.string(),
        end: z.string(),
        spent: z.string(),
        held: z.string(),
        remaining: z.string().openapi({ description: 'The amount less what is spent and held, at least 0' }),
        status: z.enum(BUDGET_STATUSES).openapi({
          description:
            'warning from 75 % of the amount spent, caution from 90 %, critical from 95 %, exceeded from 100 %',
        }),
      })
      .openapi({
        description:
          "What was spent and held against the budget in its current period, in the org's currency",
      }),
  })
  .openapi('Budget');

const SetLimits = z
  .strictObject({ alert_threshold: Money.nullable(), allowed_limit: Money.nullable() })
  .openapi('SetLimits');

const CreateBudget = z
  .strictObject({
    name: Text(200),
    scope: z.strictObject({
      kind: ScopeKind,
      id: Text(200).openapi({
        description:
          "A member's Tally id (mem_...) or the host app's user id (external_id), stored as the Tally id; an API key id; or the host app's workspace, workspace group or project name",
      }),
    }),
    period: z.enum(['month', 'cycle']).default('month'),
    amount: Money,
    enforcement: z.enum(['hard', 'soft']).default('hard'),
  })
  .openapi('CreateBudget');

export function limitRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/limits',
      tags: ['Limits'],
      summary: "Monthly alert threshold and allowed limit with this month's spend",
      request: { params: OrgParam },
      responses: { 200: json(LimitsSchema, 'Limits'), ...errorResponses },
    }),
    async (c) => c.json(await getLimits(c.get('ctx'), c.req.valid('param').org), 200),
  );
  app.openapi(
    createRoute({
      method: 'put',
      path: '/v1/orgs/{org}/limits',
      tags: ['Limits'],
      summary: 'Set the monthly alert threshold and allowed limit (threshold <= limit)',
      request: { params: OrgParam, ...body(SetLimits) },
      responses: { 200: json(LimitsSchema, 'Limits'), ...errorResponses },
    }),
    async (c) => c.json(await setLimits(c.get('ctx'), c.req.valid('param').org, c.req.valid('json')), 200),
  );
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/orgs/{org}/budgets',
      tags: ['Limits'],
      summary: 'Create a budget for a member, workspace, workspace group, project or API key',
      request: { params: OrgParam, ...body(CreateBudget) },
      responses: { 201: json(BudgetSchema, 'The budget'), ...errorResponses },
    }),
    async (c) => c.json(await createBudget(c.get('ctx'), c.req.valid('param').org, c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/budgets',
      tags: ['Limits'],
      summary: 'List budgets',
      request: { params: OrgParam, query: ListQuery },
      responses: { 200: json(pageOf(BudgetSchema), 'A page of budgets'), ...errorResponses },
    }),
    async (c) => c.json(await listBudgets(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'delete',
      path: '/v1/orgs/{org}/budgets/{budget}',
      tags: ['Limits'],
      summary: 'Delete a budget',
      request: {
        params: OrgParam.extend({ budget: Id('bud').openapi({ param: { name: 'budget', in: 'path' } }) }),
      },
      responses: { 200: json(BudgetSchema, 'The deleted budget'), ...errorResponses },
    }),
    async (c) => {
      const { org, budget } = c.req.valid('param');
      return c.json(await deleteBudget(c.get('ctx'), org, budget), 200);
    },
  );
}
