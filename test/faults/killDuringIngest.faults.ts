/**
 * kill -9 during ingest: 3 Tally processes on one fresh Postgres database take 200 000 events from
 * clients that resend a batch, with the same ids, whenever it gets no answer. Ten times during the
 * ingest one process dies by SIGKILL (mid-request, mid-transaction) and a new one takes its place.
 * Afterwards every event is counted exactly once and the ledger re-derives exactly.
 *
 * TALLY_FAULT_EVENTS (default 200 000) and TALLY_FAULT_KILLS (default 10) set the sizes.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { checkLedger } from '../../src/services/ledger/checkLedger.ts';
import type { Db } from '../../src/store/db.ts';
import { eventBatch, RoundRobin } from '../support/cluster.ts';
import { freshDb } from '../support/harness.ts';
import { killTree } from '../support/kill.ts';
import { startProcess, startProcesses, stopProcesses, type TallyProcess } from '../support/processes.ts';

const EVENTS = Number(process.env.TALLY_FAULT_EVENTS ?? 200_000);
const KILLS = Number(process.env.TALLY_FAULT_KILLS ?? 10);
const BATCH = 1000;
const CLIENTS = 4;

let db: Db;
let url: string;
const processes: TallyProcess[] = [];

beforeAll(async () => {
  ({ db, url } = (await freshDb()) as { db: Db; url: string });
  if (!url) throw new Error('the fault tests run on a Postgres server (TALLY_TEST_DATABASE_URL)');
  processes.push(...(await startProcesses(3, { databaseUrl: url, jobsOn: [] })));
});
afterAll(async () => {
  await stopProcesses(processes);
  await db?.close();
});

it(`counts ${EVENTS} events exactly once and keeps the ledger exact through ${KILLS} kill -9`, async () => {
  const cluster = new RoundRobin(processes);
  const org = await cluster.send('POST', '/v1/orgs', {
    body: { name: 'Kill test', currency: 'EUR', timezone: 'UTC' },
  });
  expect(org.status).toBe(201);
  const orgId: string = org.body.id;
  const key = (await cluster.send('POST', `/v1/orgs/${orgId}/api_keys`, { body: { name: 'ingest' } })).body
    .key;
  // Enough credits for part of the run, so draw-down crosses from the grant into overage.
  const grant = await cluster.send('POST', `/v1/orgs/${orgId}/grants`, {
    body: { kind: 'bonus', amount_credits: String(EVENTS / 10) },
  });
  expect(grant.status).toBe(201);

  const batches = Math.ceil(EVENTS / BATCH);
  let nextBatch = 0;
  let done = 0;
  const statuses = new Map<string, number>();
  const client = async () => {
    while (nextBatch < batches) {
      const index = nextBatch++;
      const events = eventBatch(index * BATCH, Math.min(BATCH, EVENTS - index * BATCH));
      const res = await cluster.send('POST', '/v1/events', { key, body: { events } });
      expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(200);
      for (const r of res.body.results as { status: string }[]) {
        expect(['accepted', 'duplicate']).toContain(r.status);
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
      done++;
    }
  };

  const started = performance.now();
  let kills = 0;
  const restarts: Promise<void>[] = [];
  const killer = async () => {
    while (kills < KILLS && done < batches) {
      // Spread the kills over the ingest: the k-th once k/(KILLS+1) of the batches are in.
      // With no process left (restarts are slower than kills) the clients wait and resend.
      if (done < ((kills + 1) * batches) / (KILLS + 1) || processes.length === 0) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const victim = processes.splice(Math.floor(Math.random() * processes.length), 1)[0]!;
      await killTree(victim.pid);
      kills++;
      restarts.push(
        startProcess({ databaseUrl: url, jobs: false, readyTimeoutMs: 60_000 }).then((p) => {
          processes.push(p);
        }),
      );
    }
  };
  await Promise.all([...Array.from({ length: CLIENTS }, client), killer()]);
  await Promise.all(restarts);
  const seconds = (performance.now() - started) / 1000;

  const [counted] = await db.query<{ n: string; ids: string; credits: string }>(
    'SELECT count(*)::text AS n, count(DISTINCT id)::text AS ids, sum(credits)::text AS credits FROM events WHERE org_id = $1',
    [orgId],
  );
  const summary = await cluster.send('GET', `/v1/orgs/${orgId}/usage/summary?range=7d`, { key });
  const retried = [...cluster.retries].map(([why, n]) => `${why}:${n}`).join(' ');
  console.log(
    `faults/kill: ${EVENTS} events in ${seconds.toFixed(1)} s (${Math.round(EVENTS / seconds)}/s) through ${kills} kill -9;` +
      ` answers ${[...statuses].map(([s, n]) => `${s}:${n}`).join(' ')}; resent requests ${retried || 'none'}`,
  );
  expect(kills).toBe(KILLS);
  expect(counted).toEqual({ n: String(EVENTS), ids: String(EVENTS), credits: counted!.credits });
  expect(summary.body.calls).toBe(EVENTS);
  expect(await checkLedger(db, orgId)).toEqual([]);
  // What the ledger says was consumed (from the grant and past it) is what the events cost.
  const [ledger] = await db.query<{ spent: string }>(
    `SELECT (-sum(amount))::text AS spent FROM ledger_entries WHERE org_id = $1 AND kind IN ('debit', 'overage')`,
    [orgId],
  );
  expect(ledger!.spent).toBe(counted!.credits);
}, 900_000);
