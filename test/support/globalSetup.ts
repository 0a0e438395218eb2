/**
 * Builds one migrated database with the price catalog once per run; every test then gets a fresh
 * copy of it (Trigger.dev's template approach): a PGlite data-dir dump, or a Postgres template DB.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ensureDefaultFx } from '../../src/services/pricing/ensureDefaultFx.ts';
import { loadCatalog } from '../../src/services/pricing/loadCatalog.ts';
import { openEmbedded, openServer } from '../../src/store/db.ts';
import { migrate } from '../../src/store/migrate.ts';

export default async function setup({ provide }: { provide: (key: string, value: string) => void }) {
  const serverUrl = process.env.TALLY_TEST_DATABASE_URL;
  if (serverUrl) {
    const template = `tally_tpl_${process.pid}`;
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${template}`);
    await admin.query(`CREATE DATABASE ${template}`);
    const url = new URL(serverUrl);
    url.pathname = `/${template}`;
    const db = await openServer(url.toString(), { max: 2 });
    await migrate(db);
    await loadCatalog(db);
    await ensureDefaultFx(db);
    await db.close();
    provide('template', template);
    provide('prefix', `tally_t_${process.pid}_`);
    return async () => {
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname LIKE 'tally_t_${process.pid}_%' AND pid <> pg_backend_pid()`,
      );
      const left = await admin.query(
        `SELECT datname FROM pg_database WHERE datname LIKE 'tally_t_${process.pid}_%'`,
      );
      for (const row of left.rows) await admin.query(`DROP DATABASE IF EXISTS ${row.datname}`);
      await admin.query(`DROP DATABASE IF EXISTS ${template}`);
      await admin.end();
    };
  }
  const db = await openEmbedded();
  await migrate(db);
  await loadCatalog(db);
  await ensureDefaultFx(db);
  const dump = await db.dump!();
  await db.close();
  const file = join(tmpdir(), `tally-template-${process.pid}.tar.gz`);
  writeFileSync(file, Buffer.from(await dump.arrayBuffer()));
  provide('template', file);
  provide('prefix', '');
  return undefined;
}
