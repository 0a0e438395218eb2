export interface WorkspaceRow {
  org_id: string;
  id: string;
  external_id: string;
  name: string;
  workspace_group: string | null;
  created_at: Date;
}

export const workspaceView = (row: WorkspaceRow) => ({
  id: row.id,
  object: 'workspace' as const,
  org_id: row.org_id,
  external_id: row.external_id,
  name: row.name,
  workspace_group: row.workspace_group,
  created_at: row.created_at.toISOString(),
});
export type WorkspaceView = ReturnType<typeof workspaceView>;
