/**
 * Webhooks go to public addresses only (SSRF): a literal non-public IP, a localhost name or a name
 * that does not resolve or resolves to any non-public address is refused when the endpoint is
 * created or its url changed, and the address a name resolves to is checked again when a delivery
 * connects; TALLY_WEBHOOK_ALLOW_PRIVATE=1 allows them (development, tests).
 */
import dnsPromises from 'node:dns/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.ts';
import { nonPublicKind } from '../src/domain/addresses.ts';
import { prepare, type Tally } from '../src/server.ts';
import { deliverWebhooks } from '../src/services/webhooks/deliverWebhooks.ts';
import { refusedTarget } from '../src/services/webhooks/webhookTargets.ts';
import { createOrgWithKey, OPERATOR_KEY, startTally, type TestTally } from './support/harness.ts';

// A zone of names for the check at creation, which resolves with node:dns/promises (the test
// machine may have no DNS): names under .invalid do not exist; other names go to the real
// resolver. Deliveries connect through node:dns, which this leaves alone. Replaced for this file's
// tests only (the module object is shared with other test files of the worker).
const realLookup = dnsPromises.lookup;
const zone: Record<string, string[]> = {
  'public.example': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
  'loopback.example': ['127.0.0.1'],
  'partly-private.example': ['93.184.215.14', '10.0.0.7'],
};
const zoneLookup = (async (host: string, options: object) => {
  // A name whose name servers never answer, and one whose name servers fail.
  if (host === 'silent.example') return new Promise(() => {});
  if (host === 'failing.example') throw Object.assign(new Error('queryA EAI_AGAIN'), { code: 'EAI_AGAIN' });
  if (host.endsWith('.invalid')) {
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  }
  return (
    zone[host]?.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })) ??
    realLookup(host, options)
  );
}) as typeof dnsPromises.lookup;

/** Tally as it starts by default: private addresses refused. */
let t: TestTally;
/** The same database served with TALLY_WEBHOOK_ALLOW_PRIVATE=1, as an operator may have run it before. */
let allowing: Tally;
/** A real local receiver: every request it gets, as `path`. */
let receiver: Server;
let port = 0;
const received: string[] = [];
let zoneInstalled: { mockRestore(): void } | undefined;

