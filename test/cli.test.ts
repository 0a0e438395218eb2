/**
 * The CLI's commands run in-process against the test's Tally (both databases): import (idempotent,
 * bad rows by line number, resumable), export, prices refresh, seed and check.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitForUpdate } from '@pydantic/genai-prices';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main.ts';
import { checkLedger } from '../src/services/ledger/checkLedger.ts';
import { createOrgWithKey, startTally, type TestTally } from './support/harness.ts';

let t: TestTally;
let dir: string;
beforeAll(async () => {
  t = await startTally();
  dir = mkdtempSync(join(tmpdir(), 'tally-cli-'));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await t.close();
});

/** Runs one command line against the test's Tally and keeps what it printed. */
async function cli(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env: {},
    openTally: async () => ({ tally: t, close: async () => {} }),
  });
  return { code, stdout, stderr };
}

async function eventCount(orgId: string) {
  const [row] = await t.db.query<{ n: string; credits: string }>(
    'SELECT count(*) AS n, coalesce(sum(credits), 0) AS credits FROM events WHERE org_id = $1',
    [orgId],
  );
  return { n: Number(row!.n), credits: row!.credits };
}

const daysAgo = (days: number, minutes = 0) =>
  new Date(Date.now() - days * 86_400_000 - minutes * 60_000).toISOString();

