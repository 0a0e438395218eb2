/**
 * Failed authentications per client address: past 20 an address is refused 429 (problem+json on
 * /v1, the provider's format on the gateway) with Retry-After before any key lookup, for any key it
 * sends, good ones too, until failures refill at 1 a second; other addresses are not affected.
 * In-process requests carry their address as @hono/node-server's bindings do; one test goes over
 * a real socket.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { addressBucket } from '../src/http/middleware/authFailureLimit.ts';
import { ProblemSchema } from '../src/http/schemas.ts';
import { listen } from '../src/server.ts';
import { createOrgWithKey, startTally, type TestTally } from './support/harness.ts';

const BURST = 20;
/** Nothing listens there: no request of these tests reaches a provider. */
const CLOSED = 'http://127.0.0.1:9';

let t: TestTally;
let server: { url: string; close: () => Promise<void> };
let orgId = '';
let goodKey = '';
let revokedKey = '';

beforeAll(async () => {
  t = await startTally({
    PORT: '0',
    HOST: '127.0.0.1',
    TALLY_UPSTREAM_OPENAI_URL: CLOSED,
    TALLY_UPSTREAM_ANTHROPIC_URL: CLOSED,
  });
  server = await listen(t);
  const created = await createOrgWithKey(t);
  orgId = created.org.id;
  goodKey = created.key;
  const revoked = await createOrgWithKey(t);
  await t.call('DELETE', `/v1/orgs/${revoked.org.id}/api_keys/${revoked.keyId}`);
  revokedKey = revoked.key;
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

/** A good key this Tally has not authenticated yet (one it has passes a refused address). */
const unseenKey = async () => (await createOrgWithKey(t)).key;

/** Every kind of credential auth refuses with 401, in turn. */
const badCredentials = (i: number) =>
  [
    `Bearer tally_sk_guessed_${i}_0123456789abcdef`,
    `Bearer tally_op_guessed_${i}_0123456789abcdef`,
    `Bearer ${revokedKey}`,
    `Bearer tally_emb_${i}.not.signed`,
    'Basic dXNlcjpwYXNz',
  ][i % 5]!;

/** A request from `address` as @hono/node-server hands it to the app (its socket's peer). */
async function from(address: string, path: string, init: RequestInit = {}) {
  const incoming = { headers: {}, socket: { remoteAddress: address } };
  const res = await t.app.request(path, init, { incoming });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

const v1From = (address: string, authorization: string) =>
  from(address, '/v1/orgs', { headers: { authorization } });

/** Sends bad credentials from `address` until one is refused with 429 (at most 40). */
async function failUntilRefused(send: (i: number) => Promise<{ status: number }>) {
  const started = performance.now();
  const statuses: number[] = [];
  while (statuses.length < 40 && !statuses.includes(429)) statuses.push((await send(statuses.length)).status);
  return { statuses, seconds: (performance.now() - started) / 1000 };
}

/** Counts the database queries made while `work` runs, except the limiter's own shared counts. */
async function queriesDuring(work: () => Promise<unknown>): Promise<number> {
  const spy = vi.spyOn(t.db, 'query');
  try {
    await work();
    return spy.mock.calls.filter(([sql]) => !sql.includes('tally_runtime')).length;
  } finally {
    spy.mockRestore();
  }
}

/** The failures that refilled while they were sent let as many more through. */
function expectRefusedAfterTheBurst({ statuses, seconds }: { statuses: number[]; seconds: number }) {
  expect(statuses.slice(0, BURST)).toEqual(Array(BURST).fill(401));
  expect(statuses.at(-1)).toBe(429);
  expect(statuses.length - 1).toBeLessThanOrEqual(BURST + Math.floor(seconds));
}

describe('failed authentications per client address', () => {
  it('refuses an address with 429 problem+json and Retry-After past 20 failures, before any lookup, good keys too, until one refills', async () => {
    const overSocket = async (authorization: string) => {
      const res = await fetch(`${server.url}/v1/orgs/${orgId}`, { headers: { authorization } });
      return { status: res.status, headers: res.headers, body: await res.json() };
    };
    expectRefusedAfterTheBurst(await failUntilRefused((i) => overSocket(badCredentials(i))));

    let refused: Awaited<ReturnType<typeof overSocket>> | undefined;
    let good: Awaited<ReturnType<typeof overSocket>> | undefined;
    let refusedAt = 0;
    const queries = await queriesDuring(async () => {
      refused = await overSocket('Bearer tally_sk_one_more_guess_0123456789');
      refusedAt = performance.now();
      good = await overSocket(`Bearer ${goodKey}`);
    });
    expect(refused!.status).toBe(429);
    expect(refused!.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(ProblemSchema.parse(refused!.body)).toMatchObject({
      status: 429,
      code: 'too_many_failed_authentications',
      detail: expect.stringMatching(/failed authentications from this address/),
    });
    const retryAfter = Number(refused!.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    // Telling a good key from a bad one takes the lookup the refusal saves: it is refused as well.
    expect(good!.status).toBe(429);
    expect(queries).toBe(0);
    // The count sees a lookup where there is one: a bad key from an address not refused.
    expect(await queriesDuring(() => v1From('192.0.2.99', badCredentials(0)))).toBeGreaterThan(0);

    // One failure a second refills (less than one was left): the address may try again, about
    // once per second since the refusal, and is refused again after.
    await new Promise((r) => setTimeout(r, retryAfter * 1000));
    expect((await overSocket(`Bearer ${goodKey}`)).status).toBe(200);
    const again = await failUntilRefused((i) => overSocket(badCredentials(i)));
    expect(again.statuses[0]).toBe(401);
    expect(again.statuses.at(-1)).toBe(429);
    const secondsSinceRefused = (performance.now() - refusedAt) / 1000;
    expect(again.statuses.length - 1).toBeLessThanOrEqual(1 + Math.floor(secondsSinceRefused));
  });

  it('does not refuse another address, whose good key still authenticates and bad key still gets 401', async () => {
    const unseen = await unseenKey();
    expectRefusedAfterTheBurst(await failUntilRefused((i) => v1From('203.0.113.10', badCredentials(i))));
    expect((await v1From('203.0.113.10', `Bearer ${unseen}`)).status).toBe(429);
    expect((await v1From('203.0.113.11', `Bearer ${unseen}`)).status).toBe(200);
    expect((await v1From('203.0.113.11', badCredentials(0))).status).toBe(401);
    // An IPv6 client is counted by its /64, from which it may pick any address.
    expectRefusedAfterTheBurst(
      await failUntilRefused((i) => v1From(`2001:db8:7:8::${i.toString(16)}`, badCredentials(i))),
    );
    const other = await unseenKey();
    expect((await v1From('2001:db8:7:8:abcd::1', `Bearer ${other}`)).status).toBe(429);
    expect((await v1From('2001:db8:7:9::1', `Bearer ${other}`)).status).toBe(200);
  });

  it("lets a key that authenticated lately through an address refused for others' failures", async () => {
    // Tenants behind one NAT or proxy: one client's revoked key must not lock the others out.
    const tenant = await unseenKey();
    expect((await v1From('203.0.113.30', `Bearer ${tenant}`)).status).toBe(200);
    expectRefusedAfterTheBurst(await failUntilRefused((i) => v1From('203.0.113.31', badCredentials(i))));
    expect((await v1From('203.0.113.31', `Bearer ${tenant}`)).status).toBe(200);
    // The same key however its header is spaced; a key never seen is refused.
    expect((await v1From('203.0.113.31', `bearer   ${tenant} `)).status).toBe(200);
    expect((await v1From('203.0.113.31', `Bearer ${await unseenKey()}`)).status).toBe(429);
    // Revoked since: it goes on to its lookup, fails there, and counts from then on.
    const { org, keyId, key } = await createOrgWithKey(t);
    expect((await v1From('203.0.113.30', `Bearer ${key}`)).status).toBe(200);
    await t.call('DELETE', `/v1/orgs/${org.id}/api_keys/${keyId}`);
    expect((await v1From('203.0.113.31', `Bearer ${key}`)).status).toBe(401);
    expect((await v1From('203.0.113.31', `Bearer ${key}`)).status).toBe(429);
  });

  it('keeps trusting a key while it keeps authenticating, and stops 10 minutes after it last did', async () => {
    const tenant = await unseenKey();
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      expect((await v1From('203.0.113.32', `Bearer ${tenant}`)).status).toBe(200);
      expectRefusedAfterTheBurst(await failUntilRefused((i) => v1From('203.0.113.33', badCredentials(i))));
      for (let minute = 0; minute < 3; minute++) {
        vi.setSystemTime(Date.now() + 9 * 60_000);
        expect((await v1From('203.0.113.33', `Bearer ${tenant}`)).status).toBe(200);
      }
      vi.setSystemTime(Date.now() + 11 * 60_000);
      expect((await v1From('203.0.113.33', `Bearer ${tenant}`)).status).toBe(429);
    } finally {
      vi.useRealTimers();
    }
  });

  it('counts bad keys sent side by side: no more pass to a lookup than failures are left', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        v1From('203.0.113.40', `Bearer tally_sk_side_by_side_${i}_0123456789`).then((r) => r.status),
      ),
    );
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(BURST);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(60 - BURST);
  });

  it("lets a new tenant's first burst of one key through: its requests share one lookup", async () => {
    const fresh = await unseenKey();
    const statuses = await Promise.all(
      Array.from({ length: 60 }, () => v1From('203.0.113.41', `Bearer ${fresh}`).then((r) => r.status)),
    );
    expect(statuses).toEqual(Array(60).fill(200));
  });

  it('counts bad keys on the gateway the same way and refuses in the provider format, /v1 too', async () => {
    const address = '198.51.100.20';
    const openai = (key: string) =>
      from(address, '/gateway/openai/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [] }),
      });
    const anthropic = (key: string) =>
      from(address, '/gateway/anthropic/v1/messages', {
        method: 'POST',
        headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [] }),
      });
    const run = await failUntilRefused((i) =>
      (i % 2 ? anthropic : openai)(`tally_vk_guessed_${i}_0123456789abcdef`),
    );
    expectRefusedAfterTheBurst(run);

    const unseen = await unseenKey();
    let viaOpenai: Awaited<ReturnType<typeof from>> | undefined;
    let viaAnthropic: Awaited<ReturnType<typeof from>> | undefined;
    let viaV1: Awaited<ReturnType<typeof from>> | undefined;
    const queries = await queriesDuring(async () => {
      viaOpenai = await openai('tally_vk_one_more_guess_0123456789');
      viaAnthropic = await anthropic('tally_vk_one_more_guess_0123456789');
      viaV1 = await v1From(address, `Bearer ${unseen}`);
    });
    expect(queries).toBe(0);
    expect(viaOpenai).toMatchObject({
      status: 429,
      body: {
        error: {
          message: expect.stringMatching(/failed authentications from this address/),
          type: 'requests',
          param: null,
          code: 'rate_limit_exceeded',
        },
      },
    });
    expect(viaAnthropic).toMatchObject({
      status: 429,
      body: {
        type: 'error',
        error: { type: 'rate_limit_error', message: expect.stringMatching(/failed authentications/) },
      },
    });
    for (const refused of [viaOpenai!, viaAnthropic!]) {
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    expect(viaV1).toMatchObject({ status: 429, body: { code: 'too_many_failed_authentications' } });
  });

  it('names an IPv4 address by itself, also mapped into IPv6, and an IPv6 address by its /64', () => {
    expect(addressBucket('203.0.113.7')).toBe('addr:203.0.113.7');
    expect(addressBucket('::ffff:203.0.113.7')).toBe('addr:203.0.113.7');
    expect(addressBucket('2001:0db8:0000:0001:aaaa:bbbb:cccc:dddd')).toBe('addr:2001:db8:0:1::/64');
    expect(addressBucket('2001:db8:0:1::9')).toBe('addr:2001:db8:0:1::/64');
    expect(addressBucket('2001:db8::1')).toBe('addr:2001:db8:0:0::/64');
    expect(addressBucket('::1')).toBe('addr:0:0:0:0::/64');
    expect(addressBucket('fe80::1%eth0')).toBe('addr:fe80:0:0:0::/64');
  });
});

