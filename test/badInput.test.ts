/**
 * Bad input gets a clear 4xx problem+json naming the field at fault, and nothing is written:
 * every table of the database has the same rows after the request as before it.
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProblemSchema } from '../src/http/schemas.ts';
import { listen } from '../src/server.ts';
import {
  createOrgWithKey,
  minutesAgo,
  type Response,
  startTally,
  type TestTally,
} from './support/harness.ts';

let t: TestTally;
let small: TestTally;
let org: { id: string };
let key: string;
let memberId: string;

beforeAll(async () => {
  [t, small] = await Promise.all([
    startTally(),
    startTally({ TALLY_BODY_LIMIT_BYTES: '2048', PORT: '0', HOST: '127.0.0.1' }),
  ]);
  ({ org, key } = await createOrgWithKey(t));
  const member = await t.call('POST', `/v1/orgs/${org.id}/members`, { key, body: { external_id: 'alice' } });
  memberId = member.body.id;
  // One stored event, so "nothing written" also covers the rollup and a retry of a known id.
  const first = await t.call('POST', '/v1/events', { key, body: { events: [event({ id: 'seed' })] } });
  expect(first.body.results[0].status).toBe('accepted');
});
afterAll(async () => {
  await Promise.all([t?.close(), small?.close()]);
});

function event(overrides: Record<string, unknown> = {}) {
  return {
    id: 'evt-1',
    member: 'alice',
    feature: 'Chat',
    provider: 'openai',
    model: 'gpt-4o',
    occurred_at: minutesAgo(1),
    usage: { input_tokens: 1000, output_tokens: 200 },
    ...overrides,
  };
}

/** Row count and a fingerprint of every table, so any write anywhere shows. */
async function snapshot(tally: TestTally): Promise<Record<string, string>> {
  const tables = await tally.db.query<{ tablename: string }>(
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
  );
  const out: Record<string, string> = {};
  for (const { tablename } of tables) {
    const [row] = await tally.db.query<{ n: number; h: string | null }>(
      `SELECT count(*)::int AS n, md5(string_agg(x::text, '|' ORDER BY x::text)) AS h FROM "${tablename}" x`,
    );
    out[tablename] = `${row!.n}:${row!.h}`;
  }
  return out;
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const [row] = await t.db.query<{ n: number }>(sql, params);
  return row!.n;
}

function expectProblem(res: Response, status: number, code: string, param?: string | null) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = ProblemSchema.parse(res.body);
  expect(body.status).toBe(status);
  expect(body.code).toBe(code);
  expect(body.type).toMatch(new RegExp(`/${code}$`));
  expect(body.title.length).toBeGreaterThan(0);
  expect(body.detail.length).toBeGreaterThan(5);
  if (param === null) expect(body).not.toHaveProperty('param');
  else if (param !== undefined) expect(body.param).toBe(param);
  return body;
}

type Call = Parameters<TestTally['call']>;

/** Sends the request, checks the problem, and checks that no table changed. */
async function refused(
  request: Call,
  status: number,
  code: string,
  param?: string | null,
  tally: TestTally = t,
) {
  const before = await snapshot(tally);
  const res = await tally.call(...request);
  const body = expectProblem(res, status, code, param);
  expect(await snapshot(tally)).toEqual(before);
  return body;
}

const events = (...list: unknown[]): Call[2] => ({ key, body: { events: list } });
const rawEvents = (raw: string): Call[2] => ({ key, raw });
const withUsage = (usage: unknown) => events(event({ usage }));