beforeAll(async () => {
  zoneInstalled = vi.spyOn(dnsPromises, 'lookup').mockImplementation(zoneLookup);
  t = await startTally({ TALLY_WEBHOOK_ALLOW_PRIVATE: '0' });
  allowing = await prepare({ ...t.config, TALLY_WEBHOOK_ALLOW_PRIVATE: '1' }, t.db);
  receiver = createServer((req, res) => {
    received.push(req.url ?? '');
    req.resume().on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  port = (receiver.address() as AddressInfo).port;
});
afterAll(async () => {
  zoneInstalled?.mockRestore();
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
  await t?.close();
});

/** Creates an endpoint through the allowing Tally; orgId null: operator-wide. */
async function createAllowed(orgId: string | null, url: string): Promise<string> {
  const path = orgId ? `/v1/orgs/${orgId}/webhook_endpoints` : '/v1/webhook_endpoints';
  const res = await allowing.app.request(path, {
    method: 'POST',
    headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ url, event_types: ['grant.created'] }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

const grant = (orgId: string) =>
  t.call('POST', `/v1/orgs/${orgId}/grants`, { body: { kind: 'bonus', amount_credits: '5' } });

async function deliveryLog(orgId: string | null, endpointId: string) {
  const base = orgId ? `/v1/orgs/${orgId}/webhook_endpoints` : '/v1/webhook_endpoints';
  const res = await t.call('GET', `${base}/${endpointId}/deliveries?limit=100`);
  expect(res.status).toBe(200);
  return res.body.data as {
    status: string;
    attempts: number;
    last_status_code: number | null;
    last_error: string;
  }[];
}

describe('webhook targets: happy path', () => {
  it('with TALLY_WEBHOOK_ALLOW_PRIVATE=1 a local receiver is accepted and gets its deliveries', async () => {
    expect(loadConfig({}).TALLY_WEBHOOK_ALLOW_PRIVATE).toBe('0');
    expect(() => loadConfig({ TALLY_WEBHOOK_ALLOW_PRIVATE: 'yes' })).toThrow(ConfigError);
    expect(() => loadConfig({ TALLY_WEBHOOK_ALLOW_PRIVATE: 'yes' })).toThrow(
      'TALLY_WEBHOOK_ALLOW_PRIVATE: must be 0 or 1',
    );
    const { org } = await createOrgWithKey(t);
    const url = `http://127.0.0.1:${port}/allowed`;
    // Refused by default, accepted with the switch.
    const refused = await t.call('POST', `/v1/orgs/${org.id}/webhook_endpoints`, { body: { url } });
    expect(refused.status).toBe(422);
    const endpointId = await createAllowed(org.id, url);
    await grant(org.id);
    const allowPrivateAddresses = allowing.config.TALLY_WEBHOOK_ALLOW_PRIVATE === '1';
    expect(await deliverWebhooks(t.db, { timeoutMs: 2_000, allowPrivateAddresses })).toEqual({
      succeeded: 1,
      retrying: 0,
      failed: 0,
    });
    expect(received).toContain('/allowed');
    expect((await deliveryLog(org.id, endpointId))[0]).toMatchObject({
      status: 'succeeded',
      last_status_code: 204,
    });
  });
});

describe('webhook targets: errors', () => {
  it('refuses a non-public literal IP or a localhost name at creation with a 422 naming url', async () => {
    const { org, key } = await createOrgWithKey(t);
    const refusedUrls = [
      'http://127.0.0.1:8080/hook',
      'http://10.1.2.3/hook',
      'https://172.20.0.5/hook',
      'http://192.168.0.10/hook',
      'http://169.254.169.254/latest/meta-data/',
      'http://100.64.0.1/hook',
      'http://0.0.0.0:4100/hook',
      'http://0x7f.1/hook', // 127.0.0.1 written in hex
      'http://2130706433/hook', // 127.0.0.1 as one number
      'http://[::1]:4100/hook',
      'http://[::ffff:127.0.0.1]/hook',
      'http://[::ffff:a9fe:a9fe]/hook', // 169.254.169.254, IPv4-mapped
      'http://[fd00:ec2::254]/hook',
      'http://[fe80::1]/hook',
      'http://localhost:4100/hook',
      'http://LOCALHOST./hook',
      'http://api.localhost/hook',
    ];
    for (const url of refusedUrls) {
      const res = await t.call('POST', `/v1/orgs/${org.id}/webhook_endpoints`, { key, body: { url } });
      expect(res.status, url).toBe(422);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.body).toMatchObject({ code: 'invalid_field', param: 'url' });
      expect(res.body.detail).toMatch(
        /^url must reach a public address: .+ is a (loopback|private|link-local|shared \(CGNAT\)|unspecified) (address|name)$/,
      );
    }
    // Operator-wide endpoints follow the same rule.
    const wide = await t.call('POST', '/v1/webhook_endpoints', { body: { url: 'http://10.0.0.1/hook' } });
    expect(wide.status).toBe(422);
    expect(wide.body).toMatchObject({
      param: 'url',
      detail: 'url must reach a public address: 10.0.0.1 is a private address',
    });
    // Public addresses and names are taken (a name's addresses are checked again at delivery).
    for (const url of [
      'https://public.example/hook',
      'http://8.8.8.8/hook',
      'https://[2606:4700:4700::1111]/hook',
    ]) {
      const res = await t.call('POST', `/v1/orgs/${org.id}/webhook_endpoints`, { key, body: { url } });
      expect(res.status, url).toBe(201);
    }
    const list = await t.call('GET', `/v1/orgs/${org.id}/webhook_endpoints`, { key });
    expect(list.body.data).toHaveLength(3);
  });

  it('resolves a name at creation and on a url change: any non-public address, or none, is a 422 naming url', async () => {
    const { org, key } = await createOrgWithKey(t);
    const base = `/v1/orgs/${org.id}/webhook_endpoints`;
    const refusals = {
      'http://loopback.example:4100/hook':
        'url must reach a public address: loopback.example resolves to 127.0.0.1, a loopback address',
      'https://partly-private.example/hook':
        'url must reach a public address: partly-private.example resolves to 10.0.0.7, a private address',
      'https://no-such-host.invalid/hook': expect.stringMatching(
        /^url must reach a public address: no-such-host\.invalid did not resolve \(\w+\)$/,
      ),
    };
    for (const [url, detail] of Object.entries(refusals)) {
      const res = await t.call('POST', base, { key, body: { url } });
      expect(res.status, url).toBe(422);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.body).toMatchObject({ code: 'invalid_field', param: 'url', detail });
    }
    // Operator-wide endpoints, and a changed url, go through the same check.
    const wide = await t.call('POST', '/v1/webhook_endpoints', { body: { url: 'http://loopback.example/' } });
    expect(wide.status).toBe(422);
    expect(wide.body.param).toBe('url');
    const created = await t.call('POST', base, { key, body: { url: 'https://public.example/hook' } });
    expect(created.status).toBe(201);
    for (const url of Object.keys(refusals)) {
      const res = await t.call('PATCH', `${base}/${created.body.id}`, { key, body: { url } });
      expect(res.status, url).toBe(422);
      expect(res.body.param).toBe('url');
    }
    const list = await t.call('GET', base, { key });
    expect(list.body.data.map((e: { url: string }) => e.url)).toEqual(['https://public.example/hook']);
    // Failing name servers are told apart from a name that does not exist: the same url may work later.
    const failing = await t.call('POST', base, { key, body: { url: 'https://failing.example/hook' } });
    expect(failing.status).toBe(422);
    expect(failing.body.detail).toBe(
      'url must reach a public address: failing.example could not be resolved now (EAI_AGAIN: its name servers failed; try again later)',
    );
    // With the switch on, the name is taken as it is.
    expect(await createAllowed(org.id, 'http://loopback.example/hook')).toMatch(/^we_/);
  });
});

describe('webhook targets: a name that never resolves', () => {
  it('is refused once the lookup has waited its time, not waited on for as long as the resolver takes', async () => {
    const started = performance.now();
    expect(await refusedTarget('https://silent.example/hook', 200)).toBe(
      'silent.example did not resolve within 0.2 s (its name servers may be down: try again later)',
    );
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('webhook targets: security', () => {
  it('refuses at delivery a name resolving to 127.0.0.1 and non-public literal IPs: logged, failed at once, nothing sent', async () => {
    const { org } = await createOrgWithKey(t);
    const before = received.length;
    // Created while the switch was on; it is off now (the default), as the job runs.
    const byName = await createAllowed(org.id, `http://localhost:${port}/by-name`);
    const literal = await createAllowed(org.id, `http://127.0.0.1:${port}/literal`);
    const mapped = await createAllowed(null, `http://[::ffff:127.0.0.1]:${port}/mapped`);
    await grant(org.id);
    await grant(org.id);
    // Both messages of each endpoint fail in one run: the first does not hold the second for 24 hours.
    expect(await deliverWebhooks(t.db, { timeoutMs: 2_000 })).toEqual({
      succeeded: 0,
      retrying: 0,
      failed: 6,
    });
    expect(received.slice(before)).toEqual([]);
    const expected = [
      [org.id, byName, 'address not allowed: resolves to a loopback address'],
      [org.id, literal, 'address not allowed: 127.0.0.1 is a loopback address'],
      [null, mapped, 'address not allowed: ::ffff:7f00:1 is a loopback address'],
    ] as const;
    for (const [owner, endpointId, reason] of expected) {
      const log = await deliveryLog(owner, endpointId);
      expect(log).toHaveLength(2);
      for (const d of log) {
        expect(d).toMatchObject({
          status: 'failed',
          attempts: 1,
          last_status_code: null,
          last_error: reason,
        });
      }
    }
    // Nothing is left to retry.
    expect(await deliverWebhooks(t.db, { timeoutMs: 2_000 })).toEqual({
      succeeded: 0,
      retrying: 0,
      failed: 0,
    });
    expect(received.slice(before)).toEqual([]);
    // An operator-wide endpoint takes every org's messages: out of the way of the other tests.
    expect((await t.call('DELETE', `/v1/webhook_endpoints/${mapped}`)).status).toBe(200);
  });

  it('names every refused range, in IPv4-mapped IPv6 form too, and passes public addresses', () => {
    const kinds: Record<string, string | null> = {
      '0.0.0.0': 'unspecified',
      '0.1.2.3': 'unspecified',
      '::': 'unspecified',
      '127.0.0.1': 'loopback',
      '127.255.255.254': 'loopback',
      '::1': 'loopback',
      '10.0.0.1': 'private',
      '172.16.0.1': 'private',
      '172.31.255.255': 'private',
      '192.168.1.1': 'private',
      'fc00::1': 'private',
      'fd12:3456::1': 'private',
      '169.254.169.254': 'link-local',
      'fe80::1': 'link-local',
      '100.64.0.1': 'shared (CGNAT)',
      '100.127.255.255': 'shared (CGNAT)',
      '224.0.0.1': 'multicast',
      '239.255.255.250': 'multicast',
      'ff02::1': 'multicast',
      '240.0.0.1': 'reserved',
      '255.255.255.255': 'reserved',
      '::7f00:1': 'reserved', // IPv4-compatible ::127.0.0.1
      '::ffff:127.0.0.1': 'loopback',
      '::ffff:7f00:1': 'loopback',
      '::ffff:a9fe:a9fe': 'link-local',
      '::ffff:10.0.0.1': 'private',
      '::ffff:100.64.0.1': 'shared (CGNAT)',
      '::ffff:0.0.0.0': 'unspecified',
      '8.8.8.8': null,
      '1.1.1.1': null,
      '172.32.0.1': null,
      '100.128.0.1': null,
      '192.169.0.1': null,
      '::ffff:8.8.8.8': null,
      // IPv6 addresses that carry an IPv4 one are what that one is: NAT64, 6to4, IPv4-translated.
      '64:ff9b::a9fe:a9fe': 'link-local',
      '64:ff9b::10.0.0.1': 'private',
      '64:ff9b::808:808': null,
      '64:ff9b:1::8.8.8.8': 'reserved',
      '2002:7f00:1::1': 'loopback',
      '2002:808:808::1': null,
      '::ffff:0:a00:1': 'private',
      '::ffff:0:808:808': null,
      '2606:4700:4700::1111': null,
      '2001:4860:4860::8888': null,
      // Teredo (its client's IPv4, 10.0.0.1, obfuscated in the last two groups), documentation, discard.
      '2001:0:4136:e378:8000:63bf:f5ff:fffe': 'reserved',
      '2001:db8::1': 'reserved',
      '100::1': 'reserved',
    };
    expect(Object.fromEntries(Object.keys(kinds).map((ip) => [ip, nonPublicKind(ip)]))).toEqual(kinds);
  });
});
