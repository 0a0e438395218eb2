import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { createWebhookEndpoint } from '../../services/webhooks/createWebhookEndpoint.ts';
import { deleteWebhookEndpoint } from '../../services/webhooks/deleteWebhookEndpoint.ts';
import { WEBHOOK_EVENT_TYPES } from '../../services/webhooks/eventTypes.ts';
import { listWebhookDeliveries } from '../../services/webhooks/listWebhookDeliveries.ts';
import { listWebhookEndpoints } from '../../services/webhooks/listWebhookEndpoints.ts';
import { replayWebhookDelivery } from '../../services/webhooks/replayWebhookDelivery.ts';
import { updateWebhookEndpoint } from '../../services/webhooks/updateWebhookEndpoint.ts';
import type { AppEnv } from '../env.ts';
import { body, errorResponses, Id, json, ListQuery, OptionalText, OrgParam, pageOf } from '../schemas.ts';

const EventType = z.enum(WEBHOOK_EVENT_TYPES);

export const WebhookEndpointSchema = z
  .object({
    id: z.string(),
    object: z.literal('webhook_endpoint'),
    org_id: z.string().nullable().openapi({ description: 'null: an operator-wide endpoint (every org)' }),
    url: z.string(),
    description: z.string().nullable(),
    event_types: z.array(EventType).openapi({ description: 'Empty: every event type' }),
    disabled: z.boolean().openapi({
      description: 'Nothing is sent while true; new messages still get a delivery, sent once it is enabled',
    }),
    disabled_at: z.string().nullable(),
    disabled_reason: z.enum(['failing', 'manual']).nullable().openapi({
      description:
        'failing: every attempt failed for TALLY_WEBHOOK_DISABLE_AFTER_DAYS (default 5) since the last success; manual: disabled with PATCH',
    }),
    failing_since: z.string().nullable().openapi({
      description: 'The first failed attempt since the last success; null while the last attempt succeeded',
    }),
    created_at: z.string(),
  })
  .openapi('WebhookEndpoint');

export const CreatedWebhookEndpointSchema = WebhookEndpointSchema.extend({
  secret: z.string().openapi({
    description: 'The Standard Webhooks signing secret (whsec_...), shown only in this answer',
  }),
}).openapi('CreatedWebhookEndpoint');

export const WebhookDeliverySchema = z
  .object({
    id: z.string(),
    object: z.literal('webhook_delivery'),
    org_id: z.string(),
    endpoint_id: z.string(),
    message_id: z.string().openapi({ description: 'Sent as the webhook-id header' }),
    event_type: EventType,
    status: z.enum(['pending', 'succeeded', 'failed']),
    attempts: z.int(),
    next_attempt_at: z
      .string()
      .nullable()
      .openapi({ description: 'null unless pending; null too while its endpoint is disabled' }),
    last_attempt_at: z.string().nullable(),
    last_status_code: z.int().nullable(),
    last_error: z.string().nullable(),
    delivered_at: z.string().nullable(),
    created_at: z.string(),
    payload: z
      .record(z.string(), z.unknown())
      .openapi({ description: 'The body sent: {type, timestamp, data}' }),
  })
  .openapi('WebhookDelivery');

const CreateWebhookEndpoint = z
  .strictObject({
    url: z
      .url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
      .max(2048)
      .openapi({
        example: 'https://example.com/hooks/tally',
        description:
          'Public addresses only: a non-public IP host (loopback, private, link-local, ...), localhost, a name that does not resolve or one resolving to any non-public address is refused (422); a name is checked again at each delivery (unless TALLY_WEBHOOK_ALLOW_PRIVATE=1)',
      }),
    description: OptionalText(500),
    event_types: z
      .array(EventType)
      .max(WEBHOOK_EVENT_TYPES.length)
      .optional()
      .openapi({ description: 'Only these types; empty or absent: every type' }),
  })
  .openapi('CreateWebhookEndpoint');

const UpdateWebhookEndpoint = CreateWebhookEndpoint.partial()
  .extend({
    disabled: z.boolean().optional().openapi({
      description:
        'true: send nothing (new messages wait); false: enable it, sending its pending deliveries now, in order',
    }),
  })
  .openapi('UpdateWebhookEndpoint');

const EndpointParam = z.object({
  endpoint: Id('we').openapi({ param: { name: 'endpoint', in: 'path' } }),
});
const DeliveryParam = EndpointParam.extend({
  delivery: Id('dlv').openapi({ param: { name: 'delivery', in: 'path' } }),
});
const DeliveryQuery = ListQuery.extend({ status: z.enum(['pending', 'succeeded', 'failed']).optional() });

