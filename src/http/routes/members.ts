import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { createMember } from '../../services/members/createMember.ts';
import { createWorkspace } from '../../services/members/createWorkspace.ts';
import { eraseMember } from '../../services/members/eraseMember.ts';
import { listMembers } from '../../services/members/listMembers.ts';
import { listWorkspaces } from '../../services/members/listWorkspaces.ts';
import { removeMember } from '../../services/members/removeMember.ts';
import { updateMember } from '../../services/members/updateMember.ts';
import type { AppEnv } from '../env.ts';
import {
  body,
  errorResponses,
  Id,
  json,
  ListQuery,
  OptionalText,
  OrgParam,
  pageOf,
  Role,
  Text,
} from '../schemas.ts';

export const MemberSchema = z
  .object({
    id: z.string(),
    object: z.literal('member'),
    org_id: z.string(),
    external_id: z.string().nullable(),
    name: z.string().nullable(),
    email: z.string().nullable(),
    role: Role,
    status: z.enum(['active', 'removed']),
    erased: z.boolean(),
    created_at: z.string(),
    removed_at: z.string().nullable(),
  })
  .openapi('Member');

export const WorkspaceSchema = z
  .object({
    id: z.string(),
    object: z.literal('workspace'),
    org_id: z.string(),
    external_id: z.string(),
    name: z.string(),
    workspace_group: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi('Workspace');

const Email = z.email().max(254).nullish();
const CreateMember = z
  .strictObject({ external_id: Text(200), name: OptionalText(200), email: Email, role: Role.optional() })
  .openapi('CreateMember');
const UpdateMember = z
  .strictObject({ name: OptionalText(200), email: Email, role: Role.optional() })
  .openapi('UpdateMember');
const CreateWorkspace = z
  .strictObject({ external_id: Text(200), name: Text(200), workspace_group: OptionalText(200) })
  .openapi('CreateWorkspace');

const MemberParams = OrgParam.extend({
  member: Id('mem').openapi({ param: { name: 'member', in: 'path' } }),
});
const MemberQuery = ListQuery.extend({ status: z.enum(['active', 'removed']).optional() });

export function memberRoutes(app: OpenAPIHono<AppEnv>) {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/orgs/{org}/members',
      tags: ['Members'],
      summary: 'Add a member, known by the host app user id',
      request: { params: OrgParam, ...body(CreateMember) },
      responses: { 201: json(MemberSchema, 'The member'), ...errorResponses },
    }),
    async (c) => c.json(await createMember(c.get('ctx'), c.req.valid('param').org, c.req.valid('json')), 201),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/members',
      tags: ['Members'],
      summary: 'List members',
      request: { params: OrgParam, query: MemberQuery },
      responses: { 200: json(pageOf(MemberSchema), 'A page of members'), ...errorResponses },
    }),
    async (c) => c.json(await listMembers(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')), 200),
  );
  app.openapi(
    createRoute({
      method: 'patch',
      path: '/v1/orgs/{org}/members/{member}',
      tags: ['Members'],
      summary: 'Change a member',
      request: { params: MemberParams, ...body(UpdateMember) },
      responses: { 200: json(MemberSchema, 'The member'), ...errorResponses },
    }),
    async (c) => {
      const { org, member } = c.req.valid('param');
      return c.json(await updateMember(c.get('ctx'), org, member, c.req.valid('json')), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'delete',
      path: '/v1/orgs/{org}/members/{member}',
      tags: ['Members'],
      summary: 'Remove a member (usage stays, shown as "Unknown user")',
      request: { params: MemberParams },
      responses: { 200: json(MemberSchema, 'The removed member'), ...errorResponses },
    }),
    async (c) => {
      const { org, member } = c.req.valid('param');
      return c.json(await removeMember(c.get('ctx'), org, member), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/orgs/{org}/members/{member}/erase',
      tags: ['Members'],
      summary: 'Erase personal data of a member (amounts stay)',
      request: { params: MemberParams },
      responses: { 200: json(MemberSchema, 'The erased member'), ...errorResponses },
    }),
    async (c) => {
      const { org, member } = c.req.valid('param');
      return c.json(await eraseMember(c.get('ctx'), org, member), 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/orgs/{org}/workspaces',
      tags: ['Members'],
      summary: 'Create or rename a workspace',
      request: { params: OrgParam, ...body(CreateWorkspace) },
      responses: { 200: json(WorkspaceSchema, 'The workspace'), ...errorResponses },
    }),
    async (c) =>
      c.json(await createWorkspace(c.get('ctx'), c.req.valid('param').org, c.req.valid('json')), 200),
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/orgs/{org}/workspaces',
      tags: ['Members'],
      summary: 'List workspaces',
      request: { params: OrgParam, query: ListQuery },
      responses: { 200: json(pageOf(WorkspaceSchema), 'A page of workspaces'), ...errorResponses },
    }),
    async (c) =>
      c.json(await listWorkspaces(c.get('ctx'), c.req.valid('param').org, c.req.valid('query')), 200),
  );
}
