/**
 * Authorization round trip: POST /v1/authorizations over real HTTP at a fixed arrival rate (open
 * loop: requests leave on schedule whether or not earlier ones have answered, and latency counts
 * from the scheduled start, so queueing is not hidden). Each hold takes the org's balance lock.
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { BENCH_OPERATOR_KEY, openBenchDatabase } from './support/databases.ts';
import { median } from './support/stats.ts';
import type { BenchModule, BenchOptions, BenchResult, Measurement } from './types.ts';

const RATES = [500, 2000];
const RUNS = 3;
/** Tally also runs as `npm start` does, in its own process(es), so the load generator does not share its CPU. */
const WORKERS = [1, 2];

/** `src/main.ts` on the bench database with TALLY_WORKERS processes; answers its URL and a stop. */
async function startTallyProcesses(databaseUrl: string, workers: number) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('../src/main.ts', import.meta.url))],
    {
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        PORT: '0',
        HOST: '127.0.0.1',
        TALLY_WORKERS: String(workers),
        TALLY_LOG: 'off',
        TALLY_DEMO: '0',
        TALLY_JOBS: '0',
        TALLY_ADMIN_KEY: BENCH_OPERATOR_KEY,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let said = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      said += chunk.toString();
      const found = said.match(/Dashboard:\s+(http:\/\/\S+?)\/\s/);
      if (found) resolve(found[1]!);
    });
    child.once('exit', (code) => reject(new Error(`Tally exited with ${code}: ${said}`)));
  });
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function json(url: string, key: string, method: string, body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = (await res.json()) as Record<string, unknown>;
  if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(answer)}`);
  return answer;
}

/** Sends `rate` holds a second for `seconds`; answers the sorted latencies in ms and the failures. */
async function openLoop(
  base: string,
  key: string,
  rate: number,
  seconds: number,
): Promise<{ latencies: number[]; failures: number }> {
  const total = rate * seconds;
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  const started = performance.now();
  let sent = 0;
  let failures = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate) + 1);
    for (; sent < due; sent++) {
      const scheduled = started + (sent / rate) * 1000;
      const member = `bench-member-${sent % 100}`;
      pending.push(
        json(`${base}/v1/authorizations`, key, 'POST', {
          member,
          feature: 'Chat',
          provider: 'openai',
          model: 'gpt-4o-mini',
          estimate: { credits: '1' },
        }).then(
          (answer) => {
            if (answer.approved !== true) failures++;
            latencies.push(performance.now() - scheduled);
          },
          () => {
            failures++;
          },
        ),
      );
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  return { latencies: latencies.sort((a, b) => a - b), failures };
}

export const authorize: BenchModule = {
  name: 'authorize',
  description:
    'Hold round trip: `POST /v1/authorizations` (estimate 1 credit, 100 members of one EUR org with a monthly limit and a large grant) over real HTTP at a fixed arrival rate (open loop; latency counted from each request’s scheduled start), first from the same process, then with Tally started as `npm start` does in its own process (TALLY_WORKERS=1) and in 2 worker processes (TALLY_WORKERS=2), the load generator staying in the bench process. Each hold is one statement (`tally_place_hold`): it locks the org balance row, reads the counters and writes the hold, its ledger entry and the counters inside Postgres. Figures are the median over runs of each run’s p50 and p99.',
  async run(options: BenchOptions): Promise<BenchResult> {
    const measurements: Measurement[] = [];
    const lines: string[] = [];
    const seconds = options.quick ? 2 : 5;
    for (const kind of options.databases.filter((k) => k === 'server')) {
      const database = await openBenchDatabase(kind, options.serverUrl);
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
        await openLoop(base, key, 200, 1);
        // One client, one hold at a time: the unqueued round trip, and so the capacity of one org.
        const serial: number[] = [];
        for (let run = 1; run <= RUNS; run++) {
          const times: number[] = [];
          for (let i = 0; i < (options.quick ? 100 : 500); i++) {
            const t0 = performance.now();
            await json(`${base}/v1/authorizations`, key, 'POST', {
              member: `bench-member-${i % 100}`,
              feature: 'Chat',
              provider: 'openai',
              model: 'gpt-4o-mini',
              estimate: { credits: '1' },
            });
            times.push(performance.now() - t0);
          }
          times.sort((a, b) => a - b);
          serial.push(percentile(times, 50));
          options.log(`  ${database.label} one client run ${run}: p50 ${serial.at(-1)!.toFixed(2)} ms`);
        }
        measurements.push({
          benchmark: 'hold round trip p50, one client',
          database: database.label,
          unit: 'ms',
          better: 'lower',
          runs: serial,
        });
        for (const rate of RATES) {
          const p50: number[] = [];
          const p99: number[] = [];
          for (let run = 1; run <= RUNS; run++) {
            const { latencies, failures } = await openLoop(base, key, rate, seconds);
            p50.push(percentile(latencies, 50));
            p99.push(percentile(latencies, 99));
            options.log(
              `  ${database.label} ${rate}/s run ${run}: p50 ${p50.at(-1)!.toFixed(2)} ms, p99 ${p99.at(-1)!.toFixed(2)} ms (${latencies.length} holds answered, ${failures} failed)`,
            );
            lines.push(
              `- ${rate}/s run ${run}: ${latencies.length} holds answered, ${failures} failed (connection errors or refusals)`,
            );
          }
          const common = { database: database.label, unit: 'ms', better: 'lower' as const };
          measurements.push({ benchmark: `hold round trip p50 at ${rate}/s`, runs: p50, ...common });
          measurements.push({
            benchmark: `hold round trip p99 at ${rate}/s`,
            runs: p99,
            ...common,
            ...(rate === 500 ? { target: 5 } : {}),
          });
          lines.push(
            `- ${rate}/s for ${seconds} s x ${RUNS} runs: p50 median ${median(p50).toFixed(2)} ms, p99 median ${median(p99).toFixed(2)} ms`,
          );
        }
        const databaseUrl = running.tally.config.DATABASE_URL!;
        await running.stop();
        // The same holds served by `npm start` in its own process(es): Node's CPU is the limit, so
        // this shows what TALLY_WORKERS buys beside Postgres and the load generator on this machine.
        for (const workers of WORKERS) {
          const tally = await startTallyProcesses(databaseUrl, workers);
          try {
            await openLoop(tally.url, key, 200, 1);
            // At the target rate only: 2 000/s queues for many seconds whichever way Tally runs.
            for (const rate of [500]) {
              const p50: number[] = [];
              const p99: number[] = [];
              for (let run = 1; run <= RUNS; run++) {
                const { latencies, failures } = await openLoop(tally.url, key, rate, seconds);
                p50.push(percentile(latencies, 50));
                p99.push(percentile(latencies, 99));
                const load = loadavg()[0]!.toFixed(2);
                options.log(
                  `  ${database.label} TALLY_WORKERS=${workers} ${rate}/s run ${run}: p50 ${p50.at(-1)!.toFixed(2)} ms, p99 ${p99.at(-1)!.toFixed(2)} ms (${latencies.length} answered, ${failures} failed, load average ${load})`,
                );
                lines.push(
                  `- own process(es), TALLY_WORKERS=${workers}, ${rate}/s run ${run}: ${latencies.length} holds answered, ${failures} failed; 1-minute load average ${load}`,
                );
              }
              const common = { database: database.label, unit: 'ms', better: 'lower' as const };
              const where = `Tally in ${workers === 1 ? 'its own process' : `${workers} worker processes`}`;
              measurements.push({
                benchmark: `hold round trip p50 at ${rate}/s, ${where}`,
                runs: p50,
                ...common,
              });
              measurements.push({
                benchmark: `hold round trip p99 at ${rate}/s, ${where}`,
                runs: p99,
                ...common,
                target: 5,
              });
            }
          } finally {
            await tally.stop();
          }
        }
      } finally {
        await database.dispose();
      }
    }
    return { measurements, sections: [{ title: 'Hold round trip runs', lines }] };
  },
};