describe('behind declared reverse proxies (TALLY_TRUSTED_PROXIES)', () => {
  let behind: TestTally;
  let key = '';
  beforeAll(async () => {
    behind = await startTally({ TALLY_TRUSTED_PROXIES: '1' });
    key = (await createOrgWithKey(behind)).key;
  });
  afterAll(() => behind?.close());

  /** The status of a request from the peer at `remoteAddress`, its X-Forwarded-For as given. */
  const fromPeer = (remoteAddress: string) => async (forwardedFor: string | null, authorization: string) => {
    const headers: Record<string, string> = { authorization };
    if (forwardedFor !== null) headers['x-forwarded-for'] = forwardedFor;
    const res = await behind.app.request(
      '/v1/orgs',
      { headers },
      { incoming: { headers: {}, socket: { remoteAddress } } },
    );
    return res.status;
  };
  /** A request that came through the proxy at 10.0.0.5. */
  const viaProxy = fromPeer('10.0.0.5');

  it('counts each client by the address the proxy saw, which the client cannot choose', async () => {
    const statuses: number[] = [];
    while (statuses.length < 40 && !statuses.includes(429)) {
      statuses.push(await viaProxy('198.51.100.7', badCredentials(statuses.length)));
    }
    expect(statuses.slice(0, BURST)).toEqual(Array(BURST).fill(401));
    expect(statuses.at(-1)).toBe(429);
    // Another client behind the same proxy is not refused; nor are requests the proxy did not forward.
    expect(await viaProxy('198.51.100.8', `Bearer ${key}`)).toBe(200);
    expect(await viaProxy(null, `Bearer ${key}`)).toBe(200);
    // Addresses the client wrote itself, left of the proxy's, change nothing; a port is no address.
    const unseen = (await createOrgWithKey(behind)).key;
    expect(await viaProxy('203.0.113.1, 198.51.100.7', `Bearer ${unseen}`)).toBe(429);
    expect(await viaProxy('198.51.100.7:4242', `Bearer ${unseen}`)).toBe(429);
    // A client reaching Tally directly (a public peer) cannot name another address.
    expect(await fromPeer('198.51.100.7')('192.0.2.1', `Bearer ${unseen}`)).toBe(429);
  });

  // Not public, or carrying a private IPv4 address, yet no proxy of Tally: they come from anywhere.
  it.each([
    ['a Teredo peer', '2001:0:4136:e378:8000:63bf:3fff:fdd2'],
    ['a 6to4 peer carrying 10.0.0.5', '2002:a00:5::1'],
    ['a NAT64 peer carrying 192.168.1.9', '64:ff9b::c0a8:109'],
    ['a local-use NAT64 peer', '64:ff9b:1::808:808'],
  ])('does not believe %s', async (_, address) => {
    const from = fromPeer(address);
    const statuses: number[] = [];
    while (statuses.length < 40 && !statuses.includes(429)) {
      statuses.push(await from(null, badCredentials(statuses.length)));
    }
    expect(statuses.at(-1)).toBe(429);
    // Naming another address in X-Forwarded-For does not make it another client.
    expect(await from('192.0.2.77', badCredentials(100))).toBe(429);
  });
});
