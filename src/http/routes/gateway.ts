/**
 * The metering gateway: `/gateway/openai/v1/...` and `/gateway/anthropic/v1/...` take each
 * provider's own requests from its official SDK. These routes read the raw body themselves and
 * answer every error in the provider's format, so they stay out of the `/v1` JSON middleware.
 */
import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Config } from '../../config.ts';
import { createGatewayKey } from '../../services/gateway/createGatewayKey.ts';
import { deleteGatewayUpstream } from '../../services/gateway/deleteGatewayUpstream.ts';
import { listGatewayKeys } from '../../services/gateway/listGatewayKeys.ts';
import { listGatewayUpstreams } from '../../services/gateway/listGatewayUpstreams.ts';
import { listModels } from '../../services/gateway/listModels.ts';
import { meterCall, providerError, serviceErrorAnswer } from '../../services/gateway/meterCall.ts';
import { openaiWire } from '../../services/gateway/openai.ts';
import { METADATA_HEADER_MAX_BYTES, resolveCaller } from '../../services/gateway/resolveCaller.ts';
import { revokeGatewayKey } from '../../services/gateway/revokeGatewayKey.ts';
import { setGatewayUpstream } from '../../services/gateway/setGatewayUpstream.ts';
import { wireNamed } from '../../services/gateway/wires.ts';
import type { PriceBook } from '../../services/pricing/priceBook.ts';
import type { Db } from '../../store/db.ts';
import { isDatabaseUnavailable } from '../../store/unavailable.ts';
import type { AppEnv } from '../env.ts';
import type { Logger } from '../logger.ts';
import { body, errorResponses, Id, json, ListQuery, OrgParam, pageOf, Text } from '../schemas.ts';

export interface GatewayDeps {
  db: Db;
  config: Config;
  prices: PriceBook;
  logger: Logger;
}

/** The provider named by the path (`/gateway/<provider>/...`), for answers in its format. */
const wireOf = (c: Context) => wireNamed(c.req.path.split('/')[2] ?? '') ?? openaiWire;

export function gatewayRoutes(app: OpenAPIHono<AppEnv>, deps: GatewayDeps) {
  const logError = (c: Context<AppEnv>) => (what: string, error: unknown) =>
    deps.logger.error({
      request_id: c.get('requestId'),
      what,
      error: error instanceof Error ? error.stack : String(error),
    });

  app.use(
    '/gateway/:provider/*',
    bodyLimit({
      maxSize: deps.config.TALLY_BODY_LIMIT_BYTES,
      onError: (c) =>
        providerError(
          wireOf(c),
          'too_large',
          `The request body is larger than ${deps.config.TALLY_BODY_LIMIT_BYTES} bytes`,
        ),
    }),
  );

  documentGatewayPaths(app);
  app.post('/gateway/:provider/v1/*', async (c) => {
    const wire = wireNamed(c.req.param('provider'));
    const prefix = `/gateway/${c.req.param('provider')}/v1/`;
    const path = c.req.path.slice(prefix.length);
    if (!wire?.paths.includes(path)) {
      return providerError(wire ?? openaiWire, 'not_found', `The gateway does not serve POST ${c.req.path}`);
    }
    try {
      const headers = c.req.raw.headers;
      const caller = await resolveCaller(deps.db, wire.clientSecret(headers), headers);
      const ctx = { ...deps, principal: caller.principal, requestId: c.get('requestId') };
      c.set('ctx', ctx);
      const rawBody = await c.req.text();
      return await meterCall(ctx, { wire, path, rawBody, headers, caller }, { error: logError(c) });
    } catch (error) {
      const refusal = serviceErrorAnswer(wire, error);
      if (refusal) return refusal;
      if (isDatabaseUnavailable(error)) {
        return providerError(wire, 'unavailable', 'Tally cannot reach its database; retry shortly');
      }
      logError(c)('gateway call failed', error);
      return providerError(wire, 'internal', 'Something went wrong in the gateway; it has been logged');
    }
  });

  app.get('/gateway/:provider/v1/models', async (c) => {
    const wire = wireNamed(c.req.param('provider'));
    if (!wire) return providerError(openaiWire, 'not_found', `The gateway does not serve GET ${c.req.path}`);
    try {
      const headers = c.req.raw.headers;
      const caller = await resolveCaller(deps.db, wire.clientSecret(headers), headers, { billed: false });
      const ctx = { ...deps, principal: caller.principal, requestId: c.get('requestId') };
      // Authenticated: a 401 the provider answers is not a failed authentication of this client.
      c.set('ctx', ctx);
      return await listModels(ctx, wire, caller, headers);
    } catch (error) {
      const refusal = serviceErrorAnswer(wire, error);
      if (refusal) return refusal;
      logError(c)('gateway model list failed', error);
      return providerError(wire, 'upstream', 'The provider could not be reached');
    }
  });

  app.all('/gateway/*', (c) =>
    providerError(wireOf(c), 'not_found', `The gateway does not serve ${c.req.method} ${c.req.path}`),
  );
}

