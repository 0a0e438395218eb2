/**
 * Real Tally processes for tests that need several of them on one database: `tsx src/main.ts`
 * on a free port, ready when /readyz answers 200, stopped with SIGTERM (SIGKILL if it lingers).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { OPERATOR_KEY } from './harness.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface TallyProcess {
  url: string;
  pid: number;
  /** What the process wrote to stdout and stderr so far (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

/** A port nothing listens on right now (the kernel's pick, released again at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Starts one Tally process on `databaseUrl` and waits until it is ready. */
export async function startProcess(options: {
  databaseUrl: string;
  jobs?: boolean;
  env?: Record<string, string>;
  readyTimeoutMs?: number;
}): Promise<TallyProcess> {
  const port = await freePort();
  const child = spawn(`${ROOT}node_modules/.bin/tsx`, ['src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      DATABASE_READ_URL: '',
      PORT: String(port),
      HOST: '127.0.0.1',
      TALLY_DEMO: '0',
      TALLY_ADMIN_KEY: OPERATOR_KEY,
      TALLY_LOG: 'off',
      TALLY_JOBS: options.jobs ? '1' : '0',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  const proc: TallyProcess = {
    url,
    pid: child.pid!,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const done = exited(child);
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await done;
      clearTimeout(timer);
    },
  };
  // Generous: three processes compiling and migrating at once on a loaded 2-core machine took over 30 s.
  const deadline = Date.now() + (options.readyTimeoutMs ?? 90_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Tally exited with ${child.exitCode}:\n${output}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.status === 200) return proc;
    } catch {}
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`Tally on port ${port} not ready in time:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts several processes at once (only the first runs the jobs, unless told otherwise). */
export async function startProcesses(
  count: number,
  options: { databaseUrl: string; jobsOn?: number[]; env?: Record<string, string> },
): Promise<TallyProcess[]> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, (_, i) =>
      startProcess({
        databaseUrl: options.databaseUrl,
        jobs: (options.jobsOn ?? [0]).includes(i),
        ...(options.env ? { env: options.env } : {}),
      }),
    ),
  );
  const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await stopProcesses(ok);
    throw (failed as PromiseRejectedResult).reason;
  }
  return ok;
}

export async function stopProcesses(processes: TallyProcess[]): Promise<void> {
  await Promise.all(processes.map((p) => p.stop()));
}

/** One JSON request to a process; the body parsed when it is JSON. */
export async function request<T = any>(
  baseUrl: string,
  method: string,
  path: string,
  options: { key?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = {
    ...options.headers,
    authorization: `Bearer ${options.key ?? OPERATOR_KEY}`,
  };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, body: body as T };
}
