/**
 * A call billed through a hold is attributed as an ingested event is: the hold takes its surface,
 * conversation, message, parent and metadata (validated as an event's), and the event its capture,
 * void or expiry records carries them, so the breakdowns by surface, integration and tool and the
 * conversation page count it. However the hold is placed: alone, batched with others, or by the
 * full path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthorizationSchema } from '../src/http/routes/authorizations.ts';
import { expireHolds } from '../src/services/authorizations/expireHolds.ts';
import { forgetAuthorization } from '../src/services/authorizations/shape.ts';
import { checkLedger } from '../src/services/ledger/checkLedger.ts';
import { createOrgWithKey, freshIdempotencyKey, startTally, type TestTally } from './support/harness.ts';
import { holdStatements } from './support/holdStatements.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

const call = { member: 'u1', feature: 'Agent', provider: 'openai', model: 'gpt-4o' };

/** The recorded events' attribution, read from the table (message, parent and metadata are not in the API's log). */
const storedEvents = (orgId: string) =>
  t.db.query<Record<string, unknown>>(
    `SELECT id, surface, workspace_group, conversation_id, message_id, parent_id, metadata, credits::text
       FROM events WHERE org_id = $1 ORDER BY id`,
    [orgId],
  );

async function breakdown(orgId: string, key: string, by: string) {
  const res = await t.call('GET', `/v1/orgs/${orgId}/usage/breakdown?range=1d&by=${by}&limit=50`, { key });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return (res.body.data as { key: string; calls: number; credits: string }[]).map((r) => ({
    key: r.key,
    calls: r.calls,
    credits: r.credits,
  }));
}