describe('POST /v1/events: malformed bodies', () => {
  it('answers 400 invalid_json for JSON that does not parse', async () => {
    await refused(['POST', '/v1/events', rawEvents('{"events": [')], 400, 'invalid_json', null);
    await refused(['POST', '/v1/events', rawEvents("{'events': []}")], 400, 'invalid_json', null);
    await refused(['POST', '/v1/events', rawEvents('')], 400, 'invalid_json', null);
  });

  it('answers 422 for a body that is JSON but not an object, without a field', async () => {
    for (const raw of ['[]', 'null', '"events"', '42']) {
      const body = await refused(['POST', '/v1/events', rawEvents(raw)], 422, 'invalid_field', null);
      expect(body.detail).toMatch(/request body must be a JSON object/);
    }
  });

  it('names the field of a wrong type', async () => {
    const cases: [Call[2], string][] = [
      [withUsage({ input_tokens: '1000' }), 'events[0].usage.input_tokens'],
      [withUsage({ output_tokens: true }), 'events[0].usage.output_tokens'],
      [withUsage(null), 'events[0].usage'],
      [withUsage([1000]), 'events[0].usage'],
      [events(event({ member: 42 })), 'events[0].member'],
      [events(event({ occurred_at: 1_767_000_000 })), 'events[0].occurred_at'],
      [events(event({ metadata: 'note' })), 'events[0].metadata'],
      [events(event(), event({ id: 'evt-2', feature: ['a'] })), 'events[1].feature'],
      [{ key, body: { events: {} } }, 'events'],
      [{ key, body: { events: 'all' } }, 'events'],
    ];
    for (const [options, param] of cases) {
      await refused(['POST', '/v1/events', options], 422, 'invalid_field', param);
    }
  });

  it('names a missing required field', async () => {
    for (const field of ['id', 'member', 'feature', 'provider', 'model', 'occurred_at', 'usage']) {
      const e: Record<string, unknown> = event();
      delete e[field];
      await refused(['POST', '/v1/events', events(e)], 422, 'invalid_field', `events[0].${field}`);
    }
  });

  it('refuses blank ids and names', async () => {
    await refused(['POST', '/v1/events', events(event({ id: '' }))], 422, 'invalid_field', 'events[0].id');
    const body = await refused(
      ['POST', '/v1/events', events(event({ member: '   ' }))],
      422,
      'invalid_field',
      'events[0].member',
    );
    expect(body.detail).toMatch(/blank/);
  });
});

describe('POST /v1/events: counts', () => {
  it('refuses negative and fractional token counts', async () => {
    for (const [usage, field] of [
      [{ input_tokens: -1 }, 'input_tokens'],
      [{ input_tokens: 10, output_tokens: -5 }, 'output_tokens'],
      [{ input_tokens: 10.5 }, 'input_tokens'],
      [{ input_tokens: 10, cache_read_tokens: 0.1 }, 'cache_read_tokens'],
      [{ images: 1.5 }, 'images'],
    ] as const) {
      await refused(
        ['POST', '/v1/events', withUsage(usage)],
        422,
        'invalid_field',
        `events[0].usage.${field}`,
      );
    }
  });

  it('refuses numbers past 2^53 instead of rounding them', async () => {
    const body = JSON.stringify({ events: [event()] });
    for (const big of ['9007199254740993', '9007199254740992', '1e400', '123456789012345678901234567890']) {
      const raw = body.replace('"input_tokens":1000', `"input_tokens":${big}`);
      expect(raw).toContain(big);
      const problem = await refused(
        ['POST', '/v1/events', rawEvents(raw)],
        422,
        'invalid_field',
        'events[0].usage.input_tokens',
      );
      expect(problem.detail).toMatch(/2\^53/);
    }
  });

  it('refuses a count past 1 000 000 000 of one kind, so no rollup sum can overflow', async () => {
    for (const [usage, field] of [
      [{ input_tokens: 9007199254740991 }, 'input_tokens'],
      [{ input_tokens: 1_000_000_001 }, 'input_tokens'],
      [{ input_tokens: 10, output_tokens: 1_000_000_001 }, 'output_tokens'],
      [{ images: 1_000_000_001 }, 'images'],
    ] as const) {
      const problem = await refused(
        ['POST', '/v1/events', withUsage(usage)],
        422,
        'invalid_field',
        `events[0].usage.${field}`,
      );
      expect(problem.detail).toMatch(/1 000 000 000/);
    }
    const body = JSON.stringify({ events: [event()] });
    // The ceiling itself is a count like any other (and far too expensive: rejected per event).
    const max = body.replace('"input_tokens":1000', '"input_tokens":1000000000');
    const res = await t.call('POST', '/v1/events', rawEvents(max));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.results[0].status).toBe('rejected');
    // A hold's estimate has the same ceiling.
    const hold = await t.call('POST', '/v1/authorizations', {
      key,
      body: {
        member: 'alice',
        feature: 'Chat',
        provider: 'openai',
        model: 'gpt-4o',
        estimate: { input_tokens: 10, max_output_tokens: 1_000_000_001 },
      },
    });
    expect(hold.status).toBe(422);
    expect(hold.body.param).toBe('estimate.max_output_tokens');
  });

  it('refuses cache_read + cache_write above input_tokens, naming cache_read_tokens', async () => {
    for (const usage of [
      { input_tokens: 100, cache_read_tokens: 101 },
      { input_tokens: 100, cache_read_tokens: 60, cache_write_tokens: 41 },
      { cache_write_tokens: 1 },
    ]) {
      const problem = await refused(
        ['POST', '/v1/events', withUsage(usage)],
        422,
        'invalid_field',
        'events[0].usage.cache_read_tokens',
      );
      expect(problem.detail).toMatch(/input_tokens/);
    }
    // Exactly equal is fine: every input token may have come from the cache.
    const ok = await t.call('POST', '/v1/events', {
      key,
      body: { events: [event({ id: 'cache-ok', usage: { input_tokens: 100, cache_read_tokens: 100 } })] },
    });
    expect(ok.body.results[0].status, JSON.stringify(ok.body)).toBe('accepted');
  });

  it('refuses the whole batch when one event is invalid, naming it by index', async () => {
    await refused(
      [
        'POST',
        '/v1/events',
        events(
          event({ id: 'b1' }),
          event({ id: 'b2', member: 'new-person' }),
          event({ id: 'b3', usage: { input_tokens: 1, cache_read_tokens: 2 } }),
        ),
      ],
      422,
      'invalid_field',
      'events[2].usage.cache_read_tokens',
    );
  });
});

