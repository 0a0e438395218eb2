import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { publicBase } from '../../config.ts';
import { HOLD_ID_METADATA_KEY } from '../../domain/usageEvent.ts';
import { authorize } from '../../services/authorizations/authorize.ts';
import {
  captureAuthorization,
  voidAuthorization,
} from '../../services/authorizations/finishAuthorization.ts';
import { incrementAuthorization } from '../../services/authorizations/incrementAuthorization.ts';
import { attributionView } from '../../services/authorizations/shape.ts';
import { ServiceError } from '../../services/errors.ts';
import type { AppEnv } from '../env.ts';
import { quotaPageUrl } from '../links.ts';
import { body, errorResponses, Id, json, PositiveDecimal, Text } from '../schemas.ts';
import { Count, Dimension, Metadata, UsageSchema } from './events.ts';

/** The call's event carries the hold's id as `metadata.authorization_id`: a client's own would be lost. */
const HoldMetadata = Metadata.refine((m) => !Object.hasOwn(m, HOLD_ID_METADATA_KEY), {
  path: [HOLD_ID_METADATA_KEY],
  message: "is Tally's: the call's event carries the id of its hold there",
});

const Authorize = z
  .strictObject({
    org_id: z.string().max(64).optional().openapi({ description: 'Only with an operator key' }),
    member: Text(200),
    feature: Text(200),
    provider: Text(100),
    model: Text(200),
    estimate: z.union([
      z.strictObject({ input_tokens: Count, max_output_tokens: Count }),
      z.strictObject({ credits: PositiveDecimal(6) }),
    ]),
    ttl_seconds: z.int().min(5).max(86_400).optional(),
    surface: Dimension.openapi({ description: 'web, cli, api, mobile or an integration name' }),
    workspace: Dimension,
    workspace_group: Dimension,
    project: Dimension,
    conversation_id: Dimension,
    message_id: Dimension,
    parent_id: Dimension,
    metadata: HoldMetadata.optional().openapi({
      description:
        "Recorded on the call's event, with `authorization_id` (the hold's id) added; at most 16 KiB as JSON",
    }),
  })
  .openapi('Authorize');

/** What the hold attributes the call to (null: not given); its event records it, metadata with `authorization_id` added. */
const CallAttributionSchema = z.object({
  surface: z.string().nullable(),
  workspace: z.string().nullable(),
  workspace_group: z.string().nullable(),
  project: z.string().nullable(),
  conversation_id: z.string().nullable(),
  message_id: z.string().nullable(),
  parent_id: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()).nullable(),
});

export const AuthorizationSchema = z
  .object({
    id: z.string().nullable(),
    object: z.literal('authorization'),
    approved: z.boolean(),
    reason: z
      .enum(['insufficient_credits', 'quota_exceeded', 'budget_exceeded', 'byok_untracked', 'partial'])
      .nullable(),
    budget: z.object({ id: z.string(), name: z.string() }).nullable(),
    held_credits: z.string(),
    available_credits: z.string(),
    expires_at: z.string().nullable(),
    ...CallAttributionSchema.shape,
    quota_url: z.string().nullable().openapi({
      description:
        'On a denial: the usage page that explains the block (limit, budget or credits) and offers what the member may do; send the user there',
    }),
  })
  .openapi('Authorization');

export const IncrementSchema = z
  .object({
    object: z.literal('authorization_increment'),
    charged_credits: z.string(),
    total_charged_credits: z.string(),
    unbilled_credits: z.string(),
    held_credits: z.string(),
    action: z.enum(['continue', 'stop']),
  })
  .openapi('AuthorizationIncrement');

export const CaptureSchema = z
  .object({
    object: z.literal('authorization'),
    id: z.string(),
    status: z.literal('captured'),
    credits: z.string(),
    cost: z.string(),
    currency: z.string(),
    event_id: z.string(),
    unbilled_credits: z.string(),
    late: z.boolean().openapi({
      description:
        'The hold had expired and its streamed part was recorded then: event_id records the rest of the call',
    }),
  })
  .openapi('Capture');

const VoidSchema = z
  .object({
    object: z.literal('authorization'),
    id: z.string(),
    status: z.literal('voided'),
    charged_credits: z.string(),
  })
  .openapi('Void');

