/**
 * Builds the web app when dist/web is missing or older than its sources: `npm start` and the browser
 * tests call it, so a fresh clone needs nothing beyond `npm install && npm start`. A lock directory keeps
 * two callers (parallel test files) from building over each other.
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const WEB = fileURLToPath(new URL('..', import.meta.url));
const BUILT = join(WEB, '../dist/web/index.html');
const LOCK = join(WEB, '../dist/.web-build.lock');

async function newestSource(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const time = entry.isDirectory() ? await newestSource(path) : (await stat(path)).mtimeMs;
    newest = Math.max(newest, time);
  }
  return newest;
}

async function isStale(): Promise<boolean> {
  const built = await stat(BUILT).then(
    (s) => s.mtimeMs,
    () => 0,
  );
  const sources = Math.max(
    await newestSource(join(WEB, 'src')),
    (await stat(join(WEB, 'index.html'))).mtimeMs,
    (await stat(join(WEB, 'vite.config.ts'))).mtimeMs,
  );
  return built < sources;
}

export async function ensureWebBuilt(): Promise<'built' | 'fresh'> {
  if (!(await isStale())) return 'fresh';
  await mkdir(join(WEB, '../dist'), { recursive: true });
  for (;;) {
    try {
      await mkdir(LOCK);
      break;
    } catch {
      // Someone else is building; a lock older than two minutes is left over from a crash.
      const age =
        Date.now() -
        (await stat(LOCK).then(
          (s) => s.mtimeMs,
          () => Date.now(),
        ));
      if (age > 120_000) await rm(LOCK, { recursive: true, force: true });
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  try {
    if (!(await isStale())) return 'fresh';
    // A child process with NODE_ENV=production: the caller's (vitest sets "test") would select
    // React's development build.
    await promisify(execFile)(
      process.execPath,
      [
        join(WEB, '../node_modules/vite/bin/vite.js'),
        'build',
        '--config',
        join(WEB, 'vite.config.ts'),
        '--logLevel',
        'warn',
      ],
      { env: { ...process.env, NODE_ENV: 'production' } },
    );
    return 'built';
  } finally {
    await rm(LOCK, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = performance.now();
  const result = await ensureWebBuilt();
  if (result === 'built') {
    process.stderr.write(`Built the web app in ${Math.round(performance.now() - started)} ms\n`);
  }
}