async function conversation(orgId: string, key: string, id: string) {
  const res = await t.call('GET', `/v1/orgs/${orgId}/conversations/${id}`, { key });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

describe('a hold attributed as an event is', () => {
  it('answers its attribution and records it on the captured event, counted by surface, tool and conversation', async () => {
    const { org, key } = await createOrgWithKey(t);
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: {
        ...call,
        estimate: { credits: '10' },
        surface: 'cli',
        workspace_group: 'eng',
        conversation_id: 'conv-1',
        message_id: 'msg-2',
        parent_id: 'msg-1',
        metadata: { tool: 'web_search', step: 3 },
      },
    });
    expect(auth.status, JSON.stringify(auth.body)).toBe(200);
    AuthorizationSchema.parse(auth.body);
    expect(auth.body).toMatchObject({
      approved: true,
      surface: 'cli',
      workspace: null,
      workspace_group: 'eng',
      project: null,
      conversation_id: 'conv-1',
      message_id: 'msg-2',
      parent_id: 'msg-1',
      metadata: { tool: 'web_search', step: 3 },
    });
    await t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
      headers: freshIdempotencyKey(),
      key,
      body: { usage: { output_tokens: 1_000 } },
    });
    // As another Tally process would: the hold read back from the database, not the copy kept here.
    forgetAuthorization(auth.body.id);
    const cap = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage: { input_tokens: 1_000, output_tokens: 1_000 }, event_id: 'agent-call-1' },
    });
    expect(cap.body).toMatchObject({ status: 'captured', credits: '1.725', event_id: 'agent-call-1' });

    const log = await t.call('GET', `/v1/orgs/${org.id}/usage/events?range=1d`, { key });
    expect(log.body.data).toHaveLength(1);
    expect(log.body.data[0]).toMatchObject({
      id: 'agent-call-1',
      surface: 'cli',
      workspace_group: 'eng',
      conversation_id: 'conv-1',
      credits: '1.725',
    });
    expect(await storedEvents(org.id)).toEqual([
      {
        id: 'agent-call-1',
        surface: 'cli',
        workspace_group: 'eng',
        conversation_id: 'conv-1',
        message_id: 'msg-2',
        parent_id: 'msg-1',
        // The client's metadata, with the hold's id the call event always carries.
        metadata: { tool: 'web_search', step: 3, authorization_id: auth.body.id },
        credits: '1725000',
      },
    ]);
    const counted = [{ calls: 1, credits: '1.725' }];
    expect(await breakdown(org.id, key, 'surface')).toEqual([{ key: 'cli', ...counted[0] }]);
    expect(await breakdown(org.id, key, 'tool')).toEqual([{ key: 'web_search', ...counted[0] }]);
    expect(await breakdown(org.id, key, 'workspace_group')).toEqual([{ key: 'eng', ...counted[0] }]);
    const summary = await t.call('GET', `/v1/orgs/${org.id}/usage/summary?range=1d&surface=cli`, { key });
    expect(summary.body).toMatchObject({ calls: 1, credits: '1.725' });
    const chat = await conversation(org.id, key, 'conv-1');
    expect(chat).toMatchObject({ messages: 1, credits: '1.725' });
    expect(chat.data.map((m: { message_id: string }) => m.message_id)).toEqual(['msg-2']);
    // The captured call's pricing breakdown: its parts add up to the credits and cost it was billed.
    expect(chat.data[0].cost).toBe('0.01725');
    expect(chat.data[0].components).toEqual([
      { component: 'input', quantity: '1000', credits: '0.345', cost: '0.00345' },
      { component: 'output', quantity: '1000', credits: '1.38', cost: '0.0138' },
    ]);
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it('records it on the event of a hold that expires after streaming, an integration counted as one', async () => {
    const { org, key } = await createOrgWithKey(t);
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: {
        ...call,
        estimate: { credits: '10' },
        surface: 'slack',
        conversation_id: 'conv-2',
        message_id: 'msg-9',
        metadata: { tool: 'code_interpreter' },
      },
    });
    await t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
      headers: freshIdempotencyKey(),
      key,
      body: { usage: { output_tokens: 1_000 } },
    });
    await t.db.query("UPDATE authorizations SET expires_at = now() - interval '1 second' WHERE id = $1", [
      auth.body.id,
    ]);
    const jobs = { ...t, principal: { kind: 'operator' as const, id: 'op_jobs' }, requestId: 'test' };
    expect(await expireHolds(jobs)).toEqual({ expired: 1 });

    expect(await storedEvents(org.id)).toEqual([
      {
        id: auth.body.id,
        surface: 'slack',
        workspace_group: '',
        conversation_id: 'conv-2',
        message_id: 'msg-9',
        parent_id: null,
        metadata: { tool: 'code_interpreter', authorization_id: auth.body.id },
        credits: '1380000',
      },
    ]);
    const counted = { calls: 1, credits: '1.38' };
    expect(await breakdown(org.id, key, 'surface')).toEqual([{ key: 'slack', ...counted }]);
    expect(await breakdown(org.id, key, 'integration')).toEqual([{ key: 'slack', ...counted }]);
    expect(await breakdown(org.id, key, 'tool')).toEqual([{ key: 'code_interpreter', ...counted }]);
    const chat = await conversation(org.id, key, 'conv-2');
    expect(chat).toMatchObject({ messages: 1, credits: '1.38' });
    expect(chat.data[0].message_id).toBe('msg-9');
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it('records it on the event of a hold voided after streaming', async () => {
    const { org, key } = await createOrgWithKey(t);
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '10' }, surface: 'web', conversation_id: 'conv-3' },
    });
    await t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
      headers: freshIdempotencyKey(),
      key,
      body: { usage: { output_tokens: 1_000 } },
    });
    const voided = await t.call('POST', `/v1/authorizations/${auth.body.id}/void`, { key });
    expect(voided.body).toMatchObject({ status: 'voided', charged_credits: '1.38' });
    expect(await storedEvents(org.id)).toEqual([
      {
        id: auth.body.id,
        surface: 'web',
        workspace_group: '',
        conversation_id: 'conv-3',
        message_id: null,
        parent_id: null,
        metadata: { authorization_id: auth.body.id },
        credits: '1380000',
      },
    ]);
  });
});

