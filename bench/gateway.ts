/**
 * Gateway overhead: the same streamed chat completions sent straight to a local upstream and
 * through Tally's gateway, 200 streams at a time. The upstream (test/support/fakeProviders.ts)
 * runs in a child process so it does not share Tally's event loop; the clients read raw SSE
 * with fetch. Added latency is the gateway's percentile minus the direct one, for the first
 * byte (the hold is placed before forwarding) and for the whole stream (billing included: the
 * stream closes once the capture is committed).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startFakeProviders } from '../test/support/fakeProviders.ts';
import { BENCH_OPERATOR_KEY, openBenchDatabase } from './support/databases.ts';
import { median } from './support/stats.ts';
import type { BenchModule, BenchOptions, BenchResult, Measurement } from './types.ts';

const CONCURRENCY = 200;
/** Streams are spread over this many orgs: holds of one org queue on its balance lock. */
const ORGS = 20;
const CHUNKS = 20;
const CHUNK_DELAY_MS = 5;
const RUNS = 3;

const FAKE_UPSTREAM_FLAG = '--fake-upstream';
const UPSTREAM_KEY = 'sk-bench-upstream';

/** The child: serves the fake providers and tells the parent their address. */
if (process.argv.includes(FAKE_UPSTREAM_FLAG)) {
  const fake = await startFakeProviders({ chunks: CHUNKS, chunkDelayMs: CHUNK_DELAY_MS });
  process.send?.({ url: fake.url });
  process.on('disconnect', () => void fake.close().then(() => process.exit(0)));
}

function startUpstreamProcess(): Promise<{ url: string; child: ChildProcess }> {
  const child = fork(fileURLToPath(import.meta.url), [FAKE_UPSTREAM_FLAG], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ url: (m as { url: string }).url, child }));
    child.once('exit', (code) => reject(new Error(`fake upstream exited with ${code}`)));
  });
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

interface Timing {
  firstByte: number;
  total: number;
}

/** One streamed chat completion, read to the end. */
async function stream(url: string, headers: Record<string, string>): Promise<Timing> {
  const started = performance.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say twenty words' }],
      max_completion_tokens: 100,
      stream: true,
    }),
  });
  if (res.status !== 200 || !res.body) throw new Error(`stream answered ${res.status}: ${await res.text()}`);
  let firstByte = 0;
  for await (const _ of res.body) firstByte ||= performance.now() - started;
  return { firstByte, total: performance.now() - started };
}

/** `CONCURRENCY` streams at once; answers the sorted first-byte and total latencies. */
async function round(send: (i: number) => Promise<Timing>) {
  const timings = await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => send(i)));
  return {
    firstByte: timings.map((t) => t.firstByte).sort((a, b) => a - b),
    total: timings.map((t) => t.total).sort((a, b) => a - b),
  };
}

export const gateway: BenchModule = {
  name: 'gateway',
  description: `Gateway overhead: ${CONCURRENCY} concurrent streamed chat completions (${CHUNKS} chunks ${CHUNK_DELAY_MS} ms apart from a local upstream in its own process, spread over ${ORGS} orgs with monthly limits) sent straight to the upstream and through \`/gateway/openai/v1/chat/completions\`, read as raw SSE with fetch from the Tally process. Each gateway stream places a hold, bills one increment while streaming and captures before it closes. Added latency = gateway percentile - direct percentile, for the first byte and for the whole stream; figures are medians over runs.`,
  async run(options: BenchOptions): Promise<BenchResult> {
    const measurements: Measurement[] = [];
    const lines: string[] = [];
    const runs = options.quick ? 1 : RUNS;
    const upstream = await startUpstreamProcess();
    try {
      for (const kind of options.databases) {
        const database = await openBenchDatabase(kind, options.serverUrl);
        const running = await database.startTally();
        // Bench Tallies start with the default settings; aim this one's gateway at the local upstream.
        Object.assign(running.tally.config, {
          TALLY_UPSTREAM_OPENAI_URL: upstream.url,
          OPENAI_API_KEY: UPSTREAM_KEY,
        });
        try {
          const keys: string[] = [];
          for (let i = 0; i < ORGS; i++) {
            const org = await json(`${running.url}/v1/orgs`, BENCH_OPERATOR_KEY, 'POST', {
              name: `Bench ${i}`,
              currency: 'EUR',
              timezone: 'Europe/Berlin',
            });
            await json(`${running.url}/v1/orgs/${org.id}/grants`, BENCH_OPERATOR_KEY, 'POST', {
              kind: 'topup',
              amount_credits: '100000000',
            });
            const key = await json(`${running.url}/v1/orgs/${org.id}/api_keys`, BENCH_OPERATOR_KEY, 'POST', {
              name: 'bench',
            });
            await json(`${running.url}/v1/orgs/${org.id}/limits`, key.key as string, 'PUT', {
              alert_threshold: '900000',
              allowed_limit: '1000000',
            });
            keys.push(key.key as string);
          }
          const direct = (_: number) =>
            stream(`${upstream.url}/v1/chat/completions`, { authorization: `Bearer ${UPSTREAM_KEY}` });
          const viaGateway = (i: number) =>
            stream(`${running.url}/gateway/openai/v1/chat/completions`, {
              authorization: `Bearer ${keys[i % ORGS]}`,
              'tally-member': `member-${i % 50}`,
              'tally-feature': 'chat',
            });
          // Warm both paths (connections, JIT, the price book) before measuring.
          await round(direct);
          await round(viaGateway);
          const added: Record<string, number[]> = {};
          const record = (name: string, value: number) => {
            added[name] ??= [];
            added[name].push(value);
          };
          for (let run = 1; run <= runs; run++) {
            const base = await round(direct);
            const through = await round(viaGateway);
            for (const [what, key] of [
              ['first byte', 'firstByte'],
              ['whole stream', 'total'],
            ] as const) {
              for (const p of [50, 99]) {
                const d = percentile(base[key], p);
                const t = percentile(through[key], p);
                record(`${what} p${p}`, t - d);
                lines.push(
                  `- ${database.label} run ${run}, ${what} p${p}: direct ${d.toFixed(1)} ms, through the gateway ${t.toFixed(1)} ms, added ${(t - d).toFixed(1)} ms`,
                );
              }
            }
            options.log(`  ${database.label} run ${run} done`);
          }
          for (const [name, values] of Object.entries(added)) {
            measurements.push({
              benchmark: `gateway added latency, ${name}, ${CONCURRENCY} streams`,
              database: database.label,
              unit: 'ms',
              better: 'lower',
              runs: values,
              ...(name.endsWith('p99') ? { target: 10 } : {}),
            });
          }
          lines.push(
            `- ${database.label}: added first byte p50 median ${median(added['first byte p50']!).toFixed(1)} ms, p99 median ${median(added['first byte p99']!).toFixed(1)} ms`,
          );
        } finally {
          await running.stop();
          await database.dispose();
        }
      }
    } finally {
      upstream.child.disconnect();
    }
    return { measurements, sections: [{ title: 'Gateway overhead runs', lines }] };
  },
};
