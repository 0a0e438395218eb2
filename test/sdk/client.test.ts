import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tally, TallyError } from '../../sdk/src/index.ts';
import { createOrgWithKey, startTally, type TestTally } from '../support/harness.ts';
import { type FaultyProxy, type Listening, sdkEvent, serveTally, startFaultyProxy } from './support.ts';

let t: TestTally;
let server: Listening;
const proxies: FaultyProxy[] = [];
beforeAll(async () => {
  t = await startTally();
  server = await serveTally(t);
});
afterAll(async () => {
  for (const proxy of proxies) await proxy.close();
  await server.close();
  await t.close();
});

const fast = { maxRetries: 4, baseDelayMs: 10, maxDelayMs: 2_000 };

async function setup(plan: Parameters<typeof startFaultyProxy>[1] = []) {
  const { org, key } = await createOrgWithKey(t);
  const proxy = await startFaultyProxy(server.url, plan);
  proxies.push(proxy);
  return { org, key, proxy };
}

const event = (n: number) => sdkEvent(n);

async function storedEvents(orgId: string) {
  return t.db.query<{ id: string }>('SELECT id FROM events WHERE org_id = $1 ORDER BY id', [orgId]);
}

const eventPosts = (proxy: FaultyProxy) => proxy.seen.filter((r) => r.path === '/v1/events');

describe('track batching', () => {
  it('sends a batch as soon as batchSize events wait, and the rest on flush', async () => {
    const { org, key, proxy } = await setup();
    const tally = new Tally({ apiKey: key, baseUrl: proxy.url, batchSize: 3, flushIntervalMs: 60_000 });
    for (let n = 1; n <= 7; n++) tally.track(event(n));
    expect(tally.pendingEvents).toBe(1);
    const report = await tally.flush();
    expect(eventPosts(proxy).map((r) => r.body.events.length)).toEqual([3, 3, 1]);
    expect(report.results.map((r) => r.status)).toEqual(Array(7).fill('accepted'));
    expect(report.failed).toEqual([]);
    expect(await storedEvents(org.id)).toHaveLength(7);
  });

  it('sends a partial batch once the interval has passed, without a flush', async () => {
    const { org, key, proxy } = await setup();
    const tally = new Tally({ apiKey: key, baseUrl: proxy.url, batchSize: 100, flushIntervalMs: 150 });
    const started = Date.now();
    const id = tally.track({ ...event(0), id: undefined, occurred_at: undefined });
    tally.track(event(2));
    expect(id).toMatch(/^evt_[0-9a-f]{32}$/);
    while (eventPosts(proxy).length === 0 && Date.now() - started < 5_000) await sleep(10);
    expect(eventPosts(proxy)[0]!.at - started).toBeGreaterThanOrEqual(140);
    expect(eventPosts(proxy)[0]!.body.events.map((e: { id: string }) => e.id)).toEqual([id, 'e2']);
    await tally.flush();
    expect((await storedEvents(org.id)).map((e) => e.id).sort()).toEqual(['e2', id].sort());
  });

  it('flushes what is pending on shutdown', async () => {
    const { org, key, proxy } = await setup();
    const tally = new Tally({ apiKey: key, baseUrl: proxy.url, flushIntervalMs: 60_000 });
    for (let n = 1; n <= 5; n++) tally.track(event(n));
    expect(eventPosts(proxy)).toHaveLength(0);
    const report = await tally.shutdown();
    expect(report.results).toHaveLength(5);
    expect(tally.pendingEvents).toBe(0);
    expect(await storedEvents(org.id)).toHaveLength(5);
  });

  it('refuses a batch size above what one request takes', () => {
    expect(() => new Tally({ apiKey: 'k', baseUrl: 'http://x', batchSize: 0 })).toThrow(RangeError);
  });
});

