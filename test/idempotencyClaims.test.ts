/**
 * The claim an Idempotency-Key request holds while it runs: renewed by a heartbeat, so a slow
 * request keeps it however long it takes, and taken over once no heartbeat renewed it for the
 * stale time (its process died), so a resend gets through in seconds rather than minutes.
 */
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppEnv } from '../src/http/env.ts';
import { idempotencyMiddleware } from '../src/http/middleware/idempotency.ts';
import type { Ctx } from '../src/services/context.ts';
import type { Db } from '../src/store/db.ts';
import { freshDb } from './support/harness.ts';

let db: Db;
beforeAll(async () => {
  db = (await freshDb()).db;
});
afterAll(() => db?.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A route that takes `workMs` and counts how often its work ran, behind the middleware. */
function appWith(timing: Parameters<typeof idempotencyMiddleware>[1], workMs: number) {
  const app = new Hono<AppEnv>();
  const runs = { n: 0 };
  app.use('*', async (c, next) => {
    c.set('ctx', { principal: { kind: 'operator', id: 'op_claims' } } as Ctx);
    await next();
  });
  app.use('*', idempotencyMiddleware(db, timing));
  app.post('/work', async (c) => {
    await sleep(workMs);
    runs.n++;
    return c.json({ run: runs.n }, 201);
  });
  const send = (key: string) =>
    app.request('/work', {
      method: 'POST',
      headers: { 'idempotency-key': key, 'content-type': 'application/json' },
      body: '{"same":true}',
    });
  return { runs, send };
}

describe('Idempotency-Key claims', () => {
  it('keeps the claim of a request running longer than the stale time', async () => {
    const { runs, send } = appWith({ heartbeatMs: 100, staleMs: 500 }, 1_500);
    const first = send('slow');
    await sleep(1_000);
    // Twice the stale time later: the heartbeat kept the claim, so this is "in progress".
    const second = await send('slow');
    expect(second.status).toBe(409);
    expect(((await second.json()) as { code: string }).code).toBe('idempotency_key_in_progress');
    expect((await first).status).toBe(201);
    const replay = await send('slow');
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(runs.n).toBe(1);
  });

  it('lets a claim nobody renewed for the stale time be taken over, and not before', async () => {
    const { runs, send } = appWith(undefined, 0);
    expect((await send('orphan')).status).toBe(201);
    // As if the request had been cut by a dead process 20 s ago: its claim still stands.
    await db.query(
      `UPDATE idempotency_keys SET status = NULL, response = NULL, created_at = now() - interval '20 seconds'
        WHERE principal = 'op_claims' AND key = 'orphan'`,
    );
    expect((await send('orphan')).status).toBe(409);
    // 31 s without a heartbeat (the default stale time is 30 s): the resend does the work.
    await db.query(
      `UPDATE idempotency_keys SET created_at = now() - interval '31 seconds'
        WHERE principal = 'op_claims' AND key = 'orphan'`,
    );
    const resent = await send('orphan');
    expect(resent.status).toBe(201);
    expect(resent.headers.get('idempotent-replayed')).toBeNull();
    expect(runs.n).toBe(2);
  });
});
