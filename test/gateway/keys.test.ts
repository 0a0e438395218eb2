/**
 * Gateway keys (a provider key for model clients that bills one org, member and feature) and an
 * org's own upstream (BYOK): stored encrypted, never answered in full, used for its calls only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeProviders, startFakeProviders } from '../support/fakeProviders.ts';
import {
  anthropicClient,
  type GatewayFixture,
  gatewayOrg,
  lastEvent,
  openaiClient,
  startGateway,
  UPSTREAM_OPENAI_KEY,
} from './fixture.ts';

let g: GatewayFixture;
let own: FakeProviders;

beforeAll(async () => {
  g = await startGateway();
  own = await startFakeProviders();
});
afterAll(async () => {
  await own.close();
  await g.close();
});

const prompt = [{ role: 'user' as const, content: 'Hello' }];

describe('gateway keys', () => {
  it('bill the key default member and feature, overridable per request, and stop working when revoked', async () => {
    const { org, key } = await gatewayOrg(g);
    const created = await g.tally.call('POST', `/v1/orgs/${org.id}/gateway_keys`, {
      key,
      body: { name: 'support bot', member: 'bot_1', feature: 'support', workspace: 'ws_help' },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ object: 'gateway_key', member: 'bot_1', feature: 'support' });
    const secret = created.body.key as string;
    expect(secret).toMatch(/^tally_vk_/);
    expect(created.body.key_hint).toBe(secret.slice(-4));

    await anthropicClient(g, secret).messages.create({
      model: 'claude-haiku-4-5',
      max_tokens: 100,
      messages: prompt,
    });
    expect(await lastEvent(g, org.id)).toMatchObject({
      member: { external_id: 'bot_1' },
      feature: 'support',
      workspace: 'ws_help',
      api_key_id: created.body.id,
    });

    await openaiClient(g, secret, {
      'tally-member': 'user_9',
      'tally-project': 'faq',
    }).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: prompt,
    });
    expect(await lastEvent(g, org.id)).toMatchObject({
      member: { external_id: 'user_9' },
      feature: 'support',
      project: 'faq',
    });

    const list = await g.tally.call('GET', `/v1/orgs/${org.id}/gateway_keys`, { key });
    expect(list.body.data.map((k: { id: string }) => k.id)).toEqual([created.body.id]);
    expect(JSON.stringify(list.body)).not.toContain(secret);

    const revoked = await g.tally.call('DELETE', `/v1/orgs/${org.id}/gateway_keys/${created.body.id}`, {
      key,
    });
    expect(revoked.body.revoked_at).not.toBeNull();
    const refused = await openaiClient(g, secret)
      .chat.completions.create({ model: 'gpt-4o-mini', messages: prompt })
      .catch((e: { status?: number }) => e);
    expect(refused).toMatchObject({ status: 401 });
  });

  it('are not API keys: a gateway key cannot use the /v1 API', async () => {
    const { org, key } = await gatewayOrg(g);
    const created = await g.tally.call('POST', `/v1/orgs/${org.id}/gateway_keys`, {
      key,
      body: { name: 'bot', member: 'bot_1', feature: 'support' },
    });
    const res = await g.tally.call('GET', `/v1/orgs/${org.id}/balance`, { key: created.body.key });
    expect(res.status).toBe(401);
  });
});

describe("an org's own upstream", () => {
  it('sends that org calls to its own provider account with its own key, shown only by its last characters', async () => {
    const { org, key } = await gatewayOrg(g);
    const byokKey = 'sk-org-own-openai-key-1234';
    // A call before the setting: the process keeps "no own upstream" for a moment, and the
    // setting made through it must still apply at once.
    await openaiClient(g, key, { 'tally-member': 'user_1' }).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: prompt,
    });
    expect(g.fake.requests.at(-1)!.headers.authorization).toBe(`Bearer ${UPSTREAM_OPENAI_KEY}`);
    // Another address is the operator's to set (an org key could otherwise reach internal hosts).
    const byOrg = await g.tally.call('PUT', `/v1/orgs/${org.id}/gateway/upstreams/openai`, {
      key,
      body: { api_key: byokKey, base_url: own.url },
    });
    expect(byOrg.status).toBe(403);
    const set = await g.tally.call('PUT', `/v1/orgs/${org.id}/gateway/upstreams/openai`, {
      body: { api_key: byokKey, base_url: own.url },
    });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ provider: 'openai', base_url: own.url, key_hint: '1234' });
    expect(JSON.stringify(set.body)).not.toContain(byokKey);
    const [stored] = await g.tally.db.query<{ api_key_encrypted: string }>(
      'SELECT api_key_encrypted FROM gateway_upstreams WHERE org_id = $1',
      [org.id],
    );
    expect(stored!.api_key_encrypted).not.toContain(byokKey);

    const member = { 'tally-member': 'user_1' };
    await openaiClient(g, key, member).chat.completions.create({ model: 'gpt-4o-mini', messages: prompt });
    expect(own.requests.at(-1)!.headers.authorization).toBe(`Bearer ${byokKey}`);
    const operatorCalls = g.fake.requests.length;

    // Another org still goes to the operator's account.
    const other = await gatewayOrg(g);
    await openaiClient(g, other.key, member).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: prompt,
    });
    expect(g.fake.requests.length).toBe(operatorCalls + 1);
    expect(g.fake.requests.at(-1)!.headers.authorization).toBe(`Bearer ${UPSTREAM_OPENAI_KEY}`);

    const listed = await g.tally.call('GET', `/v1/orgs/${org.id}/gateway/upstreams`, { key });
    expect(listed.body.data).toEqual([expect.objectContaining({ provider: 'openai', key_hint: '1234' })]);
    const deleted = await g.tally.call('DELETE', `/v1/orgs/${org.id}/gateway/upstreams/openai`, { key });
    expect(deleted.status).toBe(200);
    await openaiClient(g, key, member).chat.completions.create({ model: 'gpt-4o-mini', messages: prompt });
    expect(g.fake.requests.at(-1)!.headers.authorization).toBe(`Bearer ${UPSTREAM_OPENAI_KEY}`);
  });
});