describe('tally import', () => {
  it('imports a 100 000-row CSV once: the second import adds nothing', async () => {
    const { org } = await createOrgWithKey(t);
    const rows = Number(process.env.TALLY_IMPORT_ROWS ?? 100_000);
    const lines = ['member,feature,provider,model,occurred_at,input_tokens,output_tokens,cache_read_tokens'];
    for (let i = 0; i < rows; i++) {
      // Spread over 50 days: history older than the API's 35-day window is importable.
      lines.push(
        `u${i % 40},Chat,openai,gpt-4o,${daysAgo(i % 50, i % 1440)},${1000 + (i % 7)},${200 + (i % 13)},${i % 3 ? 0 : 500}`,
      );
    }
    const file = join(dir, 'history.csv');
    writeFileSync(file, `${lines.join('\n')}\n`);

    const first = await cli('import', file, '--org', org.id);
    expect(first.stderr).toContain(`import: ${rows} rows, 100% of the file`);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`${rows} rows, ${rows} accepted, 0 duplicate`);
    const once = await eventCount(org.id);
    expect(once.n).toBe(rows);

    const second = await cli('import', file, '--org', org.id);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(`${rows} rows, 0 accepted, ${rows} duplicate`);
    expect(await eventCount(org.id)).toEqual(once);
    expect(await checkLedger(t.db, org.id)).toEqual([]);
    // The rate each run reached, for the report.
    console.log(`import ${rows} rows: ${first.stdout.trim()}\nagain: ${second.stdout.trim()}`);
  }, 900_000);

  it('reports a bad row with its line number, imports the others and exits 1', async () => {
    const { org } = await createOrgWithKey(t);
    const file = join(dir, 'bad.csv');
    writeFileSync(
      file,
      [
        'id,member,feature,provider,model,occurred_at,input_tokens,output_tokens,metadata',
        `a1,u1,Chat,openai,gpt-4o,${daysAgo(1)},100,10,`,
        `a2,u1,Chat,openai,gpt-4o,${daysAgo(1)},-5,10,`,
        `a3,u1,Chat,openai,gpt-4o,not a time,100,10,`,
        `a4,u1,Chat,openai,gpt-4o,${daysAgo(1)},100,10,"{""note"":`,
        ` ""a quoted, two-line field""}"`,
        `a5,u1,Chat,openai,gpt-4o,${daysAgo(1)},100`,
        `a6,u1,Chat,openai,gpt-4o,${daysAgo(1)},100,10,`,
      ].join('\r\n'),
    );
    const result = await cli('import', file, '--org', org.id);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('bad.csv line 3: input_tokens: must be a whole number, found "-5"');
    expect(result.stderr).toContain('bad.csv line 4: occurred_at: must be an RFC 3339 time');
    expect(result.stderr).toContain('bad.csv line 7: expected 9 values (as the header has), found 7');
    expect(result.stdout).toContain(
      '6 rows, 3 accepted, 0 duplicate (already counted), 0 rejected, 3 invalid',
    );
    const ids = await t.db.query<{ id: string; metadata: unknown }>(
      'SELECT id, metadata FROM events WHERE org_id = $1 ORDER BY id',
      [org.id],
    );
    expect(ids.map((r) => r.id)).toEqual(['a1', 'a4', 'a6']);
    expect(ids[1]!.metadata).toEqual({ note: 'a quoted, two-line field' });
  });

  it('says why a row of another file with the same name conflicts, when its id was derived', async () => {
    const { org } = await createOrgWithKey(t);
    const header = 'member,feature,provider,model,occurred_at,input_tokens,output_tokens';
    const at = daysAgo(1);
    const write = (folder: string, tokens: number) => {
      const file = join(dir, folder, 'usage.csv');
      mkdirSync(join(dir, folder), { recursive: true });
      writeFileSync(file, `${header}\nu1,Chat,openai,gpt-4o,${at},${tokens},10\n`);
      return file;
    };
    expect((await cli('import', write('march', 100), '--org', org.id)).code).toBe(0);
    const other = await cli('import', write('april', 200), '--org', org.id);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain(
      'usage.csv line 2: rejected: An event with this id and other content was recorded before (its id is derived from the file name usage.csv and the line: a different file of that name was imported before; rename this one or give its rows an id column)',
    );
    expect((await eventCount(org.id)).n).toBe(1);
  });

  it('reports JSON Lines rows Tally rejects by line, and a file with no org', async () => {
    const { org } = await createOrgWithKey(t);
    const file = join(dir, 'events.jsonl');
    const event = (id: string, usage: Record<string, number>) =>
      JSON.stringify({
        id,
        member: 'u1',
        feature: 'Chat',
        provider: 'openai',
        model: 'gpt-4o',
        occurred_at: daysAgo(2),
        usage,
      });
    writeFileSync(
      file,
      [
        event('j1', { input_tokens: 10 }),
        '',
        '{"id": "j2", "member": ',
        event('j3', { input_tokens: 10, cache_read_tokens: 20 }),
        event('j4', { output_tokens: 5 }),
        JSON.stringify({ ...JSON.parse(event('j5', {})), colour: 'red' }),
      ].join('\n'),
    );
    const result = await cli('import', file, '--org', org.id);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/events\.jsonl line 3: not valid JSON/);
    expect(result.stderr).toContain(
      'events.jsonl line 4: usage.cache_read_tokens: cache_read_tokens + cache_write_tokens (20) may not exceed input_tokens (10)',
    );
    expect(result.stderr).toContain('events.jsonl line 6: unknown field "colour"');
    expect((await eventCount(org.id)).n).toBe(2);

    const orphan = await cli('import', file);
    expect(orphan.stderr).toContain('events.jsonl line 1: no org_id in the row and no --org given');
  });

  it('skips rows Postgres cannot store, naming line and field, and imports the rest of their batch', async () => {
    const { org } = await createOrgWithKey(t);
    const row = (id: string, fields: Record<string, unknown> = {}) =>
      JSON.stringify({
        id,
        member: 'u1',
        feature: 'Chat',
        provider: 'openai',
        model: 'gpt-4o',
        occurred_at: daysAgo(2),
        usage: { input_tokens: 10 },
        ...fields,
      });
    // As the API's events[i].metadata, 29 nested objects are within its 32 levels and 30 are not.
    const nested = (objects: number) =>
      Array.from({ length: objects - 1 }).reduce<unknown>((inner) => ({ a: inner }), { a: 1 });
    // Five 200-character CJK dimensions, varied so they do not compress: 3 000 bytes, more than
    // the rollup index key holds.
    const cjk = (seed: number) =>
      String.fromCharCode(...Array.from({ length: 200 }, (_, i) => 0x4e00 + ((seed + i * 7919) % 20_000)));
    const jsonl = join(dir, 'unstorable.jsonl');
    writeFileSync(
      jsonl,
      [
        row('n1'),
        row('n2', { metadata: { note: 'a\u0000b' } }),
        row('n3', { metadata: { note: 'half a pair: \ud800' } }),
        row('n4', { metadata: nested(30) }),
        row('n5', {
          feature: cjk(1),
          surface: cjk(2),
          workspace: cjk(3),
          workspace_group: cjk(4),
          project: cjk(5),
        }),
        row('n6', { member: 'u\u00002' }),
        row('n7', { metadata: nested(29) }),
      ].join('\n'),
    );
    const result = await cli('import', jsonl, '--org', org.id);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain(
      'unstorable.jsonl line 2: metadata.note must not contain the NUL character (\\u0000)',
    );
    expect(result.stderr).toContain(
      'unstorable.jsonl line 3: metadata.note must be valid Unicode text (it has an unpaired surrogate)',
    );
    expect(result.stderr).toContain(
      `unstorable.jsonl line 4: metadata${'.a'.repeat(29)} must not nest more than 32 levels deep`,
    );
    expect(result.stderr).toMatch(/unstorable\.jsonl line 5: \w+: /);
    expect(result.stderr).toContain('unstorable.jsonl line 6: member must not contain the NUL character');
    expect(result.stdout).toContain(
      '7 rows, 2 accepted, 0 duplicate (already counted), 0 rejected, 5 invalid',
    );
    expect(() => readFileSync(`${jsonl}.tally-import`)).toThrow();

    const csv = join(dir, 'unstorable.csv');
    writeFileSync(
      csv,
      [
        'id,member,feature,provider,model,occurred_at,input_tokens,metadata',
        `c1,u1,Ch\u0000at,openai,gpt-4o,${daysAgo(2)},10,`,
        `c2,u1,Chat,openai,gpt-4o,${daysAgo(2)},10,"{""note"":""\\ud800""}"`,
        `c3,u1,Chat,openai,gpt-4o,${daysAgo(2)},10,`,
      ].join('\n'),
    );
    const fromCsv = await cli('import', csv, '--org', org.id);
    expect(fromCsv.stderr).toContain('unstorable.csv line 2: feature must not contain the NUL character');
    expect(fromCsv.stderr).toContain('unstorable.csv line 3: metadata.note must be valid Unicode text');
    expect(fromCsv.stdout).toContain(
      '3 rows, 1 accepted, 0 duplicate (already counted), 0 rejected, 2 invalid',
    );
    const ids = await t.db.query<{ id: string }>('SELECT id FROM events WHERE org_id = $1 ORDER BY id', [
      org.id,
    ]);
    expect(ids.map((r) => r.id)).toEqual(['c3', 'n1', 'n7']);
  });

  it('stops at an org that does not exist, naming the line, and resumes from the last committed batch', async () => {
    const { org } = await createOrgWithKey(t);
    const file = join(dir, 'resume.jsonl');
    const at = daysAgo(3);
    const rows = (orgId: string) =>
      Array.from({ length: 2500 }, (_, i) =>
        JSON.stringify({
          id: `r${i}`,
          org_id: i < 2100 ? org.id : orgId,
          member: 'u1',
          feature: 'Chat',
          provider: 'openai',
          model: 'gpt-4o',
          occurred_at: at,
          usage: { input_tokens: 10 },
        }),
      ).join('\n');
    // The last 400 rows name an org id of the same length that does not exist.
    const missing = `org_${'x'.repeat(org.id.length - 4)}`;
    writeFileSync(file, rows(missing));
    const failed = await cli('import', file);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`resume.jsonl line 2101: Organization not found`);
    expect((await eventCount(org.id)).n).toBe(2000);
    const state = JSON.parse(readFileSync(`${file}.tally-import`, 'utf8'));
    expect(state).toMatchObject({ line: 2000, counts: { accepted: 2000 } });

    // Fixed in place: the import picks up after line 2000 and does not send the first 2 000 again.
    writeFileSync(file, rows(org.id));
    const resumed = await cli('import', file);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain('Resuming resume.jsonl after line 2000');
    expect(resumed.stdout).toContain('2500 rows, 2500 accepted, 0 duplicate');
    expect((await eventCount(org.id)).n).toBe(2500);
    expect(() => readFileSync(`${file}.tally-import`)).toThrow();

    // Another file under the same name, as long or longer, does not resume the old position.
    writeFileSync(file, rows(missing));
    expect((await cli('import', file)).code).toBe(1);
    expect((await eventCount(org.id)).n).toBe(2500);
    writeFileSync(file, rows(org.id).replaceAll('"id":"r', '"id":"s'));
    const other = await cli('import', file);
    expect(other.code).toBe(0);
    expect(other.stderr).not.toContain('Resuming');
    expect(other.stdout).toContain('2500 rows, 2500 accepted, 0 duplicate');
    expect((await eventCount(org.id)).n).toBe(5000);
  });

  it('refuses a CSV header with an unknown column, naming line 1', async () => {
    const file = join(dir, 'header.csv');
    writeFileSync(file, 'member,feature,tokens\nu1,Chat,5\n');
    const result = await cli('import', file, '--org', 'org_x');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('header.csv line 1: unknown column "tokens"');
  });
});