describe('a hold keeps its attribution however it is placed', () => {
  const storedHolds = (orgId: string) =>
    t.db.query<Record<string, unknown>>(
      'SELECT id, surface, conversation_id, message_id, parent_id, metadata FROM authorizations WHERE org_id = $1',
      [orgId],
    );

  it('batched with other holds of its org in one statement', async () => {
    const { org, key } = await createOrgWithKey(t);
    let answers: { body: { id: string } }[] = [];
    const { statements } = await holdStatements(t.db, async () => {
      answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          t.call('POST', '/v1/authorizations', {
            key,
            body: {
              ...call,
              estimate: { credits: '1' },
              // Every other hold names nothing: a batch mixes both.
              ...(i % 2 === 0
                ? { surface: 'cli', conversation_id: 'conv-b', message_id: `msg-${i}`, metadata: { i } }
                : {}),
            },
          }),
        ),
      );
    });
    expect(statements).toContain('batch');
    const want = answers.map((a, i) =>
      i % 2 === 0
        ? {
            id: a.body.id,
            surface: 'cli',
            conversation_id: 'conv-b',
            message_id: `msg-${i}`,
            parent_id: null,
            metadata: { i },
          }
        : {
            id: a.body.id,
            surface: '',
            conversation_id: null,
            message_id: null,
            parent_id: null,
            metadata: null,
          },
    );
    // Sorted here: the database's collation may order ids otherwise.
    const byId = (a: Record<string, unknown>, b: Record<string, unknown>) =>
      String(a.id) < String(b.id) ? -1 : 1;
    expect((await storedHolds(org.id)).sort(byId)).toEqual(want.sort(byId));
  });

  it('by the full path (a member budget, for a member not known yet)', async () => {
    const { org, key } = await createOrgWithKey(t);
    const member = await t.call('POST', `/v1/orgs/${org.id}/members`, { body: { external_id: 'known' } });
    const budget = await t.call('POST', `/v1/orgs/${org.id}/budgets`, {
      body: { name: 'Known', scope: { kind: 'member', id: member.body.id }, amount: '100', period: 'month' },
    });
    expect(budget.status, JSON.stringify(budget.body)).toBe(201);
    let auth: { status: number; body: { id: string } } | undefined;
    const { statements } = await holdStatements(t.db, async () => {
      auth = await t.call('POST', '/v1/authorizations', {
        key,
        body: {
          ...call,
          member: 'new-member',
          estimate: { credits: '1' },
          surface: 'mobile',
          conversation_id: 'conv-f',
          message_id: 'msg-f',
          parent_id: 'msg-e',
          metadata: { tool: 'vision' },
        },
      });
    });
    expect(auth!.status).toBe(200);
    expect(statements).toEqual([]);
    expect(await storedHolds(org.id)).toEqual([
      {
        id: auth!.body.id,
        surface: 'mobile',
        conversation_id: 'conv-f',
        message_id: 'msg-f',
        parent_id: 'msg-e',
        metadata: { tool: 'vision' },
      },
    ]);
  });
});

describe('a hold with a bad attribution', () => {
  const bad: [string, Record<string, unknown>, number, string, string | RegExp][] = [
    ['a surface too long', { surface: 's'.repeat(201) }, 422, 'invalid_field', 'surface'],
    ['an empty surface', { surface: '' }, 422, 'invalid_field', 'surface'],
    ['a NUL in conversation_id', { conversation_id: 'conv\u0000x' }, 422, 'invalid_field', 'conversation_id'],
    ['a message_id too long', { message_id: 'm'.repeat(201) }, 422, 'invalid_field', 'message_id'],
    ['a parent_id that is not text', { parent_id: 7 }, 422, 'invalid_field', 'parent_id'],
    [
      'metadata nested too deep',
      { metadata: JSON.parse(`${'{"a":'.repeat(40)}1${'}'.repeat(40)}`) },
      422,
      'invalid_field',
      /^metadata(\.a)+$/,
    ],
    ['metadata over 16 KiB', { metadata: { text: 'x'.repeat(17_000) } }, 422, 'invalid_field', 'metadata'],
    ['metadata that is not an object', { metadata: ['tool'] }, 422, 'invalid_field', 'metadata'],
    [
      "metadata naming Tally's authorization_id",
      { metadata: { authorization_id: 'auth_mine' } },
      422,
      'invalid_field',
      'metadata.authorization_id',
    ],
    ['an unknown field', { channel: 'cli' }, 422, 'unknown_field', 'channel'],
    // Dimensions of the rollup key together past its size: the longest is named.
    [
      'dimensions too long together',
      {
        surface: '€'.repeat(200),
        workspace: '€'.repeat(200),
        workspace_group: '€'.repeat(200),
        project: '€'.repeat(100),
      },
      422,
      'invalid_field',
      'surface',
    ],
  ];

  it.each(bad)('is refused with a problem naming the field: %s', async (_, fields, status, code, param) => {
    const { org, key } = await createOrgWithKey(t);
    const res = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '10' }, ...fields },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.body.code).toBe(code);
    expect(res.body.param).toEqual(typeof param === 'string' ? param : expect.stringMatching(param));
    // Nothing written: no hold, nothing held, no member.
    const [written] = await t.db.query<{ holds: number; members: number; held: string | null }>(
      `SELECT (SELECT count(*)::int FROM authorizations WHERE org_id = $1) AS holds,
              (SELECT count(*)::int FROM members WHERE org_id = $1) AS members,
              (SELECT held::text FROM org_balances WHERE org_id = $1) AS held`,
      [org.id],
    );
    expect(written).toMatchObject({ holds: 0, members: 0 });
    expect(written!.held ?? '0').toBe('0');
  });
});
