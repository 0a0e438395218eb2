import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { listAlerts } from '../../services/alerts/listAlerts.ts';
import { ALERT_TYPES } from '../../services/webhooks/eventTypes.ts';
import type { AppEnv } from '../env.ts';
import { errorResponses, json, ListQuery, OrgParam, pageOf } from '../schemas.ts';

export const AlertSchema = z
  .object({
    id: z.string(),
    object: z.literal('alert'),
    org_id: z.string(),
    type: z.enum(ALERT_TYPES),
    scope: z.string().openapi({
      description:
        "'monthly_limit', 'alert_threshold', 'budget:<budget id>', 'plan_allowance', 'credits' or 'webhook_endpoint:<endpoint id>'",
    }),
    threshold_percent: z
      .int()
      .openapi({ description: 'The percentage reached (credits.low: 10; 0 for alerts about no percentage)' }),
    period_start: z.string(),
    details: z.record(z.string(), z.unknown()),
    created_at: z.string(),
  })
  .openapi('Alert');

export function alertRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/alerts',
      tags: ['Alerts and webhooks'],
      summary:
        'Alerts fired for the org (thresholds, quota, credits), newest first; each fires once per period',
      request: { params: OrgParam, query: ListQuery.extend({ type: z.enum(ALERT_TYPES).optional() }) },
      responses: { 200: json(pageOf(AlertSchema), 'A page of alerts'), ...errorResponses },
    }),
    async (c) => c.json(await listAlerts(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')), 200),
  );
}
