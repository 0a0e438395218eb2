/**
 * Raw event retention: the operator's default and each org's own setting. What a purged period
 * still answers is said once, in PURGED, and shown on every route here.
 */
import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import {
  getDefaultRetention,
  getOrgRetention,
  MAX_RETENTION_MONTHS,
  setDefaultRetention,
  setOrgRetention,
} from '../../services/maintenance/retentionSettings.ts';
import type { AppEnv } from '../env.ts';
import { body, errorResponses, json, OrgParam } from '../schemas.ts';

const PURGED = `Raw events older than the retention are deleted by the hourly purge_raw_events job: whole
months of the org's time zone are kept (the current one and the N before it), and never less than the
35 days within which an event id may still be sent again. After a purge every total stays exactly as it
was, because it is read from the rollups written with each event: usage summary, timeseries, breakdowns,
daily and monthly totals, patterns, forecast, anomalies and recommendations, limits and budgets, and
the balance, ledger, holds, payments and invoices. What a purged period no longer shows: its rows in
the events log (usage/events) and the exports, its conversations (and the conversation count of the
usage report PDF), and the itemized lines of usage/days/{date}, which are read from raw events: a
purged day answers no items and zero totals there.`;

const Months = z
  .int()
  .min(1)
  .max(MAX_RETENTION_MONTHS)
  .nullable()
  .openapi({ description: 'Whole months to keep raw events; null keeps them forever', example: 13 });

export const RetentionSettingsSchema = z
  .object({ object: z.literal('retention_settings'), raw_event_months: z.int().nullable() })
  .openapi('RetentionSettings');

export const OrgRetentionSchema = z
  .object({
    object: z.literal('retention'),
    org_id: z.string(),
    raw_event_months: z.int().nullable().openapi({ description: 'In force; null: kept forever' }),
    source: z
      .enum(['org', 'operator_default'])
      .openapi({ description: "The org's own setting, or the operator's default" }),
    purged_before: z
      .string()
      .nullable()
      .openapi({ description: 'No raw event before this instant is kept; null: none purged yet' }),
  })
  .openapi('OrgRetention');

const SetRetention = z.strictObject({ raw_event_months: Months }).openapi('SetRetention');

export function retentionRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/settings/retention',
      tags: ['Retention'],
      summary: 'The default raw event retention (operator)',
      description: PURGED,
      responses: { 200: json(RetentionSettingsSchema, 'Retention default'), ...errorResponses },
    }),
    async (c) => c.json(await getDefaultRetention(c.get('ctx')), 200),
  );
  app.openapi(
    createRoute({
      method: 'put',
      path: '/v1/settings/retention',
      tags: ['Retention'],
      summary:
        'Set the default raw event retention for orgs without their own (operator): older raw events are purged, totals stay',
      description: PURGED,
      request: body(SetRetention),
      responses: { 200: json(RetentionSettingsSchema, 'Retention default'), ...errorResponses },
    }),
    async (c) => c.json(await setDefaultRetention(c.get('ctx'), c.req.valid('json').raw_event_months), 200),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/retention',
      tags: ['Retention'],
      summary: "The org's raw event retention in force, and how far the purge has gone",
      description: PURGED,
      request: { params: OrgParam },
      responses: { 200: json(OrgRetentionSchema, 'Retention'), ...errorResponses },
    }),
    async (c) => c.json(await getOrgRetention(c.get('ctx'), c.req.valid('param').org), 200),
  );
  app.openapi(
    createRoute({
      method: 'put',
      path: '/v1/orgs/{org}/retention',
      tags: ['Retention'],
      summary:
        "Set the org's own raw event retention: older raw events are purged, totals stay (an org key may only keep less than the operator's default)",
      description: PURGED,
      request: { params: OrgParam, ...body(SetRetention) },
      responses: { 200: json(OrgRetentionSchema, 'Retention'), ...errorResponses },
    }),
    async (c) =>
      c.json(await setOrgRetention(c.get('ctx'), c.req.valid('param').org, c.req.valid('json')), 200),
  );
  app.openapi(
    createRoute({
      method: 'delete',
      path: '/v1/orgs/{org}/retention',
      tags: ['Retention'],
      summary: "Drop the org's own retention: it follows the operator's default again",
      description: PURGED,
      request: { params: OrgParam },
      responses: { 200: json(OrgRetentionSchema, 'Retention'), ...errorResponses },
    }),
    async (c) => c.json(await setOrgRetention(c.get('ctx'), c.req.valid('param').org, 'inherit'), 200),
  );
}
