import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { createApiKey } from '../../services/keys/createApiKey.ts';
import { listApiKeys } from '../../services/keys/listApiKeys.ts';
import { revokeApiKey } from '../../services/keys/revokeApiKey.ts';
import type { AppEnv } from '../env.ts';
import {
  body,
  errorResponses,
  Id,
  json,
  ListQuery,
  OrgParam,
  pageOf,
  Role,
  Text,
  Timestamp,
} from '../schemas.ts';

export const ApiKeySchema = z
  .object({
    id: z.string(),
    object: z.literal('api_key'),
    org_id: z.string(),
    name: z.string(),
    role: Role,
    key_hint: z.string().openapi({ description: 'Last four characters of the secret' }),
    created_at: z.string(),
    expires_at: z.string().nullable(),
    revoked_at: z.string().nullable(),
  })
  .openapi('ApiKey');

const CreatedApiKey = ApiKeySchema.extend({
  key: z.string().openapi({ description: 'The secret, shown only in this answer' }),
}).openapi('CreatedApiKey');

const CreateApiKey = z
  .strictObject({ name: Text(200), role: Role.optional(), expires_at: Timestamp.nullish() })
  .openapi('CreateApiKey');

export function keyRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/orgs/{org}/api_keys',
      tags: ['API keys'],
      summary: 'Create an org API key (the secret is shown once)',
      request: { params: OrgParam, ...body(CreateApiKey) },
      responses: { 201: json(CreatedApiKey, 'The key with its secret'), ...errorResponses },
    }),
    async (c) => c.json(await createApiKey(c.get('ctx'), c.req.valid('param').org, c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/api_keys',
      tags: ['API keys'],
      summary: 'List API keys (no secrets)',
      request: { params: OrgParam, query: ListQuery },
      responses: { 200: json(pageOf(ApiKeySchema), 'A page of keys'), ...errorResponses },
    }),
    async (c) => c.json(await listApiKeys(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'delete',
      path: '/v1/orgs/{org}/api_keys/{key}',
      tags: ['API keys'],
      summary: 'Revoke an API key',
      request: {
        params: OrgParam.extend({ key: Id('key').openapi({ param: { name: 'key', in: 'path' } }) }),
      },
      responses: { 200: json(ApiKeySchema, 'The revoked key'), ...errorResponses },
    }),
    async (c) => {
      const { org, key } = c.req.valid('param');
      return c.json(await revokeApiKey(c.get('ctx'), org, key), 200);
    },
  );
}
