/**
 * Authorization round trip: POST /v1/authorizations over real HTTP at a fixed arrival rate (open
 * loop: requests leave on schedule whether or not earlier ones have answered, and latency counts
 * from the scheduled start, so queueing is not hidden). Each hold takes the org's balance lock.
 *
 * The load generator runs in a process of its own (this file, forked) with a keep-alive node:http
 * client, so its CPU is never charged to the Tally it measures; the CPU each hold cost Tally and
 * the Postgres backends is read from /proc around every run.
 */
import { fork } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { processTicks } from './support/cpu.ts';
import { BENCH_OPERATOR_KEY, openBenchDatabase } from './support/databases.ts';
import { overlapping, probeKernelMonitors } from './support/kernelStalls.ts';
import { forkGenerator, serveGeneratorJobs } from './support/loadGenerator.ts';
import { median } from './support/stats.ts';
import { START_NODE_FLAGS, startTallyProcesses } from './support/tallyProcess.ts';
import type { BenchModule, BenchOptions, BenchResult, Measurement } from './types.ts';

const RATES = [500, 2000];
/** The p99 target (ms); requests slower than this are matched against the kernel's bursts. */
const TARGET_P99_MS = 5;
/** How long the queue a kernel burst leaves behind takes to drain at 500/s (measured: 15 to 30 ms). */
const DRAIN_MS = 50;
const RUNS = 3;
/** Warm-up: steps at 500/s until a step's Tally CPU per hold is less than 10 % below the last. */
const WARM_RATE = 500;
const WARM_STEP_SECONDS = 2;
const WARM_MIN_STEPS = 3;
const WARM_MAX_STEPS = 15;
const WARM_SETTLED_DROP = 0.1;
/** Tally also runs as `npm start` does, in its own process(es). */
const WORKERS = [1, 2];
/** Set in the forked load generator. */
const GENERATOR_FLAG = '--authorize-load-generator';
/** Set in the forked baseline server. */
const BARE_SERVER_FLAG = '--bare-http-answer';
const BASELINE_LABEL = 'bare node:http answer';
const FLOOR_LABEL = 'bare node:http answer after one committed UPDATE of one row';
/** The floor's table: one row, which every request updates (as every hold of an org locks its balance row). */
const FLOOR_TABLE = 'bench_hold_floor';

/**
 * The baseline: a node:http server in a process of its own that answers every request with the
 * bytes of a real approval, with no framework and no database, so a hold's figures stand beside
 * what the HTTP round trip alone costs on this machine under the same client and rate.
 */
if (process.argv.includes(BARE_SERVER_FLAG)) {
  const [answer, databaseUrl] = process.argv.slice(process.argv.indexOf(BARE_SERVER_FLAG) + 1);
  // The floor: the least a hold must do, one committed write under its org's row lock, with
  // Tally's pool size.
  const pool = databaseUrl ? new pg.Pool({ connectionString: databaseUrl, max: 10 }) : null;
  const answerWith = (res: http.ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(answer);
  };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (!pool) return answerWith(res);
      pool.query(`UPDATE ${FLOOR_TABLE} SET n = n + 1 WHERE id = 1`).then(
        () => answerWith(res),
        () => res.writeHead(500).end(),
      );
    });
  });
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
  process.on('disconnect', () => server.close(() => process.exit(0)));
}

/**
 * Starts the baseline server with `npm start`'s Node.js flags (updating the floor's row in
 * `databaseUrl` before each answer, when given); answers its URL and pid.
 */
