/**
 * Embedding: the host app mints embed tokens for its users; the web app asks who its credential
 * stands for (operator, org key or embed token) to decide what to offer.
 */
import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { PERMISSIONS, type Permission } from '../../domain/permissions.ts';
import { permissionsOf } from '../../services/context.ts';
import {
  createEmbedToken,
  EMBED_TTL_DEFAULT_SECONDS,
  EMBED_TTL_MAX_SECONDS,
} from '../../services/embedTokens/createEmbedToken.ts';
import type { AppEnv } from '../env.ts';
import { body, errorResponses, json, OrgParam, Role, Text } from '../schemas.ts';

const CreateEmbedToken = z
  .strictObject({
    member: Text(200).openapi({ description: "The member's id (mem_...) or the host app's user id" }),
    role: Role.openapi({
      description: 'What the page may do for this member (a viewer sees no buy buttons)',
    }),
    ttl_seconds: z
      .int()
      .min(1)
      .max(EMBED_TTL_MAX_SECONDS)
      .optional()
      .openapi({ description: `Lifetime, default ${EMBED_TTL_DEFAULT_SECONDS} s` }),
  })
  .openapi('CreateEmbedToken');

const EmbedTokenSchema = z
  .object({
    object: z.literal('embed_token'),
    token: z.string().openapi({ description: 'Send as "Authorization: Bearer <token>"' }),
    url: z.string().openapi({ description: 'The usage page, opened with this token (for an iframe)' }),
    expires_at: z.string(),
    member: z.string(),
    role: Role,
  })
  .openapi('EmbedToken');

const SessionSchema = z
  .object({
    object: z.literal('session'),
    kind: z.enum(['operator', 'org_key', 'embed']),
    org_id: z.string().nullable(),
    role: Role.nullable(),
    member_id: z.string().nullable(),
    permissions: z.array(z.enum(Object.keys(PERMISSIONS) as [Permission, ...Permission[]])),
    expires_at: z.string().nullable().openapi({
      description: 'When an embed token stops working (the host app mints a new one); null for keys',
    }),
  })
  .openapi('Session');

export function embedTokenRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/orgs/{org}/embed_tokens',
      tags: ['Embedding'],
      summary: 'Mint a short-lived token that opens the usage page for one member and role',
      description:
        'Needs embed:create. The token is signed, not stored; it stops working when it expires or the member is removed.',
      request: { params: OrgParam, ...body(CreateEmbedToken) },
      responses: { 201: json(EmbedTokenSchema, 'The token and the page URL'), ...errorResponses },
    }),
    async (c) =>
      c.json(
        await createEmbedToken(
          c.get('ctx'),
          c.req.valid('param').org,
          c.req.valid('json'),
          new URL(c.req.url).origin,
        ),
        201,
      ),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/session',
      tags: ['Embedding'],
      summary: 'Who the credential stands for, and what it may do',
      responses: { 200: json(SessionSchema, 'The session'), ...errorResponses },
    }),
    (c) => {
      const principal = c.get('ctx').principal;
      const scoped = principal.kind !== 'operator';
      return c.json(
        {
          object: 'session' as const,
          kind: principal.kind,
          org_id: scoped ? principal.orgId : null,
          role: scoped ? principal.role : null,
          member_id: principal.kind === 'embed' ? principal.memberId : null,
          permissions: [...permissionsOf(principal)],
          expires_at: principal.kind === 'embed' ? principal.expiresAt.toISOString() : null,
        },
        200,
      );
    },
  );
}
