/**
 * A webhook receiver down for 10 minutes gets every delivery afterwards, in order per endpoint,
 * each once as far as it can tell (it dedupes on `webhook-id`).
 *
 * The real retry schedule (5 s, 30 s, 2 min, 10 min, 30 min, ... with jitter) makes a real outage
 * of 10 minutes last well over 20 minutes of test, so the test moves the clock instead: the
 * delivery job (deliverWebhooks, as the scheduler runs it) reads due times from the database, and
 * advancing the clock by s seconds is moving every stored time of the deliveries s seconds back.
 * The receiver refuses connections for the first 5 simulated minutes, answers 503 for the next 5,
 * then takes everything; the first message it takes loses its answer (the socket is cut after it
 * was recorded), so Tally sends it again and the receiver sees one duplicate.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { deliverWebhooks } from '../../src/services/webhooks/deliverWebhooks.ts';
import { createOrgWithKey, startTally, type TestTally } from '../support/harness.ts';

const OUTAGE_SECONDS = 600;
const STEP_SECONDS = 5;
const GRANTS_PER_ORG = 12;

type Mode = 'refusing' | 'failing' | 'up';

/** The receiver: records each request's endpoint and webhook-id in arrival order. */
class Receiver {
  mode: Mode = 'refusing';
  readonly received: { endpoint: string; id: string }[] = [];
  private cutNextAnswer = true;
  private server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (this.mode === 'failing') {
        res.writeHead(503).end();
        return;
      }
      this.received.push({ endpoint: req.url!.slice(1), id: String(req.headers['webhook-id']) });
      if (this.cutNextAnswer) {
        this.cutNextAnswer = false;
        req.socket.destroy();
        return;
      }
      res.writeHead(204).end();
    });
  });
  port = 0;

  async listen() {
    await new Promise<void>((resolve) => this.server.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async close() {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Per endpoint, the webhook-ids in the order first seen. */
  deduped(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const { endpoint, id } of this.received) {
      const list = out.get(endpoint) ?? [];
      if (!list.includes(id)) list.push(id);
      out.set(endpoint, list);
    }
    return out;
  }
}

let t: TestTally;
const receiver = new Receiver();

beforeAll(async () => {
  t = await startTally();
  await receiver.listen();
});
afterAll(async () => {
  await receiver.close().catch(() => {});
  await t?.close();
});

/** The clock moves `seconds` on, for the delivery job: every stored time of a delivery moves back. */
async function advance(seconds: number) {
  await t.db.query(
    `UPDATE webhook_deliveries SET next_attempt_at = next_attempt_at - make_interval(secs => $1),
            retry_until = retry_until - make_interval(secs => $1), created_at = created_at - make_interval(secs => $1),
            last_attempt_at = last_attempt_at - make_interval(secs => $1),
            locked_until = locked_until - make_interval(secs => $1)`,
    [seconds],
  );
}

it('delivers every message after a 10-minute outage, in order per endpoint, each once after dedupe', async () => {
  const orgs = [await createOrgWithKey(t, { name: 'Hook A' }), await createOrgWithKey(t, { name: 'Hook B' })];
  // One endpoint per org and one of the operator's for every org: three queues, each ordered.
  const endpoints: string[] = [];
  for (const { org } of orgs) {
    const res = await t.call('POST', `/v1/orgs/${org.id}/webhook_endpoints`, {
      body: { url: `http://127.0.0.1:${receiver.port}/${org.id}`, event_types: ['grant.created'] },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    endpoints.push(res.body.id);
  }
  const all = await t.call('POST', '/v1/webhook_endpoints', {
    body: { url: `http://127.0.0.1:${receiver.port}/all`, event_types: ['grant.created'] },
  });
  expect(all.status, JSON.stringify(all.body)).toBe(201);
  await receiver.close();

  let attempts = 0;
  const tick = async () => {
    const outcome = await deliverWebhooks(t.db, { timeoutMs: 2_000, allowPrivateAddresses: true });
    attempts += outcome.succeeded + outcome.retrying + outcome.failed;
    await advance(STEP_SECONDS);
  };
  // The outage: grants (each a grant.created message) keep coming while nothing is delivered.
  for (let second = 0; second < OUTAGE_SECONDS; second += STEP_SECONDS) {
    if (second === OUTAGE_SECONDS / 2) {
      receiver.mode = 'failing';
      await receiver.listen();
    }
    if (second % Math.floor(OUTAGE_SECONDS / GRANTS_PER_ORG) === 0) {
      for (const { org } of orgs) {
        const grant = await t.call('POST', `/v1/orgs/${org.id}/grants`, {
          body: { kind: 'bonus', amount_credits: '1', reason: `at ${second} s` },
        });
        expect(grant.status).toBe(201);
      }
    }
    await tick();
  }
  expect(receiver.received).toEqual([]);
  receiver.mode = 'up';
  // After the outage: the backoff reaches up to 30 minutes, so catch-up may take that long, simulated.
  let after = 0;
  for (; after < 4 * 3600; after += STEP_SECONDS) {
    const [left] = await t.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM webhook_deliveries WHERE status <> 'succeeded'",
    );
    if (left!.n === 0) break;
    await tick();
  }

  const expected = new Map<string, string[]>();
  const rows = await t.db.query<{ path: string; message_id: string; status: string }>(
    `SELECT substring(e.url from '[^/]+$') AS path, d.message_id, d.status
       FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
       JOIN webhook_messages m ON m.org_id = d.org_id AND m.id = d.message_id
      ORDER BY m.seq`,
  );
  for (const row of rows) expected.set(row.path, [...(expected.get(row.path) ?? []), row.message_id]);
  const deduped = receiver.deduped();
  console.log(
    `faults/webhooks: ${rows.length} deliveries to 3 endpoints through a ${OUTAGE_SECONDS / 60}-minute outage;` +
      ` all delivered ${after} simulated s after it, in ${attempts} attempts; receiver saw ${receiver.received.length} requests,` +
      ` ${[...deduped.values()].reduce((n, l) => n + l.length, 0)} distinct`,
  );
  expect(rows.length).toBe(2 * GRANTS_PER_ORG * 2);
  expect(rows.every((r) => r.status === 'succeeded')).toBe(true);
  expect(deduped).toEqual(expected);
  // The one answer the receiver cut is the one message it saw twice; nothing else came again.
  expect(receiver.received.length).toBe(rows.length + 1);
}, 600_000);