const AuthParam = z.object({ id: Id('auth').openapi({ param: { name: 'id', in: 'path' } }) });

export function authorizationRoutes(
  app: OpenAPIHono<AppEnv>,
  onDecision: (decision: 'approved' | 'denied', reason: string) => void,
) {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/authorizations',
      tags: ['Holds'],
      summary: 'Hold credits before a model call; a denial is 200 with approved: false and the reason',
      request: body(Authorize),
      responses: { 200: json(AuthorizationSchema, 'Approved or denied'), ...errorResponses },
    }),
    async (c) => {
      const ctx = c.get('ctx');
      const input = c.req.valid('json');
      const result = await authorize(ctx, input);
      onDecision(result.approved ? 'approved' : 'denied', result.reason ?? 'none');
      const orgId = ctx.principal.kind === 'org_key' ? ctx.principal.orgId : input.org_id!;
      const quota =
        result.approved || !result.reason
          ? null
          : quotaPageUrl(
              publicBase(ctx.config, new URL(c.req.url).origin),
              orgId,
              result.reason,
              result.budget?.id,
            );
      // The hold's attribution is echoed here only: the gateway, which holds too, never shows it.
      return c.json({ ...result, ...attributionView(input), quota_url: quota }, 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/authorizations/{id}/increments',
      tags: ['Holds'],
      summary: 'Bill usage streamed so far; answers continue or stop',
      description:
        'Send `usage` (streamed since the previous increment) or `usage_total` (the call so far). Totals are billed only past what the call recorded already, so a retry whose answer was lost bills nothing twice. A `usage` report must carry an `Idempotency-Key` header (400 without one): resent without it, the same step would be billed again.',
      request: {
        params: AuthParam,
        ...body(
          z
            .strictObject({ usage: UsageSchema.optional(), usage_total: UsageSchema.optional() })
            .refine((b) => (b.usage === undefined) !== (b.usage_total === undefined), {
              message: 'send either usage (since the previous increment) or usage_total (the call so far)',
              path: ['usage'],
            })
            .openapi('Increment'),
        ),
      },
      responses: { 200: json(IncrementSchema, 'What was billed'), ...errorResponses },
    }),
    async (c) => {
      const { usage, usage_total } = c.req.valid('json');
      // A step is billed each time it arrives: only the key tells a resend from the next step.
      if (usage && !c.req.header('idempotency-key')) {
        throw new ServiceError(
          400,
          'idempotency_key_required',
          'An increment that sends usage (since the previous increment) needs an Idempotency-Key header, or a resend would bill it twice; send one, or send usage_total (the call so far), which is safe to resend',
          'Idempotency-Key',
        );
      }
      const report = usage_total ? { usage_total } : { usage: usage! };
      return c.json(await incrementAuthorization(c.get('ctx'), c.req.valid('param').id, report), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/authorizations/{id}/capture',
      tags: ['Holds'],
      summary: 'Record the final usage (idempotent) and release the rest of the hold',
      description:
        'Sent again with the same usage (or less, read as the captured usage), it answers the first capture. With more usage or another `event_id` it is refused (409 `authorization_captured`): the first capture stands.',
      request: {
        params: AuthParam,
        ...body(
          z
            .strictObject({
              usage: UsageSchema,
              event_id: z.string().min(1).max(200).optional(),
              error: z.string().min(1).max(200).optional().openapi({
                description:
                  "The call failed: the error's code, recorded as the event's metadata.error (counted in the breakdowns' error rates)",
              }),
            })
            .openapi('CaptureInput'),
        ),
      },
      responses: { 200: json(CaptureSchema, 'The captured call'), ...errorResponses },
    }),
    async (c) =>
      c.json(await captureAuthorization(c.get('ctx'), c.req.valid('param').id, c.req.valid('json')), 200),
  );
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/authorizations/{id}/void',
      tags: ['Holds'],
      summary: 'Release the hold (usage already billed by increments stays billed)',
      request: { params: AuthParam },
      responses: { 200: json(VoidSchema, 'Voided'), ...errorResponses },
    }),
    async (c) => c.json(await voidAuthorization(c.get('ctx'), c.req.valid('param').id), 200),
  );
}
