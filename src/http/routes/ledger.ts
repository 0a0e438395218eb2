import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { createGrant } from '../../services/ledger/createGrant.ts';
import { getBalance } from '../../services/ledger/getBalance.ts';
import { listGrants } from '../../services/ledger/listGrants.ts';
import { listLedger } from '../../services/ledger/listLedger.ts';
import { voidGrant } from '../../services/ledger/voidGrant.ts';
import type { AppEnv } from '../env.ts';
import {
  body,
  errorResponses,
  GrantedCredits,
  Id,
  json,
  ListQuery,
  OptionalText,
  OrgParam,
  pageOf,
  Timestamp,
} from '../schemas.ts';

const Credits = z.string().openapi({ example: '125.5' });
const KindFigures = z.object({ granted_credits: Credits, used_credits: Credits, remaining_credits: Credits });

export const BalanceSchema = z
  .object({
    object: z.literal('balance'),
    org_id: z.string(),
    billing_mode: z.enum(['credits', 'byom', 'byok']),
    tracking: z.enum(['available', 'unavailable']),
    notice: z.string().nullable(),
    unit: z.enum(['credits', 'usd']),
    currency: z.string(),
    available_credits: Credits,
    available_amount: z.string(),
    held_credits: Credits,
    overage_credits: Credits,
    overage_amount: z.string(),
    granted_credits: Credits,
    consumed_credits: Credits,
    expired_credits: Credits,
    remaining_credits: Credits,
    by_kind: z.record(z.string(), KindFigures),
    monthly: KindFigures,
    bonus: KindFigures,
    cycle: z.object({
      start: z.string(),
      end: z.string(),
      days_elapsed: z.int().openapi({ description: "Local days of the cycle so far, today's included" }),
      days_remaining: z
        .int()
        .openapi({ description: 'Local days of the cycle after today: with days_elapsed, all its days' }),
      spent_credits: Credits,
      average_per_day_credits: Credits,
      run_out_in_days: z.int().nullable(),
      run_out_by: z.enum(['credits', 'allowed_limit', 'spend_cap']).nullable().openapi({
        description:
          "What runs out first at this cycle's daily average: the credits, the month's allowed limit (a credits org, when reached before the month ends) or a BYOM org's spend cap",
      }),
      runs_out_before_cycle_end: z.boolean(),
    }),
  })
  .openapi('Balance');

export const GrantSchema = z
  .object({
    id: z.string(),
    object: z.literal('grant'),
    org_id: z.string(),
    kind: z.enum(['plan', 'bonus', 'topup', 'promo', 'adjustment']),
    source: z.string(),
    amount_credits: Credits,
    consumed_credits: Credits,
    expired_credits: Credits,
    remaining_credits: Credits,
    status: z.enum(['active', 'expired', 'voided']),
    effective_at: z.string(),
    expires_at: z.string().nullable(),
    reason: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi('Grant');

const LedgerEntrySchema = z
  .object({
    id: z.string(),
    object: z.literal('ledger_entry'),
    kind: z.enum(['grant', 'debit', 'overage', 'settlement', 'expiry', 'void', 'hold', 'hold_release']),
    grant_id: z.string().nullable(),
    amount_credits: Credits,
    event_id: z.string().nullable(),
    authorization_id: z.string().nullable(),
    memo: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi('LedgerEntry');

const CreateGrant = z
  .strictObject({
    kind: z
      .enum(['bonus', 'topup', 'promo', 'adjustment'])
      .openapi({ description: 'Plan grants are issued by Tally each cycle' }),
    amount_credits: GrantedCredits,
    expires_at: Timestamp.nullish(),
    reason: OptionalText(500),
    source: z.enum(['operator', 'referral', 'promotion']).optional(),
  })
  .openapi('CreateGrant');

const GrantParams = OrgParam.extend({ grant: Id('grt').openapi({ param: { name: 'grant', in: 'path' } }) });

export function ledgerRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/balance',
      tags: ['Balance and ledger'],
      summary:
        'Available, held and overage credits; monthly vs bonus; the billing cycle and run-out projection',
      request: { params: OrgParam },
      responses: { 200: json(BalanceSchema, 'The balance'), ...errorResponses },
    }),
    async (c) => c.json(await getBalance(c.get('ctx'), c.req.valid('param').org), 200),
  );
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/orgs/{org}/grants',
      tags: ['Balance and ledger'],
      summary: 'Grant credits (operator)',
      request: { params: OrgParam, ...body(CreateGrant) },
      responses: { 201: json(GrantSchema, 'The grant'), ...errorResponses },
    }),
    async (c) => c.json(await createGrant(c.get('ctx'), c.req.valid('param').org, c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/grants',
      tags: ['Balance and ledger'],
      summary: 'List grants, newest first',
      request: {
        params: OrgParam,
        query: ListQuery.extend({ status: z.enum(['active', 'expired', 'voided']).optional() }),
      },
      responses: { 200: json(pageOf(GrantSchema), 'A page of grants'), ...errorResponses },
    }),
    async (c) => c.json(await listGrants(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/orgs/{org}/grants/{grant}/void',
      tags: ['Balance and ledger'],
      summary: 'Void what is left of a grant, or take part of it back (operator)',
      request: {
        params: GrantParams,
        ...body(
          z
            .strictObject({
              reason: OptionalText(500),
              amount_credits: GrantedCredits.nullish().openapi({
                description:
                  'Take back only this much of what is left; the grant stays active. Omitted: all of it.',
              }),
            })
            .openapi('VoidGrant'),
        ),
      },
      responses: { 200: json(GrantSchema, 'The grant, voided or reduced'), ...errorResponses },
    }),
    async (c) => {
      const { org, grant } = c.req.valid('param');
      return c.json(await voidGrant(c.get('ctx'), org, grant, c.req.valid('json')), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/ledger',
      tags: ['Balance and ledger'],
      summary: 'Ledger entries, newest first (filter by grant or event to trace funding)',
      request: {
        params: OrgParam,
        query: ListQuery.extend({
          grant: z.string().max(64).optional(),
          event: z.string().max(200).optional(),
        }),
      },
      responses: { 200: json(pageOf(LedgerEntrySchema), 'A page of entries'), ...errorResponses },
    }),
    async (c) => c.json(await listLedger(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')), 200),
  );
}
