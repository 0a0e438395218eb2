/** A gateway key: a secret a model client uses as its provider key, billed to one member and feature. */
import { hashSecret } from '../../domain/ids.ts';
import { audit, type Ctx, scopeOrg } from '../context.ts';
import { loadOrg } from '../orgs/shape.ts';
import {
  GATEWAY_KEY_COLUMNS,
  type GatewayKeyRow,
  type GatewayKeyView,
  gatewayKeyView,
  newGatewayKeyId,
  newGatewayKeySecret,
} from './shape.ts';

export interface CreateGatewayKeyInput {
  name: string;
  member: string;
  feature: string;
  workspace?: string | null;
  project?: string | null;
}

/** The secret is in this answer only; Tally keeps its SHA-256 hash and the last four characters. */
export async function createGatewayKey(
  ctx: Ctx,
  orgId: string,
  input: CreateGatewayKeyInput,
): Promise<GatewayKeyView & { key: string }> {
  scopeOrg(ctx, orgId, 'keys:write');
  const secret = newGatewayKeySecret();
  return ctx.db.transaction(async (tx) => {
    await loadOrg(tx, orgId);
    const [row] = await tx.query<GatewayKeyRow>(
      `INSERT INTO gateway_keys (org_id, id, name, key_hash, key_hint, member, feature, workspace, project, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${GATEWAY_KEY_COLUMNS}`,
      [
        orgId,
        newGatewayKeyId(),
        input.name,
        hashSecret(secret),
        secret.slice(-4),
        input.member,
        input.feature,
        input.workspace ?? null,
        input.project ?? null,
        ctx.principal.id,
      ],
    );
    await audit(tx, ctx, orgId, 'gateway_key.created', row!.id, {
      member: input.member,
      feature: input.feature,
    });
    return { ...gatewayKeyView(row!), key: secret };
  });
}