const TAGS = ['Alerts and webhooks'];

export function webhookRoutes(app: OpenAPIHono<AppEnv>) {
  // Each route exists twice: for one org's endpoints and for the operator-wide ones (owner null).
  const owners = [
    { base: '/v1/orgs/{org}/webhook_endpoints', params: OrgParam, who: "the org's", operator: false },
    { base: '/v1/webhook_endpoints', params: z.object({}), who: 'operator-wide (every org)', operator: true },
  ] as const;
  for (const o of owners) {
    const ownerOf = (param: object) => (o.operator ? null : (param as { org: string }).org);
    app.openapi(
      createRoute({
        method: 'post',
        path: o.base,
        tags: TAGS,
        summary: `Register a webhook endpoint, ${o.who}; the signing secret is shown once`,
        request: { params: o.params, ...body(CreateWebhookEndpoint) },
        responses: {
          201: json(CreatedWebhookEndpointSchema, 'The endpoint and its secret'),
          ...errorResponses,
        },
      }),
      async (c) =>
        c.json(
          await createWebhookEndpoint(c.get('ctx'), ownerOf(c.req.valid('param')), c.req.valid('json')),
          201,
        ),
    );
    app.openapi(
      createRoute({
        method: 'get',
        path: o.base,
        tags: TAGS,
        summary: `List webhook endpoints, ${o.who} (no secrets)`,
        request: { params: o.params, query: ListQuery },
        responses: { 200: json(pageOf(WebhookEndpointSchema), 'A page of endpoints'), ...errorResponses },
      }),
      async (c) =>
        c.json(
          await listWebhookEndpoints(c.get('ctx'), ownerOf(c.req.valid('param')), c.req.valid('query')),
          200,
        ),
    );
    app.openapi(
      createRoute({
        method: 'patch',
        path: `${o.base}/{endpoint}`,
        tags: TAGS,
        summary: `Change a webhook endpoint, ${o.who}: disable or enable it, its url, description or event types`,
        request: { params: o.params.extend(EndpointParam.shape), ...body(UpdateWebhookEndpoint) },
        responses: { 200: json(WebhookEndpointSchema, 'The endpoint'), ...errorResponses },
      }),
      async (c) => {
        const param = c.req.valid('param');
        return c.json(
          await updateWebhookEndpoint(c.get('ctx'), ownerOf(param), param.endpoint, c.req.valid('json')),
          200,
        );
      },
    );
    app.openapi(
      createRoute({
        method: 'delete',
        path: `${o.base}/{endpoint}`,
        tags: TAGS,
        summary: `Delete a webhook endpoint, ${o.who}; its pending deliveries are dropped`,
        request: { params: o.params.extend(EndpointParam.shape) },
        responses: { 200: json(WebhookEndpointSchema, 'The deleted endpoint'), ...errorResponses },
      }),
      async (c) => {
        const param = c.req.valid('param');
        return c.json(await deleteWebhookEndpoint(c.get('ctx'), ownerOf(param), param.endpoint), 200);
      },
    );
    app.openapi(
      createRoute({
        method: 'get',
        path: `${o.base}/{endpoint}/deliveries`,
        tags: TAGS,
        summary: `Delivery log of a webhook endpoint, ${o.who}, newest first`,
        request: { params: o.params.extend(EndpointParam.shape), query: DeliveryQuery },
        responses: { 200: json(pageOf(WebhookDeliverySchema), 'A page of deliveries'), ...errorResponses },
      }),
      async (c) => {
        const param = c.req.valid('param');
        return c.json(
          await listWebhookDeliveries(c.get('ctx'), ownerOf(param), param.endpoint, c.req.valid('query')),
          200,
        );
      },
    );
    app.openapi(
      createRoute({
        method: 'post',
        path: `${o.base}/{endpoint}/deliveries/{delivery}/replay`,
        tags: TAGS,
        summary: `Send a delivery again now, ${o.who}`,
        request: { params: o.params.extend(DeliveryParam.shape) },
        responses: { 202: json(WebhookDeliverySchema, 'The delivery, pending again'), ...errorResponses },
      }),
      async (c) => {
        const param = c.req.valid('param');
        return c.json(
          await replayWebhookDelivery(c.get('ctx'), ownerOf(param), param.endpoint, param.delivery),
          202,
        );
      },
    );
  }
}