describe('tally export, prices refresh, seed, check', () => {
  it('exports what was imported, through the usage export service', async () => {
    const { org } = await createOrgWithKey(t);
    const file = join(dir, 'small.csv');
    writeFileSync(
      file,
      `id,member,feature,provider,model,occurred_at,input_tokens,output_tokens\ns1,u1,Chat,openai,gpt-4o,${daysAgo(0, 30)},1000,1000\n`,
    );
    expect((await cli('import', file, '--org', org.id)).code).toBe(0);
    const csv = await cli('export', '--org', org.id, '--range', '7d');
    expect(csv.code).toBe(0);
    const [header, row, end] = csv.stdout.split('\r\n');
    expect(header).toMatch(/^occurred_at,event_id,/);
    // 1 000 in = 0.345, 1 000 out = 1.38 credits.
    expect(row).toContain(',s1,');
    expect(row).toContain(',1.725,');
    expect(end).toBe('');
    const out = join(dir, 'export.jsonl');
    const jsonl = await cli('export', '--org', org.id, '--format', 'jsonl', '--out', out);
    expect(jsonl.code).toBe(0);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({ event_id: 's1', credits: '1.725' });
    const bad = await cli('export', '--org', org.id, '--format', 'xml');
    expect(bad).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--format must be one of csv, jsonl, json'),
    });
  });

  it('loads a newer genai-prices data file as a new catalog version, once', async () => {
    const providers = structuredClone(await waitForUpdate())!;
    const openai = providers.find((p) => p.id === 'openai')!;
    const model = openai.models.find((m) => m.id === 'gpt-4o-mini')!;
    const newer = { ...(model.prices as Record<string, unknown>), output_mtok: 0.55 };
    model.prices = newer as typeof model.prices;
    const file = join(dir, 'data.json');
    writeFileSync(file, JSON.stringify(providers));

    const loaded = await cli('prices', 'refresh', '--file', file, '--version', 'test-newer');
    expect(loaded.code).toBe(0);
    expect(loaded.stdout).toMatch(/Catalog version test-newer loaded: \d+ models, [1-9]\d* new price rows/);
    const [row] = await t.db.query<{ prices: Record<string, unknown> }>(
      `SELECT prices FROM provider_prices WHERE provider = 'openai' AND model = 'gpt-4o-mini' AND origin = 'catalog'
        ORDER BY valid_from DESC LIMIT 1`,
    );
    expect(row!.prices.output_mtok).toBe('0.55');
    const again = await cli('prices', 'refresh', '--file', file, '--version', 'test-newer');
    expect(again.stdout).toContain('Catalog version test-newer is already loaded; nothing changed.');

    writeFileSync(join(dir, 'broken.json'), '{"providers": 1}');
    const broken = await cli('prices', 'refresh', '--file', join(dir, 'broken.json'));
    expect(broken).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('expected a JSON array of providers'),
    });
  });

  it('seeds the demo organization once, and check finds the ledger consistent', async () => {
    const seeded = await cli('seed', '--demo');
    expect(seeded.code).toBe(0);
    expect(seeded.stdout).toMatch(/Demo organization org_\w+ (created with \d+ events|already exists)/);
    const again = await cli('seed', '--demo');
    expect(again.stdout).toContain('already exists; left as it is');
    const check = await cli('check');
    expect(check).toMatchObject({ code: 0, stdout: expect.stringContaining('Ledger consistent') });
    expect((await cli('seed')).code).toBe(2);
  });

  it('check names each difference and exits 1 when a kept balance no longer re-derives', async () => {
    const { org } = await createOrgWithKey(t);
    await t.call('GET', `/v1/orgs/${org.id}/balance`); // issues the plan grant
    expect((await cli('check', '--org', org.id)).code).toBe(0);
    await t.db.query('UPDATE org_balances SET overage = overage + 7 WHERE org_id = $1', [org.id]);
    const check = await cli('check', '--org', org.id);
    expect(check).toMatchObject({ code: 1, stdout: `${org.id} (org) overage: kept 7, derived 0\n` });
    await t.db.query('UPDATE org_balances SET overage = overage - 7 WHERE org_id = $1', [org.id]);
  });

  it('answers an unknown command or option with usage and exit code 2', async () => {
    expect(await cli('frobnicate')).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('Unknown command "frobnicate"'),
    });
    expect(await cli('import', 'x.csv', '--bogus')).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("Unknown option '--bogus'"),
    });
    expect(await cli('keys', 'create')).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--org is required'),
    });
  });
});
