/**
 * DATABASE_READ_URL: dashboard reads (usage reports, exports) go to the read pool, writes and
 * everything else to the primary. No replica here, so the read URL is the same server database
 * through a role that may only SELECT: the answers must equal those of a Tally without a read pool,
 * and taking the role's SELECT away must break the usage reads (proving they go through it) and
 * nothing else.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { prepare, type Tally } from '../src/server.ts';
import { type Db, openServer } from '../src/store/db.ts';
import { freshDb, minutesAgo, OPERATOR_KEY, onServer } from './support/harness.ts';

const role = `tally_read_${randomBytes(4).toString('hex')}`;
let primaryUrl: string;
let plain: { tally: Tally; db: Db };
let withRead: { tally: Tally; db: Db };
let admin: pg.Client;
let orgId = '';

async function call(tally: Tally, method: string, path: string, body?: unknown) {
  const res = await tally.app.request(path, {
    method,
    headers: {
      authorization: `Bearer ${OPERATOR_KEY}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, text };
}

const paths = () => {
  const base = `/v1/orgs/${orgId}`;
  const today = new Date().toISOString().slice(0, 10);
  return [
    `${base}/usage/summary?range=30d`,
    `${base}/usage/summary?range=7d&feature=Chat`,
    `${base}/usage/breakdown?range=30d&by=member&limit=50`,
    `${base}/usage/breakdown?range=30d&by=tool&limit=50`,
    `${base}/usage/timeseries?range=7d&split=feature`,
    `${base}/usage/events?range=30d&limit=20`,
    `${base}/usage/daily`,
    `${base}/usage/monthly`,
    `${base}/usage/days/${today}`,
    `${base}/usage/patterns?range=30d`,
    `${base}/usage/forecast`,
    `${base}/usage/anomalies`,
    `${base}/usage/recommendations?range=30d`,
    `${base}/usage/files?range=30d`,
    `${base}/conversations/conv-1`,
    `${base}/usage/export?format=csv&range=30d`,
  ];
};

/** Each answer without its request id (the only part that differs between two requests). */
async function answers(tally: Tally) {
  const out: [string, number, string][] = [];
  for (const path of paths()) {
    const r = await call(tally, 'GET', path);
    let text = r.text.replace(/"request_id":"[^"]*"/, '');
    // A forecast moves with the clock (as_of, the elapsed part of today): compare what it rests on.
    if (path.includes('/forecast') && r.status === 200) {
      const { history_days, weekday_factors, trend_per_day, today } = JSON.parse(r.text);
      text = JSON.stringify({ history_days, weekday_factors, trend_per_day, today: today.actual });
    }
    out.push([path, r.status, text]);
  }
  return out;
}

async function start(readUrl?: string) {
  const db = await openServer(primaryUrl, { max: 4, ...(readUrl ? { readUrl } : {}) });
  const tally = await prepare(loadConfig({ TALLY_ADMIN_KEY: OPERATOR_KEY, TALLY_LOG: 'off' }), db);
  return { tally, db };
}

describe.skipIf(!onServer)('DATABASE_READ_URL on the Postgres server', () => {
  beforeAll(async () => {
    const fresh = await freshDb();
    primaryUrl = fresh.url!;
    await fresh.db.close();
    admin = new pg.Client({ connectionString: primaryUrl });
    await admin.connect();
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'reader'`);
    await admin.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
    await admin.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`);
    const readUrl = new URL(primaryUrl);
    readUrl.username = role;
    readUrl.password = 'reader';
    plain = await start();
    withRead = await start(readUrl.toString());

    const org = await call(plain.tally, 'POST', '/v1/orgs', {
      name: 'Acme',
      currency: 'EUR',
      timezone: 'Europe/Berlin',
    });
    orgId = JSON.parse(org.text).id;
    const events = Array.from({ length: 60 }, (_, i) => ({
      id: `e${i}`,
      org_id: orgId,
      member: ['ana', 'bo', 'cy'][i % 3],
      feature: i % 2 ? 'Chat' : 'Search',
      provider: 'openai',
      model: i % 3 ? 'gpt-4o' : 'gpt-4o-mini',
      occurred_at: minutesAgo(5 + i * 397),
      ...(i % 4 === 0
        ? { conversation_id: 'conv-1', metadata: { tool: 'web_search', files: [{ id: 'f1' }] } }
        : {}),
      usage: { input_tokens: 2_000 + i * 31, output_tokens: 300 + i },
    }));
    expect((await call(plain.tally, 'POST', '/v1/events', { events })).status).toBe(200);
  });

  afterAll(async () => {
    await plain?.db.close();
    await withRead?.db.close();
    await admin?.query(`DROP OWNED BY ${role}`);
    await admin?.end();
    const server = new pg.Client({ connectionString: process.env.TALLY_TEST_DATABASE_URL });
    await server.connect();
    await server.query(`DROP ROLE IF EXISTS ${role}`);
    await server.end();
  });

  it('answers every dashboard read through the read pool exactly as without one', async () => {
    const before = await answers(plain.tally);
    for (const [path, status] of before) expect([path, status]).toEqual([path, 200]);
    expect(await answers(withRead.tally)).toEqual(before);
    // The read pool's connections are the reader's, named for what they do.
    const { rows } = await admin.query(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND usename = $1 AND application_name = $2',
      [role, 'tally-read'],
    );
    expect(rows[0].n).toBeGreaterThan(0);
  });

  it('fails the usage reads, and only them, when the read pool may not read', async () => {
    await admin.query(`REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM ${role}`);
    try {
      for (const path of paths()) {
        const r = await call(withRead.tally, 'GET', path);
        expect([path, r.status >= 500]).toEqual([path, true]);
      }
      // Writes and the other reads use the primary.
      const more = {
        id: 'late',
        org_id: orgId,
        member: 'ana',
        feature: 'Chat',
        provider: 'openai',
        model: 'gpt-4o',
      };
      const sent = await call(withRead.tally, 'POST', '/v1/events', {
        events: [{ ...more, occurred_at: minutesAgo(1), usage: { input_tokens: 10, output_tokens: 10 } }],
      });
      expect(sent.status).toBe(200);
      expect((await call(withRead.tally, 'GET', `/v1/orgs/${orgId}/balance`)).status).toBe(200);
      expect((await call(withRead.tally, 'GET', `/v1/orgs/${orgId}/ledger`)).status).toBe(200);
    } finally {
      await admin.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`);
    }
    expect(await answers(withRead.tally)).toEqual(await answers(plain.tally));
  });
});