/** The proxied endpoints in the OpenAPI document: their bodies are the providers' own. */
function documentGatewayPaths(app: OpenAPIHono<AppEnv>) {
  const attribution = z.object({
    'tally-member': z
      .string()
      .max(200)
      .optional()
      .openapi({ description: 'The member billed (required with an org API key)' }),
    'tally-feature': z.string().max(200).optional().openapi({ description: 'The feature billed' }),
    'tally-workspace': z.string().max(200).optional(),
    'tally-project': z.string().max(200).optional(),
    'tally-surface': z
      .string()
      .max(200)
      .optional()
      .openapi({ description: 'web, cli, api, mobile or an integration name (default: none)' }),
    'tally-workspace-group': z.string().max(200).optional(),
    'tally-conversation-id': z.string().max(200).optional(),
    'tally-message-id': z.string().max(200).optional(),
    'tally-parent-id': z.string().max(200).optional(),
    'tally-metadata': z.string().max(METADATA_HEADER_MAX_BYTES).optional().openapi({
      description:
        "The call's event metadata: a JSON object, characters outside ASCII escaped as \\uXXXX (not authorization_id, which is Tally's)",
    }),
  });
  const providerBody = z
    .record(z.string(), z.unknown())
    .openapi({ description: "The provider's own request" });
  const endpoints = [
    [
      '/gateway/openai/v1/chat/completions',
      'OpenAI Chat Completions through the metering gateway',
      'Bearer gateway key or org key',
    ],
    [
      '/gateway/openai/v1/responses',
      'OpenAI Responses API through the metering gateway',
      'Bearer gateway key or org key',
    ],
    [
      '/gateway/openai/v1/embeddings',
      'OpenAI Embeddings through the metering gateway (input tokens only)',
      'Bearer gateway key or org key',
    ],
    [
      '/gateway/anthropic/v1/messages',
      'Anthropic Messages through the metering gateway',
      'x-api-key: gateway key or org key',
    ],
  ] as const;
  for (const [path, summary, auth] of endpoints) {
    app.openAPIRegistry.registerPath({
      method: 'post',
      path,
      tags: ['Gateway'],
      summary,
      description: `Authenticate as the provider SDK does (${auth}). Streamed (SSE) or not; the answer is the provider's, passed through unchanged. Errors are in the provider's format: 402 when Tally refuses the hold, 401 for a bad key, 400 for a malformed request; upstream errors pass through.`,
      request: {
        headers: attribution,
        body: { content: { 'application/json': { schema: providerBody } }, required: true },
      },
      responses: {
        200: { description: "The provider's answer (JSON or text/event-stream)" },
        400: { description: 'Malformed request (provider error format)' },
        401: { description: 'Missing or invalid key (provider error format)' },
        402: { description: 'Hold refused: limit, budget or credits (provider error format)' },
      },
    });
  }
  for (const [provider, auth] of [
    ['openai', 'Bearer gateway key or org key'],
    ['anthropic', 'x-api-key: gateway key or org key'],
  ] as const) {
    app.openAPIRegistry.registerPath({
      method: 'get',
      path: `/gateway/${provider}/v1/models`,
      tags: ['Gateway'],
      summary: "The provider's model list through the gateway (unmetered)",
      description: `Authenticate as the provider SDK does (${auth}). The provider's answer, passed through unchanged; 502 in the provider's format when it cannot be reached.`,
      responses: {
        200: { description: "The provider's model list" },
        401: { description: 'Missing or invalid key (provider error format)' },
        502: { description: 'The provider could not be reached (provider error format)' },
      },
    });
  }
}

const Dimension = Text(200);

export const GatewayKeySchema = z
  .object({
    id: z.string(),
    object: z.literal('gateway_key'),
    org_id: z.string(),
    name: z.string(),
    key_hint: z.string().openapi({ description: 'Last four characters of the secret' }),
    member: z.string().openapi({ description: 'Member billed unless the tally-member header names another' }),
    feature: z
      .string()
      .openapi({ description: 'Feature billed unless the tally-feature header names another' }),
    workspace: z.string().nullable(),
    project: z.string().nullable(),
    created_at: z.string(),
    revoked_at: z.string().nullable(),
  })
  .openapi('GatewayKey');

