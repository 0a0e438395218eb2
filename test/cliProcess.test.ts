/**
 * The `tally` bin as a user runs it: a child process on a database of its own (a Postgres server
 * database, or an embedded data folder), checked from the test through the API afterwards.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../src/cli/main.ts';
import { loadConfig } from '../src/config.ts';
import { prepare, type Tally } from '../src/server.ts';
import { freshDb, OPERATOR_KEY, onServer } from './support/harness.ts';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '../bin/tally.mjs');

let dir: string;
let env: Record<string, string>;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tally-bin-'));
  if (onServer) {
    const { db, url } = await freshDb();
    await db.close();
    env = { DATABASE_URL: url! };
  } else {
    env = { TALLY_DATA_DIR: join(dir, 'data') };
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The bin with only the database settings of this test (and the operator key) in its environment. */
async function tally(...argv: string[]) {
  const { DATABASE_URL: _url, TALLY_DATA_DIR: _dir, TALLY_ADMIN_KEY: _key, ...inherited } = process.env;
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...argv], {
      env: { ...inherited, ...env, TALLY_ADMIN_KEY: OPERATOR_KEY },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** Tally on the bin's database, in this process (an embedded folder takes one process at a time). */
async function onTheDatabase<T>(fn: (t: Tally) => Promise<T>): Promise<T> {
  const t = await prepare(loadConfig({ ...env, TALLY_ADMIN_KEY: OPERATOR_KEY, TALLY_LOG: 'off' }));
  try {
    return await fn(t);
  } finally {
    await t.db.close();
  }
}

async function request(t: Tally, method: string, path: string, key: string, body?: unknown) {
  const res = await t.app.request(path, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

describe('tally bin', () => {
  it('answers --help for every command', async () => {
    const helps = await Promise.all(COMMANDS.map((c) => tally(...c.name.split(' '), '--help')));
    helps.forEach((help, i) => {
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^Usage: tally ${COMMANDS[i]!.name}`));
      expect(help.stdout).toContain('-h, --help');
    });
    const overview = await tally('--help');
    for (const command of COMMANDS) expect(overview.stdout).toContain(`  ${command.name} `);
  });

  it('keeps npm run tally working (src/cli/main.ts runs on its own)', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'migrate', '--help'],
      {
        cwd: join(import.meta.dirname, '..'),
      },
    );
    expect(stdout).toMatch(/^Usage: tally migrate/);
  });

  /** `tally start` in a child process on this test's database; answers the child and its URL. */
  async function startBin(extra: Record<string, string> = {}) {
    const { DATABASE_URL: _url, TALLY_DATA_DIR: _dir, TALLY_ADMIN_KEY: _key, ...inherited } = process.env;
    const child = spawn(process.execPath, [BIN, 'start', '--port', '0', '--host', '127.0.0.1'], {
      env: {
        ...inherited,
        ...env,
        TALLY_ADMIN_KEY: OPERATOR_KEY,
        TALLY_DEMO: '0',
        TALLY_JOBS: '0',
        TALLY_LOG: 'off',
        ...extra,
      },
    });
    const exited = once(child, 'exit');
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
        const found = /API docs: +(http:\/\/[\d.:]+)\/docs/.exec(stderr);
        if (found) resolve(found[1]!);
      });
      child.on('exit', () => reject(new Error(`start exited: ${stderr}`)));
    });
    return { child, exited, url };
  }

  it('start serves the API until SIGTERM', async () => {
    const { child, exited, url } = await startBin();
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    child.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
  }, 120_000);

  // Workers need a Postgres server (the embedded database serves one process).
  it.skipIf(!onServer)(
    'counts every worker in each /metrics scrape under TALLY_WORKERS=2, whichever worker answers it',
    async () => {
      const { child, exited, url } = await startBin({ TALLY_WORKERS: '2' });
      try {
        // One connection a request: the cluster hands connections to its workers in turn.
        const get = (path: string) =>
          new Promise<{ status: number; body: string }>((resolve, reject) => {
            http
              .get(`${url}${path}`, { agent: false }, (res) => {
                let body = '';
                res.on('data', (chunk) => {
                  body += chunk;
                });
                res.on('end', () => resolve({ status: res.statusCode!, body }));
              })
              .on('error', reject);
          });
        for (let i = 0; i < 10; i++) expect((await get('/readyz')).status).toBe(200);
        for (let scrape = 0; scrape < 4; scrape++) {
          const metrics = await get('/metrics');
          expect(metrics.status).toBe(200);
          expect(metrics.body).toContain(
            'tally_http_requests_total{method="GET",route="/readyz",status="200"} 10\n',
          );
        }
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    },
    120_000,
  );

  it('migrates, then keys create prints a key that works', async () => {
    expect(await tally('migrate')).toMatchObject({ code: 0, stdout: 'Migrations applied.\n' });
    const org = await onTheDatabase((t) =>
      request(t, 'POST', '/v1/orgs', OPERATOR_KEY, { name: 'Bin', currency: 'USD', timezone: 'UTC' }),
    );
    expect(org.status).toBe(201);

    const created = await tally(
      'keys',
      'create',
      '--org',
      org.body.id,
      '--name',
      'backend',
      '--role',
      'viewer',
    );
    expect(created.code).toBe(0);
    expect(created.stderr).toMatch(/Created key key_\w+ \(viewer\)/);
    const key = created.stdout.trim();
    expect(key).toMatch(/^\S{24,}$/);
    const seen = await onTheDatabase((t) => request(t, 'GET', `/v1/orgs/${org.body.id}`, key));
    expect(seen).toMatchObject({ status: 200, body: { id: org.body.id } });
    const refused = await onTheDatabase((t) => request(t, 'GET', `/v1/orgs/${org.body.id}`, `${key}x`));
    expect(refused.status).toBe(401);

    const missing = await tally('keys', 'create', '--org', 'org_nope');
    expect(missing).toMatchObject({ code: 1, stderr: expect.stringContaining('Organization not found') });
  });

  it('exits non-zero and names the line of a bad row', async () => {
    const org = await onTheDatabase((t) =>
      request(t, 'POST', '/v1/orgs', OPERATOR_KEY, { name: 'Rows', currency: 'EUR', timezone: 'UTC' }),
    );
    const file = join(dir, 'rows.csv');
    const at = new Date(Date.now() - 3_600_000).toISOString();
    writeFileSync(
      file,
      `member,feature,provider,model,occurred_at,input_tokens\nu1,Chat,openai,gpt-4o,${at},10\nu1,,openai,gpt-4o,${at},10\n`,
    );
    const result = await tally('import', file, '--org', org.body.id);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('rows.csv line 3: feature:');
    expect(result.stdout).toContain('2 rows, 1 accepted');
  });

  it('stops an import on Ctrl-C after the batch in flight, and resumes it from there', async () => {
    const org = await onTheDatabase((t) =>
      request(t, 'POST', '/v1/orgs', OPERATOR_KEY, { name: 'Resume', currency: 'EUR', timezone: 'UTC' }),
    );
    const rows = 20_000;
    const at = new Date(Date.now() - 3_600_000).toISOString();
    const file = join(dir, 'big.jsonl');
    const line = (i: number) =>
      JSON.stringify({
        member: `u${i % 9}`,
        feature: 'Chat',
        provider: 'openai',
        model: 'gpt-4o',
        occurred_at: at,
        usage: { input_tokens: 100 + i },
      });
    writeFileSync(file, Array.from({ length: rows }, (_, i) => line(i)).join('\n'));

    const { DATABASE_URL: _url, TALLY_DATA_DIR: _dir, TALLY_ADMIN_KEY: _key, ...inherited } = process.env;
    const child = spawn(process.execPath, [BIN, 'import', file, '--org', org.body.id], {
      env: { ...inherited, ...env, TALLY_ADMIN_KEY: OPERATOR_KEY },
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const exited = once(child, 'exit');
    const state = `${file}.tally-import`;
    while (!existsSync(state)) await new Promise((resolve) => setTimeout(resolve, 20));
    child.kill('SIGINT');
    const [code] = await exited;
    expect(code).toBe(130);
    const saved = JSON.parse(readFileSync(state, 'utf8'));
    expect(stderr).toContain(`Interrupted: rows up to line ${saved.line} are imported`);
    expect(saved.line).toBeLessThan(rows);
    const counted = async () =>
      onTheDatabase(async (t) => {
        const [row] = await t.db.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE org_id = $1', [
          org.body.id,
        ]);
        return Number(row!.n);
      });
    expect(await counted()).toBe(saved.line);

    const resumed = await tally('import', file, '--org', org.body.id);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toContain(`Resuming big.jsonl after line ${saved.line}`);
    expect(resumed.stdout).toContain(`${rows} rows, ${rows} accepted, 0 duplicate`);
    expect(await counted()).toBe(rows);
    expect(existsSync(state)).toBe(false);
  }, 300_000);
});
