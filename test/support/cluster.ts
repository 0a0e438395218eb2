/**
 * A client of several Tally processes, as a host app behind a round-robin load balancer would be:
 * each request goes to the next live process; a request that gets no answer, a 5xx or a 429 is
 * sent again, unchanged (same event ids, same Idempotency-Key), to the next one.
 */
import { OPERATOR_KEY } from './harness.ts';
import type { TallyProcess } from './processes.ts';

export class RoundRobin {
  private turn = 0;
  /** Requests that had to be sent again, and why (status or error code). */
  readonly retries = new Map<string, number>();
  private readonly inFlight = new Map<TallyProcess, number>();

  constructor(readonly processes: TallyProcess[]) {}

  private next(): TallyProcess | undefined {
    if (this.processes.length === 0) return undefined;
    return this.processes[this.turn++ % this.processes.length];
  }

  /** Takes a process out of the rotation and waits until none of its requests is still running. */
  async drain(target: TallyProcess): Promise<void> {
    const index = this.processes.indexOf(target);
    if (index >= 0) this.processes.splice(index, 1);
    while ((this.inFlight.get(target) ?? 0) > 0) await new Promise((r) => setTimeout(r, 10));
  }

  /** Sends until an answer below 500 (and not 429) comes back, or `deadlineMs` passes. */
  async send<T = any>(
    method: string,
    path: string,
    options: { key?: string; body?: unknown; headers?: Record<string, string>; deadlineMs?: number } = {},
  ): Promise<{ status: number; body: T; attempts: number }> {
    const deadline = Date.now() + (options.deadlineMs ?? 120_000);
    for (let attempts = 1; ; attempts++) {
      const target = this.next();
      let why: string;
      if (target) {
        this.inFlight.set(target, (this.inFlight.get(target) ?? 0) + 1);
        try {
          const res = await fetch(`${target.url}${path}`, {
            method,
            headers: {
              authorization: `Bearer ${options.key ?? OPERATOR_KEY}`,
              ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
              ...options.headers,
            },
            ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
            signal: AbortSignal.timeout(30_000),
          });
          const text = await res.text();
          if (res.status < 500 && res.status !== 429) {
            let body: unknown = text;
            try {
              body = JSON.parse(text);
            } catch {}
            return { status: res.status, body: body as T, attempts };
          }
          why = String(res.status);
        } catch (e) {
          const cause = (e as { cause?: { code?: string } }).cause;
          why = cause?.code ?? (e as Error).name;
        } finally {
          this.inFlight.set(target, this.inFlight.get(target)! - 1);
        }
      } else {
        why = 'no process';
      }
      this.retries.set(why, (this.retries.get(why) ?? 0) + 1);
      if (Date.now() > deadline)
        throw new Error(`${method} ${path}: no answer before the deadline (last: ${why})`);
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
    }
  }
}

/** Events `first` .. `first + count - 1` of a workload: fixed ids, members, features and sizes. */
export function eventBatch(first: number, count: number, options: { minutesBack?: number } = {}) {
  const now = Date.now();
  return Array.from({ length: count }, (_, i) => {
    const n = first + i;
    return {
      id: `evt-${n}`,
      member: `member-${n % 17}`,
      feature: n % 3 === 0 ? 'Search' : 'Chat',
      provider: 'openai',
      model: n % 5 === 0 ? 'gpt-4o' : 'gpt-4o-mini',
      occurred_at: new Date(now - ((n * 7919) % ((options.minutesBack ?? 600) * 60_000))).toISOString(),
      usage: { input_tokens: 100 + (n % 900), output_tokens: 10 + (n % 300) },
    };
  });
}
