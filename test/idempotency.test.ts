/**
 * Idempotency: an event id counts once per org whatever the retries, and an Idempotency-Key
 * answers the same request the same way. On a Postgres server the same holds under concurrency:
 * many copies of a batch at once, overlapping batches in any order, one key sent many times.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestAnswer } from '../src/http/routes/events.ts';
import { ProblemSchema } from '../src/http/schemas.ts';
import { checkLedger } from '../src/services/ledger/checkLedger.ts';
import {
  createOrgWithKey,
  minutesAgo,
  OPERATOR_KEY,
  onServer,
  type Response,
  startTally,
  type TestTally,
} from './support/harness.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t?.close());

type Org = Awaited<ReturnType<typeof createOrgWithKey>>;

// One fixed time for the whole file: a retry must carry exactly the same content.
const OCCURRED_AT = minutesAgo(2);

const event = (overrides: Record<string, unknown> = {}) => ({
  id: 'evt-1',
  member: 'alice',
  feature: 'Chat',
  provider: 'openai',
  model: 'gpt-4o',
  occurred_at: OCCURRED_AT,
  usage: { input_tokens: 1000, output_tokens: 200 },
  ...overrides,
});

const send = (key: string, events: unknown[], headers: Record<string, string> = {}) =>
  t.call('POST', '/v1/events', { key, body: { events }, headers });

/** Totals of the rollup and of the raw events of one org, as exact integers. */
async function totals(orgId: string) {
  const [rollup] = await t.db.query<Record<string, string | null>>(
    `SELECT sum(calls)::text AS calls, sum(credits)::text AS credits, sum(cost)::text AS cost,
            sum(input_tokens)::text AS input_tokens, sum(output_tokens)::text AS output_tokens
       FROM usage_hourly WHERE org_id = $1`,
    [orgId],
  );
  const [events] = await t.db.query<Record<string, string | null>>(
    `SELECT count(*)::text AS calls, sum(credits)::text AS credits, sum(cost)::text AS cost
       FROM events WHERE org_id = $1`,
    [orgId],
  );
  return { rollup: rollup!, events: events! };
}

/** "1.035" at scale 6 -> 1035000n: amounts compared exactly, never as floats. */
function units(decimal: string, scale = 6): bigint {
  const [whole, fraction = ''] = decimal.split('.');
  expect(fraction.length).toBeLessThanOrEqual(scale);
  return BigInt(whole!) * 10n ** BigInt(scale) + BigInt(fraction.padEnd(scale, '0') || '0');
}

function expectProblem(res: Response, status: number, code: string) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(ProblemSchema.parse(res.body).code).toBe(code);
  return res.body;
}

