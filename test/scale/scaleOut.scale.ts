/**
 * Scale-out: 3 Tally processes on one Postgres database behind a round-robin client take a
 * workload of events and holds (authorize, increment, capture; some holds abandoned for the expiry
 * job); every process runs the scheduler, whose per-job lease lets one process run a job at a
 * time. Midway, the process that last ran a job dies by kill -9 and another takes the jobs over.
 * The totals and the ledger are the same as one process gives for the same workload on a
 * database of its own, and the ledger re-derives exactly on both.
 *
 * TALLY_SCALE_EVENTS (default 20 000) and TALLY_SCALE_HOLDS (default 150) set the sizes.
 */
import { afterAll, expect, it } from 'vitest';
import { checkLedger } from '../../src/services/ledger/checkLedger.ts';
import type { Db } from '../../src/store/db.ts';
import { eventBatch, RoundRobin } from '../support/cluster.ts';
import { freshDb } from '../support/harness.ts';
import { killTree } from '../support/kill.ts';
import { startProcess, stopProcesses, type TallyProcess } from '../support/processes.ts';

const EVENTS = Number(process.env.TALLY_SCALE_EVENTS ?? 20_000);
const HOLDS = Number(process.env.TALLY_SCALE_HOLDS ?? 150);
const ABANDONED = 5;
const BATCH = 500;
const CLIENTS = 6;
/** The scheduler's lease (src/jobs/runner.ts) plus its tick: the longest a dead process can keep a job. */
const TAKEOVER_LIMIT_MS = 61_000;

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const step of cleanup.reverse()) await step();
});

async function database(): Promise<{ db: Db; url: string }> {
  const { db, url } = await freshDb();
  if (!url) throw new Error('the scale test runs on a Postgres server (TALLY_TEST_DATABASE_URL)');
  cleanup.push(() => db.close());
  return { db, url };
}

async function processesOn(url: string, count: number): Promise<TallyProcess[]> {
  const started: TallyProcess[] = [];
  cleanup.push(() => stopProcesses(started));
  // One after the other (the first creates the operator key); the last reads dashboards from
  // DATABASE_READ_URL, here the same database, so that path is exercised too.
  for (let i = 0; i < count; i++) {
    const readUrl: Record<string, string> = i === count - 1 && count > 1 ? { DATABASE_READ_URL: url } : {};
    started.push(
      await startProcess({ databaseUrl: url, jobs: true, env: { TALLY_LOG: 'json', ...readUrl } }),
    );
  }
  return started;
}

/** The workload: an org with credits, events in batches and holds, all through the round robin. */
async function runWorkload(cluster: RoundRobin, midway?: () => Promise<void>) {
  const org = await cluster.send('POST', '/v1/orgs', {
    body: { name: 'Scale', currency: 'EUR', timezone: 'UTC' },
  });
  const orgId: string = org.body.id;
  const key: string = (await cluster.send('POST', `/v1/orgs/${orgId}/api_keys`, { body: { name: 'k' } })).body
    .key;
  await cluster.send('POST', `/v1/orgs/${orgId}/grants`, {
    body: { kind: 'bonus', amount_credits: '1000000' },
  });

  const work: (() => Promise<void>)[] = [];
  for (let first = 0; first < EVENTS; first += BATCH) {
    work.push(async () => {
      const res = await cluster.send('POST', '/v1/events', {
        key,
        body: { events: eventBatch(first, Math.min(BATCH, EVENTS - first)) },
      });
      expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(200);
    });
  }
  for (let i = 0; i < HOLDS + ABANDONED; i++) work.push(() => hold(cluster, key, i, i >= HOLDS));
  // Events and holds interleaved, so all three processes take both at once.
  work.sort((a, b) => (work.indexOf(a) % 7) - (work.indexOf(b) % 7));
  let next = 0;
  let midwayDone = false;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < work.length) {
        await work[next++]!();
        if (!midwayDone && midway && next > work.length / 2) {
          midwayDone = true;
          await midway();
        }
      }
    }),
  );
  return { orgId, key };
}

async function hold(cluster: RoundRobin, key: string, i: number, abandon: boolean) {
  // Idempotency keys make a resend after a lost answer safe (the round robin resends on a 5xx).
  const idem = (step: string) => ({ 'idempotency-key': `hold-${i}-${step}` });
  const auth = await cluster.send('POST', '/v1/authorizations', {
    key,
    headers: idem('authorize'),
    body: {
      member: `member-${i % 17}`,
      feature: 'Agent',
      provider: 'openai',
      model: 'gpt-4o',
      estimate: { input_tokens: 2_000, max_output_tokens: 1_000 },
      ttl_seconds: abandon ? 5 : 600,
    },
  });
  expect(auth.status, JSON.stringify(auth.body)).toBe(200);
  expect(auth.body.approved).toBe(true);
  const increment = await cluster.send('POST', `/v1/authorizations/${auth.body.id}/increments`, {
    key,
    headers: idem('increment'),
    body: { usage: { input_tokens: 1_000, output_tokens: 100 } },
  });
  expect(increment.status, JSON.stringify(increment.body)).toBe(200);
  if (abandon) return;
  const capture = await cluster.send('POST', `/v1/authorizations/${auth.body.id}/capture`, {
    key,
    headers: idem('capture'),
    body: { usage: { input_tokens: 1_500 + i, output_tokens: 300 }, event_id: `hold-event-${i}` },
  });
  expect(capture.status, JSON.stringify(capture.body)).toBe(200);
}