const CreatedGatewayKey = GatewayKeySchema.extend({
  key: z.string().openapi({ description: 'The secret (tally_vk_...), shown only in this answer' }),
}).openapi('CreatedGatewayKey');

const CreateGatewayKey = z
  .strictObject({
    name: Text(200),
    member: Dimension,
    feature: Dimension,
    workspace: Dimension.nullish(),
    project: Dimension.nullish(),
  })
  .openapi('CreateGatewayKey');

const Provider = z.enum(['openai', 'anthropic']);

const GatewayUpstreamSchema = z
  .object({
    object: z.literal('gateway_upstream'),
    org_id: z.string(),
    provider: Provider,
    base_url: z.string().nullable(),
    key_hint: z.string().openapi({ description: 'Last four characters of the provider key' }),
    updated_at: z.string(),
  })
  .openapi('GatewayUpstream');

const SetGatewayUpstream = z
  .strictObject({
    api_key: z.string().min(1).max(500),
    base_url: z
      .url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
      .max(500)
      .nullish()
      .openapi({ description: 'Operator key only; default the operator-wide upstream' }),
  })
  .openapi('SetGatewayUpstream');

const ProviderParam = OrgParam.extend({
  provider: Provider.openapi({ param: { name: 'provider', in: 'path' } }),
});

/** Managing gateway keys and an org's own upstream, under /v1 with the usual middleware. */
export function gatewaySettingsRoutes(app: OpenAPIHono<AppEnv>) {
  const tags = ['Gateway'];
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/orgs/{org}/gateway_keys',
      tags,
      summary: 'Create a gateway key for model clients (the secret is shown once)',
      request: { params: OrgParam, ...body(CreateGatewayKey) },
      responses: { 201: json(CreatedGatewayKey, 'The key with its secret'), ...errorResponses },
    }),
    async (c) =>
      c.json(await createGatewayKey(c.get('ctx'), c.req.valid('param').org, c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/gateway_keys',
      tags,
      summary: 'List gateway keys (no secrets)',
      request: { params: OrgParam, query: ListQuery },
      responses: { 200: json(pageOf(GatewayKeySchema), 'A page of gateway keys'), ...errorResponses },
    }),
    async (c) =>
      c.json(await listGatewayKeys(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'delete',
      path: '/v1/orgs/{org}/gateway_keys/{key}',
      tags,
      summary: 'Revoke a gateway key',
      request: {
        params: OrgParam.extend({ key: Id('gwk').openapi({ param: { name: 'key', in: 'path' } }) }),
      },
      responses: { 200: json(GatewayKeySchema, 'The revoked key'), ...errorResponses },
    }),
    async (c) => {
      const { org, key } = c.req.valid('param');
      return c.json(await revokeGatewayKey(c.get('ctx'), org, key), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'put',
      path: '/v1/orgs/{org}/gateway/upstreams/{provider}',
      tags,
      summary: "Set the org's own provider key (stored encrypted, never answered in full)",
      request: { params: ProviderParam, ...body(SetGatewayUpstream) },
      responses: { 200: json(GatewayUpstreamSchema, 'The upstream setting'), ...errorResponses },
    }),
    async (c) => {
      const { org, provider } = c.req.valid('param');
      return c.json(await setGatewayUpstream(c.get('ctx'), org, provider, c.req.valid('json')), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/gateway/upstreams',
      tags,
      summary: "The org's own provider settings",
      request: { params: OrgParam },
      responses: { 200: json(pageOf(GatewayUpstreamSchema), 'One row per provider set'), ...errorResponses },
    }),
    async (c) => c.json(await listGatewayUpstreams(c.get('ctx'), c.req.valid('param').org), 200),
  );
  app.openapi(
    createRoute({
      method: 'delete',
      path: '/v1/orgs/{org}/gateway/upstreams/{provider}',
      tags,
      summary: "Forget the org's own provider key (calls use the operator's again)",
      request: { params: ProviderParam },
      responses: {
        200: json(
          z.object({ object: z.literal('gateway_upstream'), provider: Provider, deleted: z.literal(true) }),
          'Deleted',
        ),
        ...errorResponses,
      },
    }),
    async (c) => {
      const { org, provider } = c.req.valid('param');
      return c.json(await deleteGatewayUpstream(c.get('ctx'), org, provider), 200);
    },
  );
}
