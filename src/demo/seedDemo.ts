/**
 * Loads the demo organization on a fresh install, through the same verbs the API uses, so the demo
 * shows exactly what real usage would. Runs once: an existing demo org (found by its external id)
 * is left alone.
 */
import type { Tally } from '../server.ts';
import type { Ctx } from '../services/context.ts';
import { ServiceError } from '../services/errors.ts';
import { ingestEvents } from '../services/events/ingestEvents.ts';
import { createMember } from '../services/members/createMember.ts';
import { createWorkspace } from '../services/members/createWorkspace.ts';
import { removeMember } from '../services/members/removeMember.ts';
import { createOrg } from '../services/orgs/createOrg.ts';
import { DEMO_EXTERNAL_ID } from './demoOrg.ts';
import { type DemoOptions, generateDemo } from './generateDemo.ts';

/** The API's own ceiling for one request. */
const BATCH_SIZE = 1000;

export type SeedResult = { orgId: string; created: boolean; events: number };

async function findDemoOrg(tally: Tally): Promise<string | null> {
  const [row] = await tally.db.query<{ id: string }>('SELECT id FROM orgs WHERE external_id = $1', [
    DEMO_EXTERNAL_ID,
  ]);
  return row?.id ?? null;
}

export async function seedDemo(tally: Tally, options: Partial<DemoOptions> = {}): Promise<SeedResult | null> {
  if (tally.config.TALLY_DEMO === '0') return null;
  const existing = await findDemoOrg(tally);
  if (existing) return { orgId: existing, created: false, events: 0 };

  const ctx: Ctx = {
    db: tally.db,
    config: tally.config,
    prices: tally.prices,
    principal: { kind: 'operator', id: 'op_demo' },
    requestId: 'demo-seed',
  };
  const demo = generateDemo({ ...options, now: options.now ?? new Date() });

  let orgId: string;
  try {
    orgId = (await createOrg(ctx, demo.org)).id;
  } catch (error) {
    // Another Tally process sharing this database created it first.
    if (error instanceof ServiceError && error.status === 409) {
      const winner = await findDemoOrg(tally);
      if (winner) return { orgId: winner, created: false, events: 0 };
    }
    throw error;
  }

  const memberIds = new Map<string, string>();
  for (const member of demo.members) {
    const { removed: _removed, ...input } = member;
    memberIds.set(member.external_id, (await createMember(ctx, orgId, input)).id);
  }
  for (const workspace of demo.workspaces) await createWorkspace(ctx, orgId, workspace);

  for (let start = 0; start < demo.events.length; start += BATCH_SIZE) {
    const batch = demo.events.slice(start, start + BATCH_SIZE).map((e) => ({ ...e, org_id: orgId }));
    // History older than the 35-day late-event window is only accepted from a trusted loader.
    const results = await ingestEvents(ctx, batch, { backfill: true });
    const refused = results.find((r) => r.status !== 'accepted');
    if (refused) {
      throw new Error(`Demo event ${refused.id} was not accepted: ${JSON.stringify(refused)}`);
    }
  }

  // Removed last, so their past usage is already on file (shown as "Unknown user").
  for (const member of demo.members) {
    if (member.removed) await removeMember(ctx, orgId, memberIds.get(member.external_id)!);
  }
  return { orgId, created: true, events: demo.events.length };
}