async function startBareServer(
  answer: string,
  databaseUrl?: string,
): Promise<{ url: string; pid: number; stop: () => void }> {
  const child = fork(
    fileURLToPath(import.meta.url),
    [BARE_SERVER_FLAG, answer, ...(databaseUrl ? [databaseUrl] : [])],
    {
      execArgv: [...START_NODE_FLAGS, '--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    },
  );
  const { port } = await new Promise<{ port: number }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { port: number }));
    child.once('exit', (code) => reject(new Error(`the baseline server exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, stop: () => child.disconnect() };
}

const holdBody = (i: number) => ({
  member: `bench-member-${i % 100}`,
  feature: 'Chat',
  provider: 'openai',
  model: 'gpt-4o-mini',
  estimate: { credits: '1' },
});

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// ---------------------------------------------------------------------------------------------
// The client: node:http with keep-alive sockets (undici's fetch cost about as much CPU per request
// as the hold itself when it shared Tally's process).

const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });

function json(url: string, key: string, method: string, body?: unknown): Promise<Record<string, unknown>> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string | number> = { authorization: `Bearer ${key}` };
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = Buffer.byteLength(payload);
  }
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('error', reject);
      res.on('end', () => {
        try {
          const answer = JSON.parse(text) as Record<string, unknown>;
          if ((res.statusCode ?? 500) >= 300) {
            reject(new Error(`${method} ${url}: ${res.statusCode} ${text}`));
          } else resolve(answer);
        } catch (error) {
          reject(error);
        }
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

interface Latencies {
  /** Sorted, in ms. */
  latencies: number[];
  failures: number;
  /** What the first failure was (an error, or a hold answered but not approved). */
  firstFailure?: string;
  /** The kernel's memory monitor during an open-loop run, when the machine has one. */
  kernel?: KernelBursts;
}

interface KernelBursts {
  bursts: number;
  cpuMs: number;
  /** Requests slower than the target, and how many of them were in flight during a burst. */
  slow: number;
  slowInBursts: number;
}

/** Sends `rate` holds a second for `seconds`; answers the sorted latencies in ms and the failures. */
async function openLoop(
  base: string,
  key: string,
  rate: number,
  seconds: number,
  probeKernel: boolean,
): Promise<Latencies> {
  const total = rate * seconds;
  const url = `${base}/v1/authorizations`;
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const started = performance.now();
  let sent = 0;
  let failures = 0;
  let firstFailure: string | undefined;
  const slow: [number, number][] = [];
  const probe = probeKernel ? probeKernelMonitors() : null;
  const failed = (what: string) => {
    failures++;
    firstFailure ??= what;
  };
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate) + 1);
    for (; sent < due; sent++) {
      const scheduled = started + (sent / rate) * 1000;
      pending.push(
        json(url, key, 'POST', holdBody(sent)).then(
          (answer) => {
            if (answer.approved !== true) failed(`not approved: ${JSON.stringify(answer)}`);
            const finished = performance.now();
            latencies.push(finished - scheduled);
            if (finished - scheduled > TARGET_P99_MS) slow.push([scheduled, finished]);
          },
          (error: Error) => failed(String(error.message ?? error)),
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  const bursts = probe?.stop() ?? [];
  const kernel: KernelBursts | undefined =
    !probe || probe.threads === 0
      ? undefined
      : {
          bursts: bursts.length,
          cpuMs: bursts.reduce((sum, b) => sum + b.cpuMs, 0),
          slow: slow.length,
          slowInBursts: overlapping(slow, bursts, DRAIN_MS),
        };
  return {
    latencies: latencies.sort((a, b) => a - b),
    failures,
    ...(firstFailure ? { firstFailure } : {}),
    ...(kernel ? { kernel } : {}),
  };
}

/** One client, one hold at a time. */
async function oneClient(base: string, key: string, count: number): Promise<Latencies> {
  const url = `${base}/v1/authorizations`;
  const latencies: number[] = [];
  let failures = 0;
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const answer = await json(url, key, 'POST', holdBody(i));
    if (answer.approved !== true) failures++;
    latencies.push(performance.now() - t0);
  }
  return { latencies: latencies.sort((a, b) => a - b), failures };
}

type Job =
  | {
      kind: 'open';
      base: string;
      key: string;
      rate: number;
      seconds: number;
      /** Match slow holds against the kernel monitor's bursts (at the target rate). */
      probeKernel?: boolean;
    }
  | { kind: 'serial'; base: string; key: string; count: number };

const runJob = (job: Job): Promise<Latencies> =>
  job.kind === 'open'
    ? openLoop(job.base, job.key, job.rate, job.seconds, job.probeKernel === true)
    : oneClient(job.base, job.key, job.count);

serveGeneratorJobs<Job, Latencies>(GENERATOR_FLAG, runJob, () => agent.destroy());

const kernelText = (k: KernelBursts) =>
  `; kernel memory monitor (kdamond): ${k.bursts} bursts, ${k.cpuMs.toFixed(0)} ms CPU; ${k.slow} holds over ${TARGET_P99_MS} ms, ${k.slowInBursts} of them in flight during a burst or the ${DRAIN_MS} ms after it`;

// ---------------------------------------------------------------------------------------------
// CPU per hold, from /proc (Linux): user + system time of given processes.

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** A process and all its descendants (TALLY_WORKERS forks its workers). */
function processTree(pid: number): number[] {
  const found = [pid];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      for (const child of children ? children.split(' ') : []) found.push(...processTree(Number(child)));
    }
  } catch {}
  return found;
}

/** CPU of this process (ms) or of the given processes; ticks of processes met later count from zero. */
class CpuMeter {
  private readonly before = new Map<number, number>();
  private readonly ownBefore = process.cpuUsage();
  constructor(
    private readonly pids: () => Promise<number[]> | number[],
    startPids: number[],
  ) {
    for (const pid of startPids) {
      const ticks = processTicks(pid);
      if (Number.isFinite(ticks)) this.before.set(pid, ticks);
    }
  }

  static async start(pids: (() => Promise<number[]> | number[]) | 'self'): Promise<CpuMeter> {
    if (pids === 'self') return new CpuMeter(() => [], []);
    return new CpuMeter(pids, await pids());
  }

  /** CPU used since start, in ms. */
  async ms(): Promise<number> {
    const pids = await this.pids();
    if (this.before.size === 0 && pids.length === 0) {
      const used = process.cpuUsage(this.ownBefore);
      return (used.user + used.system) / 1000;
    }
    let ticks = 0;
    // A process gone meanwhile (a backend that closed) is left out: its last ticks are unknown.
    for (const pid of new Set([...this.before.keys(), ...pids])) {
      const now = processTicks(pid);
      if (Number.isFinite(now)) ticks += now - (this.before.get(pid) ?? 0);
    }
    return ticks * TICK_MS;
  }
}

export const authorize: BenchModule = {
  name: 'authorize',
  description: `Hold round trip: \`POST /v1/authorizations\` (estimate 1 credit, 100 members of one EUR org with a monthly limit and a large grant) over real HTTP at a fixed arrival rate (open loop; latency counted from each request’s scheduled start). The load generator is a process of its own (a keep-alive node:http client), so it shares the machine’s 2 cores but never Tally’s event loop. Tally runs first in the bench process (prepare/listen), then as \`npm start\` does in its own process (TALLY_WORKERS=1) and in 2 worker processes (TALLY_WORKERS=2), with the flag \`npm start\` gives Node.js: \`--single-threaded-gc\` (V8 collects garbage on the main thread alone; its default, 4 helper threads per process, woke together at each collection and took both cores from Postgres and the load generator for 10 to 30 ms: measured with \`perf sched\`, the slow holds of a run came in clusters at those moments). In the bench process Tally keeps V8's default (the benches before this one leave their heap there). Each set of runs follows a warm-up at 500/s in steps of 2 s (at least 3, at most 15) until Tally's CPU per hold falls by less than 10 % from one step to the next: the connection pool opens its connections, each new Postgres backend plans the hold function once, and V8 compiles the hold's path (measured: Tally's CPU per hold fell from 0.44 ms in the first seconds after a 2 s warm-up to 0.26 ms, and its compiler threads used a tenth of a core meanwhile). Each run lasts 10 s (5 000 holds at 500/s). Each hold is one statement (\`tally_place_hold\`): it locks the org balance row, reads the counters and writes the hold, its ledger entry and the counters inside Postgres; holds that queue in the process while two statements of the org are in flight go together in one statement and one commit (\`tally_place_holds\`), each decided as alone. Figures are the median over runs of each run’s p50 and p99; CPU per hold is the user + system time of Tally’s process(es) and of the database’s Postgres backends over a run (from /proc) divided by the holds sent. Baseline: the same client at the same rate against a bare node:http server in a process of its own (with \`npm start\`'s Node.js flags) that answers every request with the bytes of a real approval, with no framework and no database, after a warm-up of ${WARM_MIN_STEPS} steps: what the HTTP round trip alone costs on this machine. Its p50, p99 and CPU per answer stand beside each figure at 500/s, and ratio = Tally / baseline. A second baseline, the floor of any hold, has the same server commit one \`UPDATE\` of one row of the bench database (a pool of 10 connections, as Tally's) before it answers: one durable write, serialized on one row as an org's holds are on its balance row. At 500/s the load generator also polls the kernel’s memory monitor thread (\`kdamond\`, DAMON, when the machine runs one) every 2 ms and counts the holds over ${TARGET_P99_MS} ms that were in flight during one of its bursts or the ${DRAIN_MS} ms after it: on this VM it samples physical memory every 500 ms, spends 10 to 20 ms of CPU on each sample under load, and every process stalls meanwhile.`,
  async run(options: BenchOptions): Promise<BenchResult> {
    const measurements: Measurement[] = [];
    const lines: string[] = [];
    const seconds = options.quick ? 2 : 10;
    const load = () => loadavg()[0]!.toFixed(2);
    const generator = await forkGenerator<Job, Latencies>(import.meta.url, GENERATOR_FLAG);
    try {
      for (const kind of options.databases.filter((k) => k === 'server')) {
        const database = await openBenchDatabase(kind, options.serverUrl);
        const common = { database: database.label, unit: 'ms', better: 'lower' as const };
        /**
         * Runs `job` RUNS times against a Tally whose CPU `tally` measures; answers p50s, p99s and
         * the CPU per hold of Tally and of Postgres, and logs each run with the load average.
         */
        const measure = async (
          label: string,
          tally: (() => Promise<number[]> | number[]) | 'self',
          job: Job,
          server = 'Tally',
        ) => {
          const result = {
            p50: [] as number[],
            p99: [] as number[],
            tallyCpu: [] as number[],
            pgCpu: [] as number[],
          };
          const holds = job.kind === 'open' ? job.rate * job.seconds : job.count;
          for (let run = 1; run <= RUNS; run++) {
            const tallyMeter = await CpuMeter.start(tally);
            const pgMeter = await CpuMeter.start(() => database.backendPids());
            const { latencies, failures, firstFailure, kernel } = await generator.run(job);
            const tallyMs = (await tallyMeter.ms()) / holds;
            const pgMs = (await pgMeter.ms()) / holds;
            result.p50.push(percentile(latencies, 50));
            result.p99.push(percentile(latencies, 99));
            result.tallyCpu.push(tallyMs);
            result.pgCpu.push(pgMs);
            const text = `${label} run ${run}: p50 ${result.p50.at(-1)!.toFixed(2)} ms, p99 ${result.p99.at(-1)!.toFixed(2)} ms, CPU per ${server === 'Tally' ? 'hold' : 'answer'} ${server} ${tallyMs.toFixed(2)} ms + Postgres ${pgMs.toFixed(2)} ms (${latencies.length} answered, ${failures} failed${firstFailure ? `, first: ${firstFailure.slice(0, 200)}` : ''}, 1-minute load average ${load()})${kernel ? kernelText(kernel) : ''}`;
            options.log(`  ${database.label} ${text}`);
            lines.push(`- ${text}`);
          }
          lines.push(
            `- ${label}, ${RUNS} runs: p50 median ${median(result.p50).toFixed(2)} ms, p99 median ${median(result.p99).toFixed(2)} ms, CPU per hold median Tally ${median(result.tallyCpu).toFixed(2)} ms + Postgres ${median(result.pgCpu).toFixed(2)} ms`,
          );
          return result;
        };
        /**
         * Holds at 500/s in steps of WARM_STEP_SECONDS until Tally's CPU per hold stops falling
         * (V8 has compiled the hold's path: until then its compiler threads take cores from the
         * holds, and the first seconds cost up to twice the CPU of the steady state).
         */
        const warmUp = async (
          label: string,
          base: string,
          key: string,
          tally: (() => Promise<number[]> | number[]) | 'self',
        ) => {
          const steps: string[] = [];
          let previous = Number.POSITIVE_INFINITY;
          for (let step = 1; step <= WARM_MAX_STEPS; step++) {
            const meter = await CpuMeter.start(tally);
            const { latencies, failures } = await generator.run({
              kind: 'open',
              base,
              key,
              rate: WARM_RATE,
              seconds: WARM_STEP_SECONDS,
            });
            const cpu = (await meter.ms()) / (WARM_RATE * WARM_STEP_SECONDS);
            steps.push(
              `p99 ${percentile(latencies, 99).toFixed(2)} ms, Tally CPU per hold ${cpu.toFixed(2)} ms${failures ? `, ${failures} failed` : ''}`,
            );
            const settled = step >= WARM_MIN_STEPS && cpu >= previous * (1 - WARM_SETTLED_DROP);
            previous = cpu;
            if (settled || options.quick) break;
          }
          const text = `${label} warm-up at ${WARM_RATE}/s, ${steps.length} steps of ${WARM_STEP_SECONDS} s (not counted): ${steps.join('; ')}`;
          options.log(`  ${database.label} ${text}`);
          lines.push(`- ${text}`);
        };
        type Measured = Awaited<ReturnType<typeof measure>>;
        /** The rows of a set at 500/s, each beside the bare answer's figure (`bare`). */
        const rowsAt500 = (where: string, latencyWhere: string, r: Measured, bare: Measured) => {
          const beside = (runs: number[]) => ({ baseline: { label: BASELINE_LABEL, runs } });
          measurements.push(
            {
              benchmark: `hold round trip p50 at 500/s${latencyWhere}`,
              runs: r.p50,
              ...common,
              ...beside(bare.p50),
            },
            {
              benchmark: `hold round trip p99 at 500/s${latencyWhere}`,
              runs: r.p99,
              ...common,
              target: TARGET_P99_MS,
              ...beside(bare.p99),
            },
            {
              benchmark: `Tally CPU per hold at 500/s, ${where}`,
              runs: r.tallyCpu,
              ...common,
              ...beside(bare.tallyCpu),
            },
            { benchmark: `Postgres CPU per hold at 500/s, ${where}`, runs: r.pgCpu, ...common },
          );
        };
        try {
          const running = await database.startTally();
          const base = running.url;
          const op = BENCH_OPERATOR_KEY;
          const org = await json(`${base}/v1/orgs`, op, 'POST', {
            name: 'Bench',
            currency: 'EUR',
            timezone: 'Europe/Berlin',
          });
          await json(`${base}/v1/orgs/${org.id}/grants`, op, 'POST', {
            kind: 'topup',
            amount_credits: '100000000',
          });
          const key = (await json(`${base}/v1/orgs/${org.id}/api_keys`, op, 'POST', { name: 'bench' }))
            .key as string;
          await json(`${base}/v1/orgs/${org.id}/limits`, key, 'PUT', {
            alert_threshold: '900000',
            allowed_limit: '1000000',
          });
          // The bytes of a real approval, which the baseline server answers with.
          const approval = JSON.stringify(await json(`${base}/v1/authorizations`, key, 'POST', holdBody(0)));
          /** A baseline server at 500/s, after a warm-up of WARM_MIN_STEPS steps. */
          const measureBare = async (label: string, databaseUrl?: string) => {
            const bareServer = await startBareServer(approval, databaseUrl);
            try {
              const job: Job = { kind: 'open', base: bareServer.url, key, rate: 500, seconds };
              for (let step = 0; step < WARM_MIN_STEPS; step++) {
                await generator.run({ ...job, seconds: WARM_STEP_SECONDS });
              }
              return await measure(`Baseline (${label}), 500/s`, () => [bareServer.pid], job, 'server');
            } finally {
              bareServer.stop();
            }
          };
          const bare = await measureBare(BASELINE_LABEL);
          await database.withRaw(async (raw) => {
            await raw.query(`CREATE TABLE ${FLOOR_TABLE} (id int PRIMARY KEY, n bigint NOT NULL)`);
            await raw.query(`INSERT INTO ${FLOOR_TABLE} VALUES (1, 0)`);
          });
          const floor = await measureBare(FLOOR_LABEL, database.url!);
          for (const p of ['p50', 'p99'] as const) {
            measurements.push({
              benchmark: `baseline round trip ${p} at 500/s: ${FLOOR_LABEL}`,
              runs: floor[p],
              ...common,
            });
          }
          await warmUp('Tally in the bench process', base, key, 'self');
          // One client, one hold at a time: the unqueued round trip, and so the capacity of one org.
          const serial = await measure('Tally in the bench process, one client', 'self', {
            kind: 'serial',
            base,
            key,
            count: options.quick ? 100 : 500,
          });
          measurements.push({ benchmark: 'hold round trip p50, one client', runs: serial.p50, ...common });
          for (const rate of RATES) {
            const r = await measure(`Tally in the bench process, ${rate}/s`, 'self', {
              kind: 'open',
              base,
              key,
              rate,
              seconds,
              probeKernel: rate === 500,
            });
            if (rate === 500) rowsAt500('Tally in the bench process', '', r, bare);
            else {
              measurements.push(
                { benchmark: `hold round trip p50 at ${rate}/s`, runs: r.p50, ...common },
                { benchmark: `hold round trip p99 at ${rate}/s`, runs: r.p99, ...common },
              );
            }
          }
          const databaseUrl = running.tally.config.DATABASE_URL!;
          await running.stop();
          // The same holds served by `npm start` in its own process(es): what TALLY_WORKERS buys
          // beside Postgres and the load generator on this machine.
          for (const workers of WORKERS) {
            const tally = await startTallyProcesses(databaseUrl, workers);
            const where = `Tally in ${workers === 1 ? 'its own process' : `${workers} worker processes`}`;
            try {
              await warmUp(`TALLY_WORKERS=${workers}`, tally.url, key, () => processTree(tally.pid));
              // At the target rate only: 2 000/s queues for many seconds whichever way Tally runs.
              const r = await measure(`TALLY_WORKERS=${workers}, 500/s`, () => processTree(tally.pid), {
                kind: 'open',
                base: tally.url,
                key,
                rate: 500,
                seconds,
                probeKernel: true,
              });
              rowsAt500(where, `, ${where}`, r, bare);
            } finally {
              await tally.stop();
            }
          }
        } finally {
          await database.dispose();
        }
      }
    } finally {
      await generator.stop();
    }
    lines.push(
      `- ${availableParallelism()} cores; the runs above are in the order they ran (Tally, Postgres and the load generator share the cores)`,
    );
    return { measurements, sections: [{ title: 'Hold round trip runs', lines }] };
  },
};
