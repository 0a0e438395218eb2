/**
 * Tally as `npm start` runs it (src/main.ts), in a process of its own on a bench database: what the
 * benches measure when the bench process's own heap and work must not share Tally's event loop.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BENCH_OPERATOR_KEY } from './databases.ts';

/** The Node.js flags `npm start` gives Tally, read from package.json's start script. */
export const START_NODE_FLAGS: string[] = (() => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  const found = /\btsx ((?:--\S+ )*)src\/main\.ts/.exec(pkg.scripts.start);
  if (!found) throw new Error(`package.json's start script does not run src/main.ts: ${pkg.scripts.start}`);
  return found[1]!.split(' ').filter(Boolean);
})();

/**
 * `src/main.ts` with the Node.js flags of `npm start` (package.json), on the database with
 * TALLY_WORKERS processes; answers its URL, pid and a stop.
 */
export async function startTallyProcesses(databaseUrl: string, workers: number) {
  const child = spawn(
    process.execPath,
    [...START_NODE_FLAGS, '--import', 'tsx', fileURLToPath(new URL('../../src/main.ts', import.meta.url))],
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
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
