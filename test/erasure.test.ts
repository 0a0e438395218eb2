/**
 * Erasure beyond the tables test/dataProtection.test.ts fingerprints: the stored answers of
 * Idempotency-Key requests are redacted at once (not 24 hours later), for the org's keys and the
 * operator's, without touching another org's; the webhook delivery log and what a receiver got
 * never held the personal data (payloads name budgets and members by their Tally ids).
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { deliverWebhooks } from '../src/services/webhooks/deliverWebhooks.ts';
import { createOrgWithKey, minutesAgo, startTally, type TestTally } from './support/harness.ts';

const PERSONAL = { external_id: 'nora-ext-5521', name: 'Nora Nameful', email: 'nora@nameful.example' };

let t: TestTally;
let receiver: Server;
let receiverUrl = '';
const received: string[] = [];

beforeAll(async () => {
  t = await startTally();
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      received.push(body);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const address = receiver.address();
  receiverUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hook`;
});
afterAll(async () => {
  await new Promise((resolve) => receiver?.close(resolve));
  await t?.close();
});

const storedAnswers = async () =>
  (
    await t.db.query<{ principal: string; key: string; text: string }>(
      `SELECT principal, key, response #>> '{}' AS text FROM idempotency_keys ORDER BY principal, key`,
    )
  ).map((r) => `${r.key}: ${r.text}`);

it('redacts the stored Idempotency-Key answers naming the member, and only those', async () => {
  const { org, key } = await createOrgWithKey(t, { name: 'Erasing Org' });
  const other = await createOrgWithKey(t, { name: 'Other Org' });
  const path = `/v1/orgs/${org.id}`;
  const created = await t.call('POST', `${path}/members`, {
    key,
    body: PERSONAL,
    headers: { 'idempotency-key': 'create-nora' },
  });
  expect(created.status).toBe(201);
  const memberId = created.body.id as string;
  // The operator renames her, with a key of its own; the other org has a member of the same name.
  const renamed = await t.call('PATCH', `${path}/members/${memberId}`, {
    body: { name: `${PERSONAL.name} Jr.` },
    headers: { 'idempotency-key': 'rename-nora' },
  });
  expect(renamed.status).toBe(200);
  const twin = await t.call('POST', `/v1/orgs/${other.org.id}/members`, {
    key: other.key,
    body: { ...PERSONAL },
    headers: { 'idempotency-key': 'create-twin' },
  });
  expect(twin.status).toBe(201);
  const unrelated = await t.call('POST', `${path}/members`, {
    key,
    body: { external_id: 'someone-else', name: 'Someone Else' },
    headers: { 'idempotency-key': 'create-else' },
  });
  expect(unrelated.status).toBe(201);
  const answers = await storedAnswers();
  expect(answers.filter((a) => a.includes(PERSONAL.email))).toHaveLength(3);

  const erased = await t.call('POST', `${path}/members/${memberId}/erase`, { key });
  expect(erased.status, JSON.stringify(erased.body)).toBe(200);

  const after = await storedAnswers();
  const ours = after.filter((a) => !a.startsWith('create-twin'));
  for (const s of Object.values(PERSONAL)) {
    expect(ours.filter((a) => a.includes(s))).toEqual([]);
  }
  // The other org's member and this org's other member are untouched, byte for byte.
  expect(after.find((a) => a.startsWith('create-twin'))).toBe(
    answers.find((a) => a.startsWith('create-twin')),
  );
  expect(after.find((a) => a.startsWith('create-else'))).toBe(
    answers.find((a) => a.startsWith('create-else')),
  );

  // A replay answers as stored, now showing the member erased.
  const replay = await t.call('POST', `${path}/members`, {
    key,
    body: PERSONAL,
    headers: { 'idempotency-key': 'create-nora' },
  });
  expect(replay.status).toBe(201);
  expect(replay.headers.get('idempotent-replayed')).toBe('true');
  expect(replay.body).toMatchObject({ id: memberId, name: null, email: null, external_id: null });
  const rename = await t.call('PATCH', `${path}/members/${memberId}`, {
    body: { name: `${PERSONAL.name} Jr.` },
    headers: { 'idempotency-key': 'rename-nora' },
  });
  expect(rename.body).toMatchObject({ id: memberId, name: null, email: null, external_id: null });
  // The audit record says how many answers were redacted, and names no one.
  const [auditRow] = await t.db.query<{ data: { redacted_answers: number } }>(
    "SELECT data FROM audit_log WHERE org_id = $1 AND action = 'member.erased'",
    [org.id],
  );
  expect(auditRow!.data.redacted_answers).toBe(2);
});

it('keeps the webhook delivery log free of the personal data, before and after erasure', async () => {
  const { org, key } = await createOrgWithKey(t, { name: 'Webhook Org' });
  const path = `/v1/orgs/${org.id}`;
  const endpoint = await t.call('POST', `${path}/webhook_endpoints`, { body: { url: receiverUrl } });
  expect(endpoint.status).toBe(201);
  const member = await t.call('POST', `${path}/members`, { key, body: PERSONAL });
  // A tiny budget: the usage below crosses its thresholds, and the alerts go out as webhooks.
  await t.call('POST', `${path}/budgets`, {
    key,
    body: { name: 'Tiny', scope: { kind: 'member', id: member.body.id }, amount: '0.01' },
  });
  const ingest = await t.call('POST', '/v1/events', {
    key,
    body: {
      events: Array.from({ length: 5 }, (_, i) => ({
        id: `wh-${i}`,
        member: PERSONAL.external_id,
        feature: 'Chat',
        provider: 'openai',
        model: 'gpt-4o',
        occurred_at: minutesAgo(10 - i),
        usage: { input_tokens: 5000, output_tokens: 500 },
      })),
    },
  });
  expect(ingest.status).toBe(200);
  await deliverWebhooks(t.db, { budgetMs: 5_000, allowPrivateAddresses: true });
  const log = async () =>
    JSON.stringify(
      (await t.call('GET', `${path}/webhook_endpoints/${endpoint.body.id}/deliveries?limit=100`)).body,
    );
  const before = await log();
  // The budget alerts were delivered (they name the budget, the member by its Tally id at most).
  expect(received.join('\n')).toContain('alert.threshold_crossed');
  expect(before).toContain('alert.threshold_crossed');
  for (const s of Object.values(PERSONAL)) {
    expect(received.join('\n')).not.toContain(s);
    expect(before).not.toContain(s);
  }
  await t.call('POST', `${path}/members/${member.body.id}/erase`, { key });
  const afterErase = await log();
  for (const s of Object.values(PERSONAL)) expect(afterErase).not.toContain(s);
});

it('bills a call captured after its member was erased to the erased member, without bringing the member back', async () => {
  const { org, key } = await createOrgWithKey(t, { name: 'Erased Mid-call Org' });
  const path = `/v1/orgs/${org.id}`;
  const member = await t.call('POST', `${path}/members`, { key, body: { external_id: 'gone-mid-call' } });
  expect(member.status).toBe(201);
  const hold = await t.call('POST', '/v1/authorizations', {
    key,
    body: {
      member: 'gone-mid-call',
      feature: 'Chat',
      provider: 'openai',
      model: 'gpt-4o',
      estimate: { input_tokens: 1_000, max_output_tokens: 1_000 },
    },
  });
  expect(hold.body.approved).toBe(true);
  expect((await t.call('POST', `${path}/members/${member.body.id}/erase`, { key })).status).toBe(200);

  const capture = await t.call('POST', `/v1/authorizations/${hold.body.id}/capture`, {
    key,
    body: { usage: { input_tokens: 1_000, output_tokens: 500 } },
  });
  expect(capture.status, JSON.stringify(capture.body)).toBe(200);
  const billedTo = await t.db.query<{ member_id: string }>(
    'SELECT member_id FROM events WHERE org_id = $1 AND id = $2',
    [org.id, capture.body.event_id],
  );
  expect(billedTo).toEqual([{ member_id: member.body.id }]);
  const revived = await t.db.query('SELECT id FROM members WHERE org_id = $1 AND external_id = $2', [
    org.id,
    'gone-mid-call',
  ]);
  expect(revived).toEqual([]);
});

it("redacts answers stored for a member's embed tokens, and keeps each token's replays to its own role", async () => {
  const { org, key } = await createOrgWithKey(t);
  await t.call('POST', `/v1/orgs/${org.id}/members`, { key, body: { external_id: 'boss', name: 'Boss' } });
  const tokenFor = async (role: string) =>
    (await t.call('POST', `/v1/orgs/${org.id}/embed_tokens`, { key, body: { member: 'boss', role } })).body
      .token as string;
  const [owner, viewer] = [await tokenFor('owner'), await tokenFor('viewer')];
  const ada = { external_id: 'u_ada', name: 'Ada Lovelace', email: 'ada@example.com' };
  const send = (token: string) =>
    t.call('POST', `/v1/orgs/${org.id}/members`, {
      key: token,
      body: ada,
      headers: { 'idempotency-key': 'k1' },
    });
  const created = await send(owner);
  expect(created.status).toBe(201);
  // The same member's viewer token is not answered with what the owner's was allowed.
  const byViewer = await send(viewer);
  expect(byViewer.status).toBe(403);
  expect(byViewer.headers.get('idempotent-replayed')).toBeNull();
  const erased = await t.call('POST', `/v1/orgs/${org.id}/members/${created.body.id}/erase`, { key });
  expect(erased.status).toBe(200);
  const replay = await send(owner);
  expect(replay.headers.get('idempotent-replayed')).toBe('true');
  expect(JSON.stringify(replay.body)).not.toMatch(/Ada Lovelace|ada@example\.com/);
});

it("erases what the member's calls carried (titles, file names, their personal strings) and keeps every amount", async () => {
  const { org, key } = await createOrgWithKey(t, { name: 'Metadata Org' });
  const path = `/v1/orgs/${org.id}`;
  const member = await t.call('POST', `${path}/members`, { key, body: PERSONAL });
  const metadata = {
    conversation_title: 'Tax return questions',
    files: [{ id: 'f1', name: 'passport-scan.pdf', size_bytes: 2048, extracted_tokens: 300 }],
    tool: 'web_search',
    note: `asked by ${PERSONAL.email}`,
    input_tokens: { message: 700, context: 300 },
  };
  const call = (id: string, who: string) => ({
    id,
    member: who,
    feature: 'Chat',
    provider: 'openai',
    model: 'gpt-4o',
    occurred_at: minutesAgo(5),
    conversation_id: `conv-${id}`,
    usage: { input_tokens: 1000, output_tokens: 200 },
    metadata,
  });
  const events = [call('hers', PERSONAL.external_id), call('theirs', 'someone-else')];
  expect((await t.call('POST', '/v1/events', { key, body: { events } })).status).toBe(200);
  const summary = async () => (await t.call('GET', `${path}/usage/summary?range=1d`, { key })).body;
  const totalsBefore = await summary();

  expect((await t.call('POST', `${path}/members/${member.body.id}/erase`, { key })).status).toBe(200);

  const stored = async (id: string) =>
    (
      await t.db.query<{ metadata: unknown }>('SELECT metadata FROM events WHERE org_id = $1 AND id = $2', [
        org.id,
        id,
      ])
    )[0]!.metadata;
  expect(await stored('hers')).toEqual({
    conversation_title: '[erased]',
    files: [{ id: 'f1', name: '[erased]', size_bytes: 2048, extracted_tokens: 300 }],
    tool: 'web_search',
    note: 'asked by [erased]',
    input_tokens: { message: 700, context: 300 },
  });
  expect(await stored('theirs')).toEqual(metadata);
  const conversation = await t.call('GET', `${path}/conversations/conv-hers`, { key });
  expect(conversation.body.title).toBe('[erased]');
  expect(JSON.stringify(conversation.body)).not.toMatch(/passport-scan|Tax return|nora@/);
  expect(await summary()).toEqual(totalsBefore);
  // The event's fingerprint is kept: the host app resending it is told it is a duplicate.
  const again = await t.call('POST', '/v1/events', { key, body: { events: [events[0]] } });
  expect(again.body.results[0].status).toBe('duplicate');
  const [auditRow] = await t.db.query<{ data: { events_erased: number } }>(
    "SELECT data FROM audit_log WHERE org_id = $1 AND action = 'member.erased'",
    [org.id],
  );
  expect(auditRow!.data.events_erased).toBe(1);
});
