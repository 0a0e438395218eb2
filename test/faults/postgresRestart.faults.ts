/**
 * Postgres restarts under load: two Tally processes on a private Postgres cluster take event
 * batches from clients while the server is stopped (fast: sessions cut mid-transaction), left down
 * for a few seconds and started again. Meanwhile Tally answers 503 problem+json with Retry-After
 * (never a 500, never a dropped connection), /readyz says 503; afterwards it answers again without
 * being restarted, and every event it acknowledged is stored, once.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ProblemSchema } from '../../src/http/schemas.ts';
import { checkLedger } from '../../src/services/ledger/checkLedger.ts';
import { type Db, openServer } from '../../src/store/db.ts';
import { eventBatch } from '../support/cluster.ts';
import { OPERATOR_KEY } from '../support/harness.ts';
import { isAlive } from '../support/kill.ts';
import { type PrivatePostgres, startPrivatePostgres } from '../support/privatePostgres.ts';
import { startProcess, stopProcesses, type TallyProcess } from '../support/processes.ts';

const DOWN_MS = 5_000;
const BATCH = 50;
const CLIENTS = 4;

let postgres: PrivatePostgres;
const processes: TallyProcess[] = [];

beforeAll(async () => {
  postgres = await startPrivatePostgres();
  // One after the other: the first creates the schema.
  for (let i = 0; i < 2; i++) {
    processes.push(await startProcess({ databaseUrl: postgres.url, env: { TALLY_LOG: 'json' } }));
  }
});
afterAll(async () => {
  await stopProcesses(processes);
  await postgres?.stop();
});

async function readiness(p: TallyProcess): Promise<number | string> {
  try {
    return (await fetch(`${p.url}/readyz`)).status;
  } catch (e) {
    return (e as { cause?: { code?: string } }).cause?.code ?? 'no answer';
  }
}

async function post(target: TallyProcess, path: string, body: unknown, key = OPERATOR_KEY) {
  const res = await fetch(`${target.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
}

/** A chat completion through the gateway: its status and the provider-format error type, if any. */
async function gatewayCall(target: TallyProcess, key: string) {
  const res = await fetch(`${target.url}/gateway/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'tally-member': 'm' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi' }] }),
    signal: AbortSignal.timeout(30_000),
  });
  const body = (await res.json()) as { error?: { type?: string } };
  return { status: res.status, type: body.error?.type };
}

it('answers 503 while Postgres is down, recovers by itself and loses no acknowledged event', async () => {
  const org = await post(processes[0]!, '/v1/orgs', { name: 'Restart', currency: 'USD', timezone: 'UTC' });
  const key = (await post(processes[0]!, `/v1/orgs/${org.body.id}/api_keys`, { name: 'k' })).body.key;

  const acknowledged = new Set<string>();
  const answers = new Map<string, number>();
  const faults: string[] = [];
  let nextBatch = 0;
  let stopAt = Number.POSITIVE_INFINITY;
  let okAfterRestart = 0;
  let restartedAt = Number.POSITIVE_INFINITY;
  const client = async (n: number) => {
    // A batch that was not acknowledged is sent again, with the same ids, until it is.
    let pending: ReturnType<typeof eventBatch> | null = null;
    // (Resends end 10 s after the load does, so a Tally that died fails the test instead of hanging it.)
    for (let turn = n; Date.now() < stopAt || (pending && Date.now() < stopAt + 10_000); turn++) {
      const events: ReturnType<typeof eventBatch> =
        pending ?? eventBatch(nextBatch++ * BATCH, BATCH, { minutesBack: 60 });
      let outcome: string;
      try {
        const res = await post(processes[turn % processes.length]!, '/v1/events', { events }, key);
        outcome = String(res.status);
        if (res.status === 200) {
          for (const r of res.body.results) acknowledged.add(r.id);
          if (Date.now() > restartedAt) okAfterRestart++;
          pending = null;
        } else {
          pending = events;
          const problem = ProblemSchema.safeParse(res.body);
          if (res.status !== 503 || !problem.success || !res.headers.get('retry-after')) {
            faults.push(`${res.status} ${res.headers.get('content-type')} ${JSON.stringify(res.body)}`);
          }
        }
      } catch (e) {
        outcome = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name;
        faults.push(`no answer: ${outcome}`);
        pending = events;
      }
      answers.set(outcome, (answers.get(outcome) ?? 0) + 1);
      if (pending) await new Promise((r) => setTimeout(r, 100));
    }
  };
  const readyDuringOutage: (number | string)[] = [];
  let gatewayDuringOutage: unknown = null;
  const scenario = async () => {
    await new Promise((r) => setTimeout(r, 3_000));
    const restart = postgres.restart(DOWN_MS);
    await new Promise((r) => setTimeout(r, DOWN_MS / 2));
    for (const p of processes) readyDuringOutage.push(await readiness(p));
    gatewayDuringOutage = await gatewayCall(processes[0]!, key);
    const { startedAt } = await restart;
    restartedAt = startedAt;
    // Load goes on until Tally has answered for a while on the restarted server.
    // (Not if every process died: the test then fails at once, showing their last output.)
    const someAlive = () => processes.some((p) => isAlive(p.pid));
    while (okAfterRestart < 20 && Date.now() - startedAt < 60_000 && someAlive()) {
      await new Promise((r) => setTimeout(r, 200));
    }
    stopAt = Date.now();
  };
  await Promise.all([...Array.from({ length: CLIENTS }, (_, i) => client(i)), scenario()]);

  const db: Db = await openServer(postgres.url, { max: 2 });
  try {
    const stored = await db.query<{ id: string }>('SELECT id FROM events WHERE org_id = $1', [org.body.id]);
    const storedIds = new Set(stored.map((r) => r.id));
    const lost = [...acknowledged].filter((id) => !storedIds.has(id));
    console.log(
      `faults/postgres: down ${DOWN_MS} ms; answers ${[...answers].map(([s, n]) => `${s}:${n}`).join(' ')};` +
        ` /readyz during the outage ${readyDuringOutage.join(',')}; ${acknowledged.size} events acknowledged, ${stored.length} stored`,
    );
    const down = processes.filter((p) => !isAlive(p.pid));
    expect(down.map((p) => p.output().slice(-2_000))).toEqual([]);
    // A 500's cause, from the processes' logs.
    const logged = processes.flatMap((p) =>
      p
        .output()
        .split('\n')
        .filter((l) => l.includes('"level":"error"')),
    );
    expect([...faults.slice(0, 10), ...logged.slice(0, 5).map((l) => l.slice(0, 600))]).toEqual([]);
    expect(answers.get('503') ?? 0).toBeGreaterThan(0);
    expect(readyDuringOutage).toEqual(processes.map(() => 503));
    // The gateway answers the outage in the provider's own format, as a status its SDK retries.
    expect(gatewayDuringOutage).toEqual({ status: 503, type: 'server_error' });
    expect(okAfterRestart).toBeGreaterThanOrEqual(20);
    expect(lost).toEqual([]);
    // Every batch was sent until acknowledged, so nothing is stored that was not, and nothing twice.
    expect(stored.length).toBe(acknowledged.size);
    expect(await checkLedger(db, org.body.id)).toEqual([]);
    for (const p of processes) expect(await readiness(p)).toBe(200);
  } finally {
    await db.close();
  }
}, 300_000);