describe('POST /v1/events: fields and sizes', () => {
  it('answers 422 unknown_field with the full path of the field', async () => {
    const cases: [Call[2], string][] = [
      [withUsage({ input_tokens: 1, foo: 2 }), 'events[0].usage.foo'],
      [events(event(), event({ id: 'evt-2', colour: 'blue' })), 'events[1].colour'],
      [{ key, body: { events: [event()], dry_run: true } }, 'dry_run'],
      [withUsage({ input_tokens: 1, inputTokens: 2 }), 'events[0].usage.inputTokens'],
    ];
    for (const [options, param] of cases) {
      const problem = await refused(['POST', '/v1/events', options], 422, 'unknown_field', param);
      expect(problem.detail).toContain(param);
    }
  });

  it('refuses huge strings and metadata', async () => {
    const huge = 'x'.repeat(100_000);
    for (const field of ['id', 'member', 'feature', 'provider', 'model', 'workspace', 'conversation_id']) {
      await refused(
        ['POST', '/v1/events', events(event({ [field]: huge }))],
        422,
        'invalid_field',
        `events[0].${field}`,
      );
    }
    await refused(
      ['POST', '/v1/events', events(event({ metadata: { note: huge } }))],
      422,
      'invalid_field',
      'events[0].metadata',
    );
    // The metadata limit is 16 KiB as UTF-8: 6 000 euro signs are 6 000 characters but 18 000 bytes.
    await refused(
      ['POST', '/v1/events', events(event({ metadata: { note: '\u20ac'.repeat(6000) } }))],
      422,
      'invalid_field',
      'events[0].metadata',
    );
  });

  it('refuses dimensions too long together for the rollup index, naming the longest, for events and holds', async () => {
    // Each within its 200 characters, but 200 CJK characters are 600 bytes: five take 3 000. They
    // vary, as real text does: a repeated one would compress to fit the index.
    let seed = 1;
    const nextChar = () => {
      seed = (seed * 7919 + 13) % 20_011;
      return String.fromCharCode(0x4e00 + (seed % 20_000));
    };
    const wide = (n: number) => Array.from({ length: n }, nextChar).join('');
    const dims = {
      feature: wide(200),
      surface: wide(200),
      workspace: wide(200),
      workspace_group: wide(200),
      project: wide(199),
    };
    await refused(['POST', '/v1/events', events(event(dims))], 422, 'invalid_field', 'events[0].feature');
    const hold = {
      member: 'alice',
      feature: 'Chat',
      provider: 'openai',
      model: 'gpt-4o',
      estimate: { credits: '1' },
    };
    const { surface: _, ...holdDims } = dims;
    await refused(
      ['POST', '/v1/authorizations', { key, body: { ...hold, ...holdDims, model: wide(200) } }],
      422,
      'invalid_field',
      'feature',
    );
    // Within the limit, the event is stored and rolled up.
    const fits = { feature: wide(200), workspace: wide(200), project: wide(200) };
    const stored = await t.call('POST', '/v1/events', events(event({ id: 'wide', ...fits })));
    expect(stored.status, JSON.stringify(stored.body)).toBe(200);
    expect(stored.body.results[0]).toMatchObject({ status: 'accepted' });
  });

  it('refuses 0 and 1 001 events', async () => {
    await refused(['POST', '/v1/events', events()], 422, 'invalid_field', 'events');
    const many = Array.from({ length: 1001 }, (_, i) => event({ id: `many-${i}` }));
    const problem = await refused(['POST', '/v1/events', events(...many)], 422, 'invalid_field', 'events');
    expect(problem.detail).toMatch(/1 000/);
  });

  it('refuses occurred_at that is not an RFC 3339 time', async () => {
    for (const occurred_at of [
      'yesterday',
      '2026-01-31',
      '2026-01-31 12:00:00Z',
      '2026-01-31T12:00:00',
      '2026-13-01T00:00:00Z',
      '2026-02-30T00:00:00Z',
      '2026-01-31T25:00:00Z',
      '2026-01-31T12:00:00+99:00',
      '',
    ]) {
      await refused(
        ['POST', '/v1/events', events(event({ occurred_at }))],
        422,
        'invalid_field',
        'events[0].occurred_at',
      );
    }
  });

  it('refuses text Postgres cannot store (NUL, unpaired surrogates) and absurd nesting, naming the field', async () => {
    await refused(
      ['POST', '/v1/events', events(event({ feature: 'Ch\u0000at' }))],
      422,
      'invalid_field',
      'events[0].feature',
    );
    await refused(
      ['POST', '/v1/events', events(event({ metadata: { note: 'a\u0000b' } }))],
      422,
      'invalid_field',
      'events[0].metadata.note',
    );
    const surrogate = JSON.stringify({ events: [event()] }).replace('"Chat"', '"Ch\\ud800at"');
    await refused(['POST', '/v1/events', rawEvents(surrogate)], 422, 'invalid_field', 'events[0].feature');
    const deep = JSON.stringify({ events: [event({ metadata: { d: 'DEEP' } })] }).replace(
      '"DEEP"',
      `${'['.repeat(5000)}${']'.repeat(5000)}`,
    );
    const problem = await refused(['POST', '/v1/events', rawEvents(deep)], 422, 'invalid_field');
    expect(problem.param).toMatch(/^events\[0\]\.metadata\.d(\[0\])+$/);
    // A valid surrogate pair (an emoji) is ordinary text.
    const emoji = await t.call(
      'POST',
      '/v1/events',
      events(event({ id: 'emoji', feature: 'Chat \ud83d\ude00' })),
    );
    expect(emoji.body.results[0].status, JSON.stringify(emoji.body)).toBe('accepted');
  });

  it('answers 415 for a body that is not JSON', async () => {
    const body = JSON.stringify({ events: [event()] });
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/xml',
      'application/jsonx',
    ]) {
      await refused(
        ['POST', '/v1/events', { key, raw: body, headers: { 'content-type': type } }],
        415,
        'unsupported_media_type',
        null,
      );
    }
    // Parameters of the JSON media type are fine.
    const ok = await t.call('POST', '/v1/events', {
      key,
      body: { events: [event({ id: 'charset' })] },
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
  });

  it('answers 413 for a body over the size limit, and takes one exactly at it', async () => {
    const { key: smallKey } = await createOrgWithKey(small);
    const sized = (bytes: number, id: string) => {
      const base = JSON.stringify({ events: [event({ id, metadata: { pad: '' } })] });
      const raw = base.replace('"pad":""', `"pad":"${'p'.repeat(bytes - Buffer.byteLength(base))}"`);
      expect(Buffer.byteLength(raw)).toBe(bytes);
      return raw;
    };
    const problem = await refused(
      ['POST', '/v1/events', { key: smallKey, raw: sized(2049, 'over') }],
      413,
      'payload_too_large',
      null,
      small,
    );
    expect(problem.detail).toMatch(/2048/);
    await refused(
      [
        'POST',
        '/v1/orgs',
        { raw: JSON.stringify({ name: 'x'.repeat(3000), currency: 'EUR', timezone: 'UTC' }) },
      ],
      413,
      'payload_too_large',
      null,
      small,
    );
    const at = await small.call('POST', '/v1/events', { key: smallKey, raw: sized(2048, 'at-limit') });
    expect(at.status, JSON.stringify(at.body)).toBe(200);
    expect(at.body.results[0].status).toBe('accepted');
  });

  it('answers 413 over real HTTP from Content-Length alone, and counts a chunked body as it streams', async () => {
    const { key: smallKey } = await createOrgWithKey(small);
    const { url, close } = await listen(small);
    try {
      const send = (body: string, chunked: boolean) =>
        new Promise<{ status: number; text: string }>((resolve, reject) => {
          const req = httpRequest(`${url}/v1/events`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${smallKey}`,
              'content-type': 'application/json',
              ...(chunked ? {} : { 'content-length': Buffer.byteLength(body) }),
            },
          });
          req.on('response', (res) => {
            let text = '';
            res.on('data', (chunk) => {
              text += chunk;
            });
            res.on('end', () => resolve({ status: res.statusCode!, text }));
          });
          req.on('error', reject);
          if (chunked) for (let at = 0; at < body.length; at += 500) req.write(body.slice(at, at + 500));
          else req.write(body);
          req.end();
        });
      const sized = (bytes: number, id: string) => {
        const base = JSON.stringify({ events: [event({ id, metadata: { pad: '' } })] });
        return base.replace('"pad":""', `"pad":"${'p'.repeat(bytes - Buffer.byteLength(base))}"`);
      };
      for (const chunked of [false, true]) {
        const over = await send(sized(2049, `over-${chunked}`), chunked);
        expect(over.status, over.text).toBe(413);
        expect(JSON.parse(over.text).code).toBe('payload_too_large');
        const at = await send(sized(2048, `at-${chunked}`), chunked);
        expect(at.status, at.text).toBe(200);
        expect(JSON.parse(at.text).results[0].status).toBe('accepted');
      }
    } finally {
      await close();
    }
  });

  it('answers 404 for an org that does not exist, naming the event', async () => {
    // An operator key must say which org; an unknown one is a 404 for that event's org_id.
    await refused(
      ['POST', '/v1/events', { body: { events: [event({ org_id: 'org_doesnotexist' })] } }],
      404,
      'not_found',
      'events[0].org_id',
    );
    await refused(
      [
        'POST',
        '/v1/events',
        { body: { events: [event({ org_id: org.id }), event({ id: 'x', org_id: 'org_nope' })] } },
      ],
      404,
      'not_found',
      'events[1].org_id',
    );
    await refused(
      ['POST', '/v1/events', { body: { events: [event()] } }],
      422,
      'invalid_field',
      'events[0].org_id',
    );
  });
});

describe('POST /v1/events: timestamps out of range', () => {
  it('rejects, per event, a time older than 35 days or more than 5 minutes ahead, and stores nothing', async () => {
    const before = await snapshot(t);
    const res = await t.call('POST', '/v1/events', {
      key,
      body: {
        events: [
          event({ id: 'old', occurred_at: new Date(Date.now() - 36 * 86_400_000).toISOString() }),
          event({ id: 'ahead', occurred_at: new Date(Date.now() + 6 * 60_000).toISOString() }),
          event({ id: 'ancient', occurred_at: '1970-01-01T00:00:00Z' }),
        ],
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.body.results.map((r: { id: string }) => r.id)).toEqual(['old', 'ahead', 'ancient']);
    for (const result of res.body.results) {
      expect(result).toMatchObject({
        status: 'rejected',
        credits: null,
        cost: null,
        currency: null,
        error: { code: 'timestamp_out_of_range' },
      });
      expect(result.error.message).toMatch(/occurred_at/);
    }
    expect(res.body.results[0].error.message).toMatch(/35 days/);
    expect(res.body.results[1].error.message).toMatch(/5 minutes/);
    expect(await snapshot(t)).toEqual(before);
  });

  it('stores the good events of a batch and rejects only the late one', async () => {
    const before = await count('SELECT count(*)::int AS n FROM events');
    const res = await t.call('POST', '/v1/events', {
      key,
      body: {
        events: [
          event({ id: 'fine-1' }),
          event({ id: 'late-1', occurred_at: new Date(Date.now() - 40 * 86_400_000).toISOString() }),
          event({ id: 'near-edge', occurred_at: new Date(Date.now() - 34 * 86_400_000).toISOString() }),
        ],
      },
    });
    expect(res.body.results.map((r: { status: string }) => r.status)).toEqual([
      'accepted',
      'rejected',
      'accepted',
    ]);
    const rows = await t.db.query<{ id: string }>(
      "SELECT id FROM events WHERE id IN ('fine-1', 'late-1', 'near-edge') ORDER BY id",
    );
    expect(rows.map((r) => r.id)).toEqual(['fine-1', 'near-edge']);
    const after = await count('SELECT count(*)::int AS n FROM events');
    expect(after).toBe(before + 2);
  });
});

describe('orgs', () => {
  const valid = { name: 'Globex', currency: 'EUR', timezone: 'Europe/Paris' };
  const create = (body: unknown): Call => ['POST', '/v1/orgs', { body }];

  it('refuses malformed JSON and non-JSON bodies', async () => {
    await refused(['POST', '/v1/orgs', { raw: '{"name": "Globex",' }], 400, 'invalid_json', null);
    await refused(
      [
        'POST',
        '/v1/orgs',
        { raw: 'name=Globex', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      ],
      415,
      'unsupported_media_type',
      null,
    );
  });

  it('refuses an invalid time zone or currency, naming it', async () => {
    for (const timezone of ['Mars/Olympus', 'Europe/berlin ', 'GMT+25', '', 'x'.repeat(1000), 3]) {
      const problem = await refused(create({ ...valid, timezone }), 422, 'invalid_field', 'timezone');
      expect(problem.detail).toMatch(/timezone/);
    }
    for (const currency of ['GBP', 'eur', '', null, 978]) {
      await refused(create({ ...valid, currency }), 422, 'invalid_field', 'currency');
    }
  });

  it('names other bad fields', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ currency: 'EUR', timezone: 'UTC' }, 'name'],
      [{ ...valid, name: '' }, 'name'],
      [{ ...valid, name: 'n'.repeat(201) }, 'name'],
      [{ ...valid, billing_mode: 'free' }, 'billing_mode'],
      [{ ...valid, credit_value: '0' }, 'credit_value'],
      [{ ...valid, credit_value: 0.01 }, 'credit_value'],
      [{ ...valid, credit_value: '-1' }, 'credit_value'],
      [{ ...valid, plan_allowance_credits: 500 }, 'plan_allowance_credits'],
      [{ ...valid, billing_cycle_anchor: '2026-02-30' }, 'billing_cycle_anchor'],
    ];
    for (const [body, param] of cases) await refused(create(body), 422, 'invalid_field', param);
    await refused(create({ ...valid, plan: 'pro' }), 422, 'unknown_field', 'plan');
  });

  it('refuses to change the currency or unknown fields of an existing org', async () => {
    await refused(
      ['PATCH', `/v1/orgs/${org.id}`, { body: { currency: 'USD' } }],
      422,
      'unknown_field',
      'currency',
    );
    await refused(
      ['PATCH', `/v1/orgs/${org.id}`, { body: { timezone: 'Nowhere/Land' } }],
      422,
      'invalid_field',
      'timezone',
    );
  });

  it('takes a zone by its current IANA name as by the older one, and refuses names Postgres reads otherwise', async () => {
    for (const timezone of [
      'Asia/Kolkata',
      'Asia/Calcutta',
      'Asia/Kathmandu',
      'Europe/Kyiv',
      'Etc/GMT+12',
      'Etc/GMT-14',
    ]) {
      const created = await t.call('POST', '/v1/orgs', {
        body: { name: 'Zones', currency: 'EUR', timezone },
      });
      expect(created.status, timezone).toBe(201);
      expect(created.body.timezone).toBe(timezone);
      const summary = await t.call('GET', `/v1/orgs/${created.body.id}/usage/summary?range=mtd`);
      expect(summary.status, timezone).toBe(200);
    }
    // Etc/GMT+12 is UTC-12 to Postgres as to the platform: its months start at noon UTC.
    const [aoe] = await t.db.query<{ local: string }>(
      `SELECT to_char(timestamptz '2026-01-01T00:00:00Z' AT TIME ZONE 'Etc/GMT+12', 'YYYY-MM-DD HH24') AS local`,
    );
    expect(aoe!.local).toBe('2025-12-31 12');
    for (const timezone of ['GMT+5', 'EST', 'Asia/Nowhere', 'Etc/GMT+13', 'Etc/GMT+1.5']) {
      await refused(
        ['POST', '/v1/orgs', { body: { name: 'Zones', currency: 'EUR', timezone } }],
        422,
        'invalid_field',
        'timezone',
      );
    }
  });

  it('answers 404 for an unknown org', async () => {
    await refused(['GET', '/v1/orgs/org_doesnotexist', {}], 404, 'not_found', 'org');
    await refused(['PATCH', '/v1/orgs/org_doesnotexist', { body: { name: 'x' } }], 404, 'not_found', 'org');
  });

  it('answers 400 for bad query parameters, naming them', async () => {
    await refused(['GET', '/v1/orgs?limit=abc', {}], 400, 'invalid_field', 'limit');
    await refused(['GET', '/v1/orgs?limit=0', {}], 400, 'invalid_field', 'limit');
    await refused(['GET', '/v1/orgs?limit=1001', {}], 400, 'invalid_field', 'limit');
  });
});

describe('members', () => {
  const path = () => `/v1/orgs/${org.id}/members`;

  it('names bad fields and unknown ones', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{}, 'external_id'],
      [{ external_id: '' }, 'external_id'],
      [{ external_id: 'e'.repeat(201) }, 'external_id'],
      [{ external_id: 7 }, 'external_id'],
      [{ external_id: 'bob', email: 'not-an-email' }, 'email'],
      [{ external_id: 'bob', role: 'god' }, 'role'],
      [{ external_id: 'bob', name: 42 }, 'name'],
      [{ external_id: 'bob', name: 'n'.repeat(10_000) }, 'name'],
      [{ external_id: 'b\u0000b' }, 'external_id'],
    ];
    for (const [body, param] of cases) {
      await refused(['POST', path(), { key, body }], 422, 'invalid_field', param);
    }
    await refused(
      ['POST', path(), { key, body: { external_id: 'bob', admin: true } }],
      422,
      'unknown_field',
      'admin',
    );
    await refused(['POST', path(), { key, raw: '{"external_id":' }], 400, 'invalid_json', null);
  });

  it('answers 404 for an unknown org or member', async () => {
    await refused(
      ['POST', '/v1/orgs/org_nope/members', { body: { external_id: 'bob' } }],
      404,
      'not_found',
      'org',
    );
    await refused(['PATCH', `${path()}/mem_nope`, { key, body: { name: 'Bob' } }], 404, 'not_found');
    await refused(['DELETE', `${path()}/mem_nope`, { key }], 404, 'not_found');
    await refused(['POST', `${path()}/mem_nope/erase`, { key }], 404, 'not_found');
  });

  it('refuses a bad change of a member', async () => {
    await refused(
      ['PATCH', `${path()}/${memberId}`, { key, body: { role: 'root' } }],
      422,
      'invalid_field',
      'role',
    );
    await refused(
      ['PATCH', `${path()}/${memberId}`, { key, body: { external_id: 'mallory' } }],
      422,
      'unknown_field',
      'external_id',
    );
  });

  it('refuses a duplicate external_id with 409', async () => {
    await refused(['POST', path(), { key, body: { external_id: 'alice' } }], 409, 'conflict', 'external_id');
  });
});

describe('api keys', () => {
  const path = () => `/v1/orgs/${org.id}/api_keys`;

  it('names bad fields', async () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{}, 'name', 'invalid_field'],
      [{ name: 'ci', role: 'root' }, 'role', 'invalid_field'],
      [{ name: 'ci', expires_at: 'tomorrow' }, 'expires_at', 'invalid_field'],
      [{ name: 'ci', expires_at: '2020-01-01T00:00:00Z' }, 'expires_at', 'invalid_field'],
      [{ name: 'ci', scopes: ['all'] }, 'scopes', 'unknown_field'],
    ];
    for (const [body, param, code] of cases) {
      await refused(['POST', path(), { key, body }], 422, code, param);
    }
  });

  it('answers 404 for an unknown org or key', async () => {
    await refused(['POST', '/v1/orgs/org_nope/api_keys', { body: { name: 'ci' } }], 404, 'not_found', 'org');
    await refused(['DELETE', `${path()}/key_nope`, { key }], 404, 'not_found', 'key');
  });
});

describe('routes and headers', () => {
  it('answers 404 problem for an unknown route', async () => {
    for (const [method, route] of [
      ['GET', '/v1/nope'],
      ['POST', '/v1/orgs/x/y/z'],
      ['GET', '/nope'],
      ['GET', `/v1/orgs/${org.id}/nope`],
    ] as const) {
      const problem = await refused(
        [method, route, { key, body: method === 'POST' ? {} : undefined }],
        404,
        'not_found',
      );
      expect(problem.detail).toMatch(/No route|not found/);
    }
  });

  it('refuses a malformed Idempotency-Key', async () => {
    for (const idem of ['k'.repeat(256), 'caf\u00e9', '']) {
      await refused(
        [
          'POST',
          `/v1/orgs/${org.id}/members`,
          { key, body: { external_id: 'carol' }, headers: { 'idempotency-key': idem } },
        ],
        400,
        'invalid_header',
        'Idempotency-Key',
      );
    }
  });

  it('carries the request id into the problem and the header', async () => {
    const res = await t.call('POST', '/v1/events', {
      ...rawEvents('{'),
      headers: { 'x-request-id': 'trace-123' },
    });
    expect(res.headers.get('x-request-id')).toBe('trace-123');
    expect(res.body.request_id).toBe('trace-123');
    // Without one, the answer names the id Tally gave the request.
    const own = await t.call('POST', '/v1/events', rawEvents('{'));
    expect(own.headers.get('x-request-id')).toBe(own.body.request_id);
    expect(own.body.request_id).toMatch(/^req_/);
  });
});

describe('cursors', () => {
  const cursorOf = (key: unknown) => Buffer.from(JSON.stringify(key)).toString('base64url');
  /** Cursors of the right length whose parts are of the wrong kind or out of range. */
  const crafted = [
    ['x'],
    [-1],
    ['99999999999999999999999'],
    ['2026-02-31T00:00:00.000Z', 'x'],
    ['2026-13-01T00:00:00.000Z', 'x'],
    ['not a time', 'x'],
    ['x', 'y'],
    [1.5, 'x'],
    ['12', 'x'],
    ['a'.repeat(2000)],
    // A NUL, which no Postgres text can hold, in a text part.
    ['\u0000'],
    ['2026-01-01T00:00:00.000Z', '\u0000'],
  ].map(cursorOf);

  it('answers 400 invalid_cursor, never 5xx, on every list that pages with a cursor', async () => {
    const endpoint = await t.call('POST', `/v1/orgs/${org.id}/webhook_endpoints`, {
      body: { url: 'https://example.com/hooks' },
    });
    expect(endpoint.status).toBe(201);
    const doc = (await t.call('GET', '/openapi.json')).body as {
      paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>>;
    };
    const ids: Record<string, string> = {
      org: org.id,
      member: memberId,
      endpoint: endpoint.body.id,
      conversation: 'conv-1',
    };
    const lists = Object.entries(doc.paths)
      .filter(([, ops]) => ops.get?.parameters?.some((p) => p.in === 'query' && p.name === 'cursor'))
      .map(([path]) => path.replace(/\{(\w+)\}/g, (_, name: string) => ids[name] ?? `unknown-${name}`));
    // The ledger, grants, payments, alerts and deliveries cast their cursor in SQL.
    for (const must of ['/ledger', '/grants', '/payments', '/alerts', '/deliveries']) {
      expect(lists.some((path) => path.endsWith(must))).toBe(true);
    }
    for (const path of lists) {
      for (const cursor of crafted) {
        const res = await t.call('GET', `${path}?cursor=${cursor}`);
        expect(res.status, `${path} with cursor ${cursor}`).toBeLessThan(500);
        if (res.status === 400) expect(res.body, path).toMatchObject({ param: 'cursor' });
      }
    }
    // Each of these parts is of the wrong kind for the list: refused before it reaches SQL.
    const refused: [string, unknown[]][] = [
      [`/v1/orgs/${org.id}/ledger`, ['x']],
      [`/v1/orgs/${org.id}/ledger`, ['99999999999999999999999']],
      [`/v1/orgs/${org.id}/alerts`, [-1]],
      [`/v1/orgs/${org.id}/webhook_endpoints/${endpoint.body.id}/deliveries`, ['x']],
      [`/v1/orgs/${org.id}/grants`, ['2026-02-31T00:00:00.000Z', 'grt_1']],
      [`/v1/orgs/${org.id}/payments`, ['not a time', 'pay_1']],
      [`/v1/orgs/${org.id}/usage/events?range=7d&`, ['2026-02-31T00:00:00.000000Z', '1']],
    ];
    for (const [path, key] of refused) {
      const res = await t.call('GET', `${path}${path.endsWith('&') ? '' : '?'}cursor=${cursorOf(key)}`);
      expect(res.status, `${path} with ${JSON.stringify(key)}`).toBe(400);
      expect(res.body).toMatchObject({ code: 'invalid_cursor', param: 'cursor' });
    }
  });
});

describe('grants', () => {
  it('refuses a grant of a billion credits or more, so no balance can overflow', async () => {
    const grant = (amount: string) =>
      t.call('POST', `/v1/orgs/${org.id}/grants`, { body: { kind: 'bonus', amount_credits: amount } });
    for (const amount of ['1000000000', '999999999999', '1000000000.5']) {
      const res = await grant(amount);
      expect(res.status, amount).toBe(422);
      expect(res.body).toMatchObject({ code: 'invalid_field', param: 'amount_credits' });
    }
    expect((await grant('999999999.999999')).status).toBe(201);
    // A cycle's plan allowance is a grant each cycle: the same ceiling.
    const plan = await t.call('PATCH', `/v1/orgs/${org.id}`, {
      body: { plan_allowance_credits: '1000000000' },
    });
    expect(plan.status).toBe(422);
    expect(plan.body.param).toBe('plan_allowance_credits');
  });

  it('refuses an expiry past the year 9999 in UTC, naming it', async () => {
    const far = { kind: 'promo', amount_credits: '5', expires_at: '9999-12-31T23:59:59-12:00' };
    await refused(['POST', `/v1/orgs/${org.id}/grants`, { body: far }], 422, 'invalid_field', 'expires_at');
    await refused(
      ['POST', `/v1/orgs/${org.id}/api_keys`, { key, body: { name: 'ci', expires_at: far.expires_at } }],
      422,
      'invalid_field',
      'expires_at',
    );
  });
});