describe('track retries', () => {
  it('resends the same ids after a dropped connection: the event is counted once', async () => {
    const { org, key, proxy } = await setup(['drop']);
    const tally = new Tally({ apiKey: key, baseUrl: proxy.url, retry: fast });
    tally.track(event(1));
    tally.track(event(2));
    const report = await tally.flush();
    const posts = eventPosts(proxy);
    expect(posts).toHaveLength(2);
    expect(posts[1]!.body).toEqual(posts[0]!.body);
    // Tally counted the first attempt; the resend is recognized, not counted again.
    expect(report.results.map((r) => r.status)).toEqual(['duplicate', 'duplicate']);
    expect((await storedEvents(org.id)).map((e) => e.id)).toEqual(['e1', 'e2']);
  });

  it('waits as long as a 429 Retry-After says, then resends', async () => {
    const { org, key, proxy } = await setup([{ status: 429, headers: { 'retry-after': '1' } }]);
    const tally = new Tally({ apiKey: key, baseUrl: proxy.url, retry: fast });
    tally.track(event(1));
    const report = await tally.flush();
    const posts = eventPosts(proxy);
    expect(posts).toHaveLength(2);
    expect(posts[1]!.at - posts[0]!.at).toBeGreaterThanOrEqual(950);
    expect(report.results.map((r) => r.status)).toEqual(['accepted']);
    expect(await storedEvents(org.id)).toHaveLength(1);
  });

  it('backs off and retries on 5xx until Tally answers', async () => {
    const { key, proxy } = await setup([{ status: 503 }, { status: 500 }, { status: 502 }]);
    const tally = new Tally({ apiKey: key, baseUrl: proxy.url, retry: fast });
    tally.track(event(1));
    const report = await tally.flush();
    expect(eventPosts(proxy)).toHaveLength(4);
    expect(report.results.map((r) => r.status)).toEqual(['accepted']);
  });

  it('gives up after maxRetries and reports the batch with its error', async () => {
    const failures = [{ status: 503 }, { status: 503 }, { status: 503 }];
    const { org, key, proxy } = await setup(failures);
    const reported: unknown[] = [];
    const tally = new Tally({
      apiKey: key,
      baseUrl: proxy.url,
      retry: { ...fast, maxRetries: 2 },
      onError: (failure) => reported.push(failure),
    });
    tally.track(event(1));
    const report = await tally.flush();
    expect(eventPosts(proxy)).toHaveLength(3);
    expect(report.failed).toHaveLength(1);
    expect(report.failed[0]!.error).toBeInstanceOf(TallyError);
    expect((report.failed[0]!.error as TallyError).status).toBe(503);
    expect(reported).toEqual(report.failed);
    expect(await storedEvents(org.id)).toHaveLength(0);
  });

  it('does not retry a 4xx, and reports it as a typed error naming the field', async () => {
    const { key, proxy } = await setup();
    const onError = () => {};
    const tally = new Tally({ apiKey: key, baseUrl: proxy.url, retry: fast, onError });
    tally.track({ ...event(1), usage: { input_tokens: -5 } });
    const report = await tally.flush();
    expect(eventPosts(proxy)).toHaveLength(1);
    const error = report.failed[0]!.error as TallyError;
    expect(error).toBeInstanceOf(TallyError);
    expect(error).toMatchObject({
      status: 422,
      code: 'invalid_field',
      param: 'events[0].usage.input_tokens',
    });
    expect(error.type).toBe('https://tally.dev/problems/invalid_field');
    expect(error.title).toBe('Unprocessable content');
    expect(error.detail).toContain('events[0].usage.input_tokens');
  });
});

describe('a malformed event in a batch', () => {
  it('is given up on alone: the rest of its batch is delivered', async () => {
    const { org, key, proxy } = await setup();
    const failures: { ids: string[]; param: string | undefined }[] = [];
    const tally = new Tally({
      apiKey: key,
      baseUrl: proxy.url,
      batchSize: 10,
      retry: fast,
      onError: ({ events, error }) =>
        failures.push({ ids: events.map((e) => e.id), param: (error as TallyError).param }),
    });
    for (let n = 1; n <= 6; n++) {
      tally.track(n === 2 || n === 5 ? { ...event(n), usage: { input_tokens: -1 } } : event(n));
    }
    const report = await tally.flush();
    expect(failures).toEqual([
      { ids: ['e2'], param: 'events[1].usage.input_tokens' },
      // e5 is the fourth of the five left once e2 is out.
      { ids: ['e5'], param: 'events[3].usage.input_tokens' },
    ]);
    expect(report.failed.map((f) => f.events.map((e) => e.id))).toEqual([['e2'], ['e5']]);
    expect(report.results.map((r) => r.status)).toEqual(['accepted', 'accepted', 'accepted', 'accepted']);
    expect((await storedEvents(org.id)).map((e) => e.id)).toEqual(['e1', 'e3', 'e4', 'e6']);
    expect(eventPosts(proxy)).toHaveLength(3);
  });
});

