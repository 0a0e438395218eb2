/**
 * A real Tally per test file: a fresh database copied from the run's template, the real HTTP app,
 * called in-process through fetch semantics (no sockets unless a test listens).
 */

import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { inject } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { prepare, type Tally } from '../../src/server.ts';
import { type Db, openEmbedded, openServer } from '../../src/store/db.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    template: string;
    prefix: string;
  }
}

export const onServer = Boolean(process.env.TALLY_TEST_DATABASE_URL);

export async function freshDb(): Promise<{ db: Db; url?: string }> {
  const serverUrl = process.env.TALLY_TEST_DATABASE_URL;
  if (!serverUrl)
    return { db: await openEmbedded({ loadDataDir: new Blob([readFileSync(inject('template'))]) }) };
  const name = `${inject('prefix')}${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name} TEMPLATE ${inject('template')}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return { db: await openServer(url.toString(), { max: 12 }), url: url.toString() };
}

export const OPERATOR_KEY = 'tally_op_test_operator_key_0123456789abcdef';

export interface Response<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface TestTally extends Tally {
  url?: string;
  call<T = any>(
    method: string,
    path: string,
    options?: { key?: string; body?: unknown; raw?: string; headers?: Record<string, string> },
  ): Promise<Response<T>>;
  close(): Promise<void>;
}

export async function startTally(env: Record<string, string> = {}): Promise<TestTally> {
  const { db, url } = await freshDb();
  // Webhook receivers in tests listen on 127.0.0.1.
  const config = loadConfig({
    TALLY_ADMIN_KEY: OPERATOR_KEY,
    TALLY_LOG: 'off',
    TALLY_WEBHOOK_ALLOW_PRIVATE: '1',
    ...env,
  });
  const tally = await prepare(config, db);
  return {
    ...tally,
    url,
    async call(method, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      const key = options.key === undefined ? OPERATOR_KEY : options.key;
      if (key) headers.authorization = `Bearer ${key}`;
      let payload: string | undefined = options.raw;
      if (options.body !== undefined) payload = JSON.stringify(options.body);
      if (payload !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
      const res = await tally.app.request(path, { method, headers, body: payload });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {}
      return { status: res.status, body: body as never, headers: res.headers };
    },
    close: () => db.close(),
  };
}

/** An org with an admin key, the usual starting point of a test. */
export async function createOrgWithKey(t: TestTally, overrides: Record<string, unknown> = {}) {
  const org = await t.call('POST', '/v1/orgs', {
    body: { name: 'Acme', currency: 'EUR', timezone: 'Europe/Berlin', ...overrides },
  });
  if (org.status !== 201) throw new Error(`org: ${JSON.stringify(org.body)}`);
  const key = await t.call('POST', `/v1/orgs/${org.body.id}/api_keys`, { body: { name: 'backend' } });
  if (key.status !== 201) throw new Error(`key: ${JSON.stringify(key.body)}`);
  return { org: org.body, key: key.body.key as string, keyId: key.body.id as string };
}

export const minutesAgo = (n: number) => new Date(Date.now() - n * 60_000).toISOString();

/**
 * An event time in the month and day the test runs in, wherever it runs: a minute ago falls in the
 * month before during a month's first minute, and a limit or cycle test then counts nothing.
 */
export const justNow = () => new Date().toISOString();

/** A new Idempotency-Key header, as a delta increment (`usage`) must carry. */
export const freshIdempotencyKey = (): Record<string, string> => ({
  'idempotency-key': `test-${randomUUID()}`,
});
