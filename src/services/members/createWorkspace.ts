import { newId } from '../../domain/ids.ts';
import { audit, type Ctx, scopeOrg } from '../context.ts';
import { loadOrg } from '../orgs/shape.ts';
import { type WorkspaceRow, type WorkspaceView, workspaceView } from './workspaceShape.ts';

export interface CreateWorkspaceInput {
  external_id: string;
  name: string;
  workspace_group?: string | null;
}

/** Creates a workspace, or renames it and moves it to another group when it already exists. */
export async function createWorkspace(
  ctx: Ctx,
  orgId: string,
  input: CreateWorkspaceInput,
): Promise<WorkspaceView> {
  scopeOrg(ctx, orgId, 'members:write');
  return ctx.db.transaction(async (tx) => {
    await loadOrg(tx, orgId);
    const [row] = await tx.query<WorkspaceRow>(
      `INSERT INTO workspaces (org_id, id, external_id, name, workspace_group) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (org_id, external_id) DO UPDATE SET name = EXCLUDED.name, workspace_group = EXCLUDED.workspace_group
       RETURNING org_id, id, external_id, name, workspace_group, created_at`,
      [orgId, newId('ws'), input.external_id, input.name, input.workspace_group ?? null],
    );
    await audit(tx, ctx, orgId, 'workspace.saved', row!.id, { external_id: input.external_id });
    return workspaceView(row!);
  });
}