describe('holds and typed errors', () => {
  it('authorize, increment, capture and void speak the generated types', async () => {
    const { key, proxy } = await setup();
    const tally = new Tally({ apiKey: key, baseUrl: proxy.url, retry: fast });
    const call = { member: 'u1', feature: 'Chat', provider: 'openai', model: 'gpt-4o' };
    const hold = await tally.authorize({
      ...call,
      estimate: { input_tokens: 10_000, max_output_tokens: 10_000 },
    });
    expect(hold).toMatchObject({ approved: true, held_credits: '17.25' });
    const step = await tally.increment(hold.id!, { input_tokens: 10_000, output_tokens: 1_000 });
    expect(step).toMatchObject({ charged_credits: '4.83', action: 'continue' });
    const captured = await tally.capture(hold.id!, { usage: { input_tokens: 10_000, output_tokens: 3_000 } });
    expect(captured).toMatchObject({ status: 'captured', credits: '7.59', cost: '0.0759' });
    const other = await tally.authorize({ ...call, estimate: { credits: '1' } });
    expect(await tally.void(other.id!)).toMatchObject({ status: 'voided' });
    // Each mutating call carried its own Idempotency-Key.
    const holdPosts = proxy.seen.filter((r) => r.path.startsWith('/v1/authorizations'));
    expect(holdPosts).toHaveLength(5);
  });

  it('retries a hold after a dropped connection without placing a second one', async () => {
    const { org, key, proxy } = await setup(['drop']);
    const tally = new Tally({ apiKey: key, baseUrl: proxy.url, retry: fast });
    const hold = await tally.authorize({
      member: 'u1',
      feature: 'Chat',
      provider: 'openai',
      model: 'gpt-4o',
      estimate: { credits: '3' },
    });
    expect(proxy.seen).toHaveLength(2);
    expect(hold.approved).toBe(true);
    const balance = await t.call('GET', `/v1/orgs/${org.id}/balance`);
    expect(balance.body.held_credits).toBe('3');
  });

  it('places one hold for two authorize calls with the same idempotencyKey (an app-level retry)', async () => {
    const { org, key } = await setup();
    const tally = new Tally({ apiKey: key, baseUrl: server.url, retry: fast });
    const request = {
      member: 'u1',
      feature: 'Chat',
      provider: 'openai',
      model: 'gpt-4o',
      estimate: { credits: '3' },
    };
    const first = await tally.authorize(request, { idempotencyKey: 'job-7-hold' });
    const again = await tally.authorize(request, { idempotencyKey: 'job-7-hold' });
    expect(again.id).toBe(first.id);
    await tally.void(first.id!, { idempotencyKey: 'job-7-void' });
    expect((await tally.void(first.id!, { idempotencyKey: 'job-7-void' })).status).toBe('voided');
    const balance = await t.call('GET', `/v1/orgs/${org.id}/balance`);
    expect(balance.body.held_credits).toBe('0');
  });

  it('throws TallyError with the problem fields', async () => {
    const { key, proxy } = await setup();
    const wrongKey = new Tally({
      apiKey: 'tally_sk_not_a_key_000000000000',
      baseUrl: proxy.url,
      retry: fast,
    });
    const unauthorized = await wrongKey.void('auth_missing').catch((e: unknown) => e);
    expect(unauthorized).toBeInstanceOf(TallyError);
    expect(unauthorized).toMatchObject({ status: 401, code: 'unauthorized' });

    const tally = new Tally({ apiKey: key, baseUrl: proxy.url, retry: fast });
    const missing = await tally.capture('auth_0000000000000000', { usage: {} }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(TallyError);
    expect(missing).toMatchObject({ status: 404, code: 'not_found' });
    expect((missing as TallyError).requestId).toMatch(/^req_/);
  });
});

describe("the host app's usage page", () => {
  it('mints an embed token for a user by their own id, and reads the balance the page shows', async () => {
    const { org, key } = await setup();
    const tally = new Tally({ apiKey: key, baseUrl: server.url, retry: fast });
    await tally.sendEvents([{ ...event(1), member: 'user_42' }]);
    const embed = await tally.createEmbedToken(org.id, {
      member: 'user_42',
      role: 'viewer',
      ttl_seconds: 600,
    });
    expect(embed).toMatchObject({ object: 'embed_token', role: 'viewer' });
    expect(embed.url).toContain(server.url);
    const session = await t.call('GET', '/v1/session', { key: embed.token });
    expect(session.status).toBe(200);
    expect(JSON.stringify(session.body)).toContain(org.id);

    const balance = await tally.getBalance(org.id);
    expect(balance).toEqual((await t.call('GET', `/v1/orgs/${org.id}/balance`, { key })).body);
    expect(balance.object).toBe('balance');
  });

  it("refuses an unknown user and another org's page with a typed error", async () => {
    const { org, key } = await setup();
    const other = await createOrgWithKey(t);
    const tally = new Tally({ apiKey: key, baseUrl: server.url, retry: fast });
    const unknown = await tally
      .createEmbedToken(org.id, { member: 'nobody', role: 'member' })
      .catch((e) => e);
    expect(unknown).toBeInstanceOf(TallyError);
    expect(unknown).toMatchObject({ status: 404, param: 'member' });
    const theirs = await tally.getBalance(other.org.id).catch((e: unknown) => e);
    expect(theirs).toBeInstanceOf(TallyError);
    expect(theirs).toMatchObject({ status: 404 });
    const theirPage = await tally
      .createEmbedToken(other.org.id, { member: 'u1', role: 'viewer' })
      .catch((e) => e);
    expect(theirPage).toMatchObject({ status: 404 });
  });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