describe('event ids', () => {
  let a: Org;
  beforeAll(async () => {
    a = await createOrgWithKey(t, { name: 'Idem A' });
  });

  it('answers a retry with the same content as duplicate and changes nothing', async () => {
    const e = event({ id: 'same-1', metadata: { trace: 'x' } });
    const first = await send(a.key, [e]);
    expect(first.body.results[0], JSON.stringify(first.body)).toMatchObject({ status: 'accepted' });
    const after = await totals(a.org.id);
    expect(after.rollup.calls).toBe('1');

    const retry = await send(a.key, [e]);
    expect(retry.status).toBe(200);
    IngestAnswer.parse(retry.body);
    const { credits, cost, currency } = first.body.results[0];
    expect(retry.body.results[0]).toEqual({
      id: 'same-1',
      status: 'duplicate',
      credits,
      cost,
      currency,
      error: null,
    });
    expect(await totals(a.org.id)).toEqual(after);
  });

  it('treats the same content spelled differently as the same event', async () => {
    const at = new Date(Date.now() - 3 * 60_000);
    at.setUTCMilliseconds(0);
    const first = await send(a.key, [
      event({ id: 'spelled', occurred_at: at.toISOString(), usage: { input_tokens: 10, output_tokens: 5 } }),
    ]);
    expect(first.body.results[0].status).toBe('accepted');
    const before = await totals(a.org.id);
    // Same instant in another offset, zero counts spelled out, keys in another order.
    const plus2 = new Date(at.getTime() + 2 * 3600_000).toISOString().replace('.000Z', '+02:00');
    const retry = await send(a.key, [
      {
        usage: { output_tokens: 5, cache_read_tokens: 0, input_tokens: 10 },
        occurred_at: plus2,
        model: 'gpt-4o',
        provider: 'openai',
        feature: 'Chat',
        member: 'alice',
        id: 'spelled',
      },
    ]);
    expect(retry.body.results[0], JSON.stringify(retry.body)).toMatchObject({ status: 'duplicate' });
    expect(await totals(a.org.id)).toEqual(before);
  });

  it('rejects the same id with other content as idempotency_conflict, keeping the first', async () => {
    await send(a.key, [event({ id: 'conflict-1' })]);
    const before = await totals(a.org.id);
    const [stored] = await t.db.query('SELECT * FROM events WHERE org_id = $1 AND id = $2', [
      a.org.id,
      'conflict-1',
    ]);
    for (const other of [
      event({ id: 'conflict-1', usage: { input_tokens: 1001, output_tokens: 200 } }),
      event({ id: 'conflict-1', member: 'bob' }),
      event({ id: 'conflict-1', model: 'gpt-4o-mini' }),
      event({ id: 'conflict-1', occurred_at: minutesAgo(30) }),
      event({ id: 'conflict-1', metadata: { retry: true } }),
    ]) {
      const res = await send(a.key, [other]);
      expect(res.status).toBe(200);
      expect(res.body.results[0]).toMatchObject({
        id: 'conflict-1',
        status: 'rejected',
        credits: null,
        cost: null,
        error: { code: 'idempotency_conflict' },
      });
    }
    expect(await totals(a.org.id)).toEqual(before);
    const [still] = await t.db.query('SELECT * FROM events WHERE org_id = $1 AND id = $2', [
      a.org.id,
      'conflict-1',
    ]);
    expect(still).toEqual(stored);
  });

  it('creates no member or workspace for an event it rejects as a conflict', async () => {
    await send(a.key, [event({ id: 'conflict-2' })]);
    const count = async (table: string) => {
      const [row] = await t.db.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM ${table} WHERE org_id = $1`,
        [a.org.id],
      );
      return row!.n;
    };
    const before = [await count('members'), await count('workspaces')];
    const res = await send(a.key, [
      event({ id: 'conflict-2', member: 'never-seen', workspace: 'never-seen-ws' }),
      event({ id: 'fresh-2', member: 'newcomer', workspace: 'new-ws' }),
    ]);
    expect(res.body.results.map((r: { status: string }) => r.status)).toEqual(['rejected', 'accepted']);
    expect(res.body.results[0].error.code).toBe('idempotency_conflict');
    // Only the accepted event's member and workspace are new.
    expect([await count('members'), await count('workspaces')]).toEqual(
      before.map((n) => String(Number(n) + 1)),
    );
    const names = await t.db.query<{ external_id: string }>(
      `SELECT external_id FROM members WHERE org_id = $1 AND external_id IN ('never-seen', 'newcomer')
       UNION ALL SELECT external_id FROM workspaces WHERE org_id = $1 AND external_id IN ('never-seen-ws', 'new-ws')`,
      [a.org.id],
    );
    expect(names.map((n) => n.external_id).sort()).toEqual(['new-ws', 'newcomer']);
  });

  it('counts duplicates inside one batch once', async () => {
    const before = await totals(a.org.id);
    const res = await send(a.key, [
      event({ id: 'in-batch' }),
      event({ id: 'other-in-batch' }),
      event({ id: 'in-batch' }),
      event({ id: 'in-batch', usage: { input_tokens: 5 } }),
      event({ id: 'in-batch' }),
    ]);
    expect(res.body.results.map((r: { id: string; status: string }) => `${r.id}:${r.status}`)).toEqual([
      'in-batch:accepted',
      'other-in-batch:accepted',
      'in-batch:duplicate',
      'in-batch:rejected',
      'in-batch:duplicate',
    ]);
    expect(res.body.results[3].error.code).toBe('idempotency_conflict');
    expect(res.body.results[2].credits).toBe(res.body.results[0].credits);
    const after = await totals(a.org.id);
    expect(BigInt(after.rollup.calls!) - BigInt(before.rollup.calls!)).toBe(2n);
    expect(BigInt(after.rollup.credits!) - BigInt(before.rollup.credits!)).toBe(
      units(res.body.results[0].credits) + units(res.body.results[1].credits),
    );
  });

  it('keeps event ids apart per org', async () => {
    const b = await createOrgWithKey(t, { name: 'Idem B' });
    const e = event({ id: 'shared-id' });
    expect((await send(a.key, [e])).body.results[0].status).toBe('accepted');
    expect((await send(b.key, [e])).body.results[0].status).toBe('accepted');
    expect((await send(b.key, [e])).body.results[0].status).toBe('duplicate');
  });
});

describe('Idempotency-Key', () => {
  let a: Org;
  beforeAll(async () => {
    a = await createOrgWithKey(t, { name: 'Header A' });
  });
  const members = () => `/v1/orgs/${a.org.id}/members`;
  const raw = (path: string, body: string, headers: Record<string, string>, key = a.key) =>
    t.app.request(path, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
      body,
    });

  it('answers the same request with the same answer, byte for byte, without doing it again', async () => {
    const body = JSON.stringify({ external_id: 'idem-member', name: 'Ida', role: 'viewer' });
    const first = await raw(members(), body, { 'idempotency-key': 'member-1' });
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const firstText = await first.text();
    for (let i = 0; i < 3; i++) {
      const again = await raw(members(), body, { 'idempotency-key': 'member-1' });
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await again.text()).toBe(firstText);
    }
    const rows = await t.db.query(
      "SELECT id FROM members WHERE org_id = $1 AND external_id = 'idem-member'",
      [a.org.id],
    );
    expect(rows).toHaveLength(1);
    const audit = await t.db.query(
      "SELECT 1 FROM audit_log WHERE org_id = $1 AND action = 'member.created'",
      [a.org.id],
    );
    expect(audit).toHaveLength(1);
  });

  it('replays events answers too, so a retried batch reports accepted as the first time', async () => {
    const batch = { events: [event({ id: 'hdr-1' }), event({ id: 'hdr-2' })] };
    const first = await send(a.key, batch.events, { 'idempotency-key': 'batch-1' });
    const again = await send(a.key, batch.events, { 'idempotency-key': 'batch-1' });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(again.body.results.map((r: { status: string }) => r.status)).toEqual(['accepted', 'accepted']);
    // Without the header the event ids still protect the count.
    const plain = await send(a.key, batch.events);
    expect(plain.body.results.map((r: { status: string }) => r.status)).toEqual(['duplicate', 'duplicate']);
  });

  it('answers 409 for the same key with another body, path or method, doing nothing', async () => {
    await raw(members(), JSON.stringify({ external_id: 'k2-member' }), { 'idempotency-key': 'k2' });
    const before = await t.db.query('SELECT id FROM members WHERE org_id = $1 ORDER BY id', [a.org.id]);
    const other = await t.call('POST', members(), {
      key: a.key,
      body: { external_id: 'k2-other' },
      headers: { 'idempotency-key': 'k2' },
    });
    const problem = expectProblem(other, 409, 'idempotency_key_reused');
    expect(problem.param).toBe('Idempotency-Key');
    const otherPath = await t.call('POST', `/v1/orgs/${a.org.id}/api_keys`, {
      key: a.key,
      body: { external_id: 'k2-member' },
      headers: { 'idempotency-key': 'k2' },
    });
    expectProblem(otherPath, 409, 'idempotency_key_reused');
    const otherQuery = await t.call('POST', `${members()}?x=1`, {
      key: a.key,
      raw: JSON.stringify({ external_id: 'k2-member' }),
      headers: { 'idempotency-key': 'k2' },
    });
    expectProblem(otherQuery, 409, 'idempotency_key_reused');
    expect(await t.db.query('SELECT id FROM members WHERE org_id = $1 ORDER BY id', [a.org.id])).toEqual(
      before,
    );
  });

  it('replays a refusal as the same problem+json', async () => {
    const body = JSON.stringify({ external_id: 'x', role: 'emperor' });
    const first = await raw(members(), body, { 'idempotency-key': 'bad-1' });
    expect(first.status).toBe(422);
    const again = await raw(members(), body, { 'idempotency-key': 'bad-1' });
    expect(again.status).toBe(422);
    expect(again.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.text()).toBe(await first.text());
  });

  it('keeps keys apart per caller', async () => {
    const other = await t.call('POST', `/v1/orgs/${a.org.id}/api_keys`, {
      key: a.key,
      body: { name: 'second' },
    });
    const body = JSON.stringify({ external_id: 'per-caller-1' });
    expect((await raw(members(), body, { 'idempotency-key': 'shared' })).status).toBe(201);
    const second = await raw(
      members(),
      JSON.stringify({ external_id: 'per-caller-2' }),
      { 'idempotency-key': 'shared' },
      other.body.key,
    );
    expect(second.status).toBe(201);
    expect(second.headers.get('idempotent-replayed')).toBeNull();
  });

  it('answers 409 in progress while the first request runs, and lets a stale claim be taken over', async () => {
    const principal = a.keyId;
    await t.db.query('INSERT INTO idempotency_keys (principal, key, request_hash) VALUES ($1, $2, $3)', [
      principal,
      'running',
      'whatever',
    ]);
    const running = await t.call('POST', members(), {
      key: a.key,
      body: { external_id: 'late' },
      headers: { 'idempotency-key': 'running' },
    });
    // The claim's body differs from ours, so ours is another request: reused. Same body: in progress.
    expectProblem(running, 409, 'idempotency_key_reused');
    const body = JSON.stringify({ external_id: 'late' });
    const first = await raw(members(), body, { 'idempotency-key': 'claimed' });
    expect(first.status).toBe(201);
    await t.db.query(
      "UPDATE idempotency_keys SET status = NULL, response = NULL WHERE principal = $1 AND key = 'claimed'",
      [principal],
    );
    const inProgress = await raw(members(), body, { 'idempotency-key': 'claimed' });
    expect(inProgress.status).toBe(409);
    expect(inProgress.headers.get('retry-after')).toBe('1');
    expect(((await inProgress.json()) as { code: string }).code).toBe('idempotency_key_in_progress');

    // A claim left behind by a process that died long ago does not block the key for ever.
    await t.db.query(
      "UPDATE idempotency_keys SET created_at = now() - interval '1 hour' WHERE principal = $1 AND key = 'running'",
      [principal],
    );
    const takeover = await t.call('POST', members(), {
      key: a.key,
      body: { external_id: 'after-takeover' },
      headers: { 'idempotency-key': 'running' },
    });
    expect(takeover.status, JSON.stringify(takeover.body)).toBe(201);
    const replay = await t.call('POST', members(), {
      key: a.key,
      body: { external_id: 'after-takeover' },
      headers: { 'idempotency-key': 'running' },
    });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
  });

  it('does the work once when one key is sent 10 times at once', async () => {
    const batch = Array.from({ length: 50 }, (_, i) => event({ id: `burst-${i}`, member: `m${i % 7}` }));
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => send(a.key, batch, { 'idempotency-key': 'burst' })),
    );
    for (const res of responses) expect([200, 409], JSON.stringify(res.body)).toContain(res.status);
    const fresh = responses.filter((r) => r.status === 200 && !r.headers.get('idempotent-replayed'));
    expect(fresh).toHaveLength(1);
    expect(fresh[0]!.body.results.every((r: { status: string }) => r.status === 'accepted')).toBe(true);
    for (const res of responses) {
      if (res.status === 200) expect(res.body).toEqual(fresh[0]!.body);
      else expect(res.body.code).toBe('idempotency_key_in_progress');
    }
    const [row] = await t.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM events WHERE org_id = $1 AND id LIKE 'burst-%'",
      [a.org.id],
    );
    expect(row!.n).toBe(50);
    // And one member created through one key at once, ten times.
    const memberCalls = await Promise.all(
      Array.from({ length: 10 }, () =>
        raw(members(), JSON.stringify({ external_id: 'burst-member' }), { 'idempotency-key': 'burst-m' }),
      ),
    );
    expect(memberCalls.filter((r) => r.status === 201 && !r.headers.get('idempotent-replayed'))).toHaveLength(
      1,
    );
    for (const r of memberCalls) expect([201, 409]).toContain(r.status);
    const rows = await t.db.query(
      "SELECT 1 FROM members WHERE org_id = $1 AND external_id = 'burst-member'",
      [a.org.id],
    );
    expect(rows).toHaveLength(1);
  });
});

describe.runIf(onServer)('under concurrency (Postgres server)', () => {
  const shuffle = <T>(list: T[], seed: number): T[] => {
    const out = [...list];
    let s = seed;
    for (let i = out.length - 1; i > 0; i--) {
      s = (s * 1_103_515_245 + 12_345) % 2 ** 31;
      const j = s % (i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  };

  it('answers a retried batch while the org is busy: repeating recorded events takes no balance lock', async () => {
    const org = await createOrgWithKey(t, { name: 'Busy retry' });
    const batch = Array.from({ length: 20 }, (_, i) => event({ id: `busy-${i}`, member: `user-${i % 3}` }));
    const first = IngestAnswer.parse((await send(org.key, batch)).body);
    expect(first.results.every((r) => r.status === 'accepted')).toBe(true);
    const before = await totals(org.org.id);
    // Another writer of the org (a hold, a batch) holds its balance row meanwhile.
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let locked!: () => void;
    const lockTaken = new Promise<void>((resolve) => {
      locked = resolve;
    });
    const holder = t.db.transaction(async (tx) => {
      await tx.query('SELECT 1 FROM org_balances WHERE org_id = $1 FOR UPDATE', [org.org.id]);
      locked();
      await released;
    });
    await lockTaken;
    try {
      const retry = send(org.key, batch);
      const answer = await Promise.race([
        retry,
        new Promise<'waiting'>((resolve) => setTimeout(() => resolve('waiting'), 3_000)),
      ]);
      expect(answer, 'the retry waited for the lock').not.toBe('waiting');
      const results = IngestAnswer.parse((answer as Response).body).results;
      expect(results.map((r) => [r.status, r.credits])).toEqual(
        first.results.map((r) => ['duplicate', r.credits]),
      );
    } finally {
      release();
      await holder;
    }
    expect(await totals(org.org.id)).toEqual(before);
    expect(await checkLedger(t.db, org.org.id)).toEqual([]);
  });

  it('counts a batch of 200 sent 10 times at once exactly once', async () => {
    const org = await createOrgWithKey(t, { name: 'Concurrent 1' });
    const batch = Array.from({ length: 200 }, (_, i) =>
      event({
        id: `c-${i}`,
        member: `user-${i % 13}`,
        feature: ['Chat', 'Search', 'Summaries'][i % 3],
        workspace: `ws-${i % 5}`,
        usage: { input_tokens: 100 + i, output_tokens: 10 + (i % 17) },
      }),
    );
    const responses = await Promise.all(Array.from({ length: 10 }, () => send(org.key, batch)));
    let accepted = 0n;
    const acceptedIds = new Set<string>();
    for (const res of responses) {
      expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(200);
      const answer = IngestAnswer.parse(res.body);
      expect(answer.results.map((r) => r.id)).toEqual(batch.map((e) => e.id));
      for (const r of answer.results) {
        expect(['accepted', 'duplicate'], JSON.stringify(r)).toContain(r.status);
        if (r.status === 'accepted') {
          expect(acceptedIds.has(r.id)).toBe(false);
          acceptedIds.add(r.id);
          accepted += units(r.credits!);
        }
      }
    }
    expect(acceptedIds.size).toBe(200);
    const sums = await totals(org.org.id);
    expect(sums.events.calls).toBe('200');
    expect(sums.rollup.calls).toBe('200');
    expect(BigInt(sums.rollup.credits!)).toBe(accepted);
    expect(BigInt(sums.events.credits!)).toBe(accepted);
    expect(sums.rollup.cost).toBe(sums.events.cost);
    // The money side counted it once too: the draw-down and its debit and overage entries.
    const [ledger] = await t.db.query<{ consumed: string; overage: string; debits: string }>(
      `SELECT b.consumed::text, b.overage::text,
              (SELECT (-sum(amount))::text FROM ledger_entries
                WHERE org_id = $1 AND kind IN ('debit', 'overage')) AS debits
         FROM org_balances b WHERE b.org_id = $1`,
      [org.org.id],
    );
    expect(BigInt(ledger!.consumed) + BigInt(ledger!.overage)).toBe(accepted);
    expect(BigInt(ledger!.debits)).toBe(accepted);
    expect(await checkLedger(t.db, org.org.id)).toEqual([]);
    const members = await t.db.query('SELECT external_id FROM members WHERE org_id = $1', [org.org.id]);
    expect(members).toHaveLength(13);
    const workspaces = await t.db.query('SELECT external_id FROM workspaces WHERE org_id = $1', [org.org.id]);
    expect(workspaces).toHaveLength(5);
  });

  it('counts each id once across 10 overlapping batches in different orders, without deadlocks', async () => {
    const org = await createOrgWithKey(t, { name: 'Concurrent 2' });
    const all = Array.from({ length: 300 }, (_, i) =>
      event({
        id: `o-${i}`,
        member: `user-${i % 29}`,
        workspace: `ws-${i % 7}`,
        usage: { input_tokens: 50 + i },
      }),
    );
    // Each batch: 150 of the 300 ids (windows that overlap), shuffled differently.
    const batches = Array.from({ length: 10 }, (_, b) =>
      shuffle(
        all.filter((_, i) => (i + b * 30) % 300 < 150),
        b + 1,
      ),
    );
    const responses = await Promise.all(batches.map((batch) => send(org.key, batch)));
    const acceptedCount = new Map<string, number>();
    let accepted = 0n;
    responses.forEach((res, b) => {
      expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(200);
      const answer = IngestAnswer.parse(res.body);
      expect(answer.results.map((r) => r.id)).toEqual(batches[b]!.map((e) => e.id));
      for (const r of answer.results) {
        expect(['accepted', 'duplicate'], JSON.stringify(r)).toContain(r.status);
        if (r.status === 'accepted') {
          acceptedCount.set(r.id, (acceptedCount.get(r.id) ?? 0) + 1);
          accepted += units(r.credits!);
        }
      }
    });
    const covered = new Set(batches.flat().map((e) => e.id));
    expect(covered.size).toBe(300);
    expect([...acceptedCount.values()].every((n) => n === 1)).toBe(true);
    expect(acceptedCount.size).toBe(300);
    const sums = await totals(org.org.id);
    expect(sums.events.calls).toBe('300');
    expect(sums.rollup.calls).toBe('300');
    expect(BigInt(sums.rollup.credits!)).toBe(accepted);
    const members = await t.db.query('SELECT 1 FROM members WHERE org_id = $1', [org.org.id]);
    expect(members).toHaveLength(29);
  });

  it('draws each org once when 10 batches naming three orgs race for their balances', async () => {
    // An operator's batch names several orgs and locks them all (lockOrgsForSpend). The batches
    // share no event id and no member, so nothing but those locks orders their draws.
    const orgs = await Promise.all(
      ['Concurrent A', 'Concurrent B', 'Concurrent C'].map((name) =>
        createOrgWithKey(t, { name, plan_allowance_credits: '40' }),
      ),
    );
    const batches = Array.from({ length: 10 }, (_, b) =>
      shuffle(
        orgs.flatMap((org, o) =>
          Array.from({ length: 6 }, (_, k) => ({
            ...event({
              id: `m-${b}-${k}`,
              // A member of its own: no wide rollup row is shared either (they would order the batches).
              member: `racer-${b}`,
              usage: { input_tokens: 20_000 + 7 * k + o, output_tokens: 3_000 },
            }),
            org_id: org.org.id as string,
          })),
        ),
        b + 11,
      ),
    );
    const responses = await Promise.all(batches.map((batch) => send(OPERATOR_KEY, batch)));
    const accepted = new Map<string, bigint>();
    responses.forEach((res, b) => {
      expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(200);
      for (const [i, r] of IngestAnswer.parse(res.body).results.entries()) {
        expect(r.status, JSON.stringify(r)).toBe('accepted');
        const orgId = batches[b]![i]!.org_id;
        accepted.set(orgId, (accepted.get(orgId) ?? 0n) + units(r.credits!));
      }
    });
    for (const org of orgs) {
      const sums = await totals(org.org.id);
      expect(sums.events.calls).toBe('60');
      expect(sums.rollup.calls).toBe('60');
      expect(BigInt(sums.rollup.credits!)).toBe(accepted.get(org.org.id));
      // The plan's 40 credits are drawn once, whichever batch came first; the rest is overage.
      expect(accepted.get(org.org.id)! > units('40')).toBe(true);
      const [ledger] = await t.db.query<{ consumed: string; overage: string }>(
        'SELECT consumed::text, overage::text FROM org_balances WHERE org_id = $1',
        [org.org.id],
      );
      expect(BigInt(ledger!.consumed)).toBe(units('40'));
      expect(BigInt(ledger!.consumed) + BigInt(ledger!.overage)).toBe(accepted.get(org.org.id));
      expect(await checkLedger(t.db, org.org.id)).toEqual([]);
    }
  });

  it('keeps the totals right when retries and conflicts race', async () => {
    const org = await createOrgWithKey(t, { name: 'Concurrent 3' });
    const base = Array.from({ length: 100 }, (_, i) => event({ id: `r-${i}`, usage: { input_tokens: 10 } }));
    // Half the senders change the content: whichever wins, the other side is rejected, never counted twice.
    const variants = Array.from({ length: 8 }, (_, v) =>
      shuffle(v % 2 === 0 ? base : base.map((e) => ({ ...e, usage: { input_tokens: 20 } })), v + 11),
    );
    const responses = await Promise.all(variants.map((batch) => send(org.key, batch)));
    const winners = new Map<string, string>();
    for (const res of responses) {
      expect(res.status).toBe(200);
      for (const r of IngestAnswer.parse(res.body).results) {
        if (r.status === 'accepted') {
          expect(winners.has(r.id)).toBe(false);
          winners.set(r.id, r.credits!);
        } else if (r.status === 'rejected') {
          expect(r.error?.code).toBe('idempotency_conflict');
        }
      }
    }
    expect(winners.size).toBe(100);
    const sums = await totals(org.org.id);
    expect(sums.rollup.calls).toBe('100');
    expect(BigInt(sums.rollup.credits!)).toBe([...winners.values()].reduce((s, c) => s + units(c), 0n));
  });
});