/** Waits until the expiry job has ended every abandoned hold. */
async function holdsSettled(db: Db, orgId: string) {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const [row] = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM authorizations WHERE org_id = $1 AND status = 'active'",
      [orgId],
    );
    if (row!.n === 0) return;
    if (Date.now() > deadline) throw new Error(`${row!.n} holds still active after 90 s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Everything the workload decides, without ids or times the server chooses. */
async function outcome(db: Db, orgId: string) {
  const q = async (sql: string) => db.query(sql, [orgId]);
  return {
    events: await q(
      `SELECT count(*)::int AS n, sum(credits)::text AS credits, sum(cost)::text AS cost,
              sum(input_tokens)::text AS input, sum(output_tokens)::text AS output FROM events WHERE org_id = $1`,
    ),
    byMember: await q(
      `SELECT m.external_id, count(*)::int AS n, sum(e.credits)::text AS credits
         FROM events e JOIN members m ON m.id = e.member_id WHERE e.org_id = $1 GROUP BY 1 ORDER BY 1`,
    ),
    ledger: await q(
      'SELECT kind, count(*)::int AS n, sum(amount)::text AS amount FROM ledger_entries WHERE org_id = $1 GROUP BY kind ORDER BY kind',
    ),
    balance: await q(
      'SELECT granted::text, consumed::text, expired::text, remaining::text, held::text, overage::text FROM org_balances WHERE org_id = $1',
    ),
    holds: await q(
      `SELECT status, count(*)::int AS n, sum(charged)::text AS charged FROM authorizations WHERE org_id = $1 GROUP BY status ORDER BY status`,
    ),
  };
}

/** The worker id of the process that logged a finished job most recently, from its JSON log. */
function lastJobWorker(p: TallyProcess): { worker: string; at: number } | null {
  const lines = p
    .output()
    .split('\n')
    .filter((l) => l.includes('"job":'));
  const last = lines.at(-1);
  if (!last) return null;
  try {
    const entry = JSON.parse(last) as { worker: string; time: string };
    return { worker: entry.worker, at: Date.parse(entry.time) };
  } catch {
    return null; // a line cut at the start of the kept output
  }
}

it('gives 3 processes behind a round robin the same totals and ledger as one process', async () => {
  const started = performance.now();
  const single = await database();
  const phase = (name: string) =>
    phases.push(`${name} ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const phases: string[] = [];
  const alone = new RoundRobin(await processesOn(single.url, 1));
  const one = await runWorkload(alone);
  phase('1 process: workload');
  await holdsSettled(single.db, one.orgId);
  phase('holds expired');
  const singleSeconds = (performance.now() - started) / 1000;

  const shared = await database();
  const processes = await processesOn(shared.url, 3);
  const cluster = new RoundRobin([...processes]);
  let takeoverMs = 0;
  const killJobRunner = async () => {
    // The process whose scheduler logged a job last is running the jobs now; it dies mid-work.
    const runners = processes
      .map((p) => ({ p, last: lastJobWorker(p) }))
      .filter((r) => r.last)
      .sort((a, b) => b.last!.at - a.last!.at);
    const victim = runners[0]?.p ?? processes[0]!;
    // Its requests finish first: a request cut mid-way leaves its Idempotency-Key claimed for 10
    // minutes (src/http/middleware/idempotency.ts), and requests cut mid-way are the fault tests' part.
    await cluster.drain(victim);
    await killTree(victim.pid);
    const killedAt = Date.now();
    const survivors = cluster.processes;
    // Another process logs a finished job after the kill: the jobs go on.
    while (!survivors.some((p) => (lastJobWorker(p)?.at ?? 0) > killedAt)) {
      if (Date.now() - killedAt > TAKEOVER_LIMIT_MS) throw new Error('no process took the jobs over');
      await new Promise((r) => setTimeout(r, 200));
    }
    takeoverMs = Date.now() - killedAt;
  };
  phase('3 processes started');
  const three = await runWorkload(cluster, killJobRunner);
  phase('3 processes: workload');
  await holdsSettled(shared.db, three.orgId);
  phase('holds expired');

  const served = processes.map(
    (p) =>
      p
        .output()
        .split('\n')
        .filter((l) => l.includes('"route":"/v1/events"')).length,
  );
  const [singleOutcome, clusterOutcome] = [
    await outcome(single.db, one.orgId),
    await outcome(shared.db, three.orgId),
  ];
  const summary = await cluster.send('GET', `/v1/orgs/${three.orgId}/usage/summary?range=7d`, {
    key: three.key,
  });
  console.log(
    `scale: ${EVENTS} events + ${HOLDS} holds (+${ABANDONED} abandoned) on 1 process ${singleSeconds.toFixed(1)} s, then on 3` +
      ` ${((performance.now() - started) / 1000 - singleSeconds).toFixed(1)} s; jobs taken over ${(takeoverMs / 1000).toFixed(1)} s` +
      ` after kill -9; event requests logged per process (kept log tail) ${served.join('/')}; ${phases.join(', ')}`,
  );
  expect(clusterOutcome).toEqual(singleOutcome);
  expect(clusterOutcome.events[0]).toMatchObject({ n: EVENTS + HOLDS + ABANDONED });
  expect(clusterOutcome.holds).toEqual([
    expect.objectContaining({ status: 'captured', n: HOLDS }),
    expect.objectContaining({ status: 'expired', n: ABANDONED }),
  ]);
  expect(summary.body.calls).toBe(EVENTS + HOLDS + ABANDONED);
  expect(await checkLedger(single.db, one.orgId)).toEqual([]);
  expect(await checkLedger(shared.db, three.orgId)).toEqual([]);
  // Each process served part of the load.
  for (const n of served) expect(n).toBeGreaterThan(0);
  expect(takeoverMs).toBeLessThan(TAKEOVER_LIMIT_MS);
}, 300_000);
