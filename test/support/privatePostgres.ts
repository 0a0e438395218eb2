/**
 * A Postgres cluster of a test's own (initdb into a temporary folder, another port), for tests that
 * stop and start the server: the shared server other tests use is never touched. Postgres refuses
 * to run as root, so every command runs as the postgres OS user when the test runs as root.
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './processes.ts';

const run = promisify(execFile);

function binary(name: string): string {
  const root = '/usr/lib/postgresql';
  const version = readdirSync(root).sort((a, b) => Number(b) - Number(a))[0];
  if (!version) throw new Error(`no Postgres under ${root}`);
  return join(root, version, 'bin', name);
}

export interface PrivatePostgres {
  url: string;
  /** Stops the server (fast: open sessions are cut), waits `downMs`, starts it again. */
  restart(downMs: number): Promise<{ stoppedAt: number; startedAt: number }>;
  stop(): Promise<void>;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'tally-pg-'));
  const data = join(dir, 'data');
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout), Number(gid));
  }
  chmodSync(dir, 0o700);
  const pg = (name: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', binary(name), ...args]) : run(binary(name), args);
  const port = await freePort();
  await pg('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  const start = () =>
    pg('pg_ctl', [
      '-D',
      data,
      '-l',
      join(dir, 'log'),
      '-w',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`,
      'start',
    ]);
  const stopNow = () => pg('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async restart(downMs) {
      await stopNow();
      const stoppedAt = Date.now();
      await new Promise((r) => setTimeout(r, downMs));
      await start();
      return { stoppedAt, startedAt: Date.now() };
    },
    async stop() {
      await stopNow().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
