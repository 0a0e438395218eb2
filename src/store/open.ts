import type { Config } from '../config.ts';
import { type Db, openEmbedded, openServer } from './db.ts';
import { migrate } from './migrate.ts';

/**
 * Opens the configured database (server when DATABASE_URL is set, else embedded) and migrates it.
 * DATABASE_READ_URL (server only) opens a second pool for dashboard reads (`Db.read`).
 */
export async function openDatabase(config: Config): Promise<Db> {
  const db = config.DATABASE_URL
    ? await openServer(
        config.DATABASE_URL,
        config.DATABASE_READ_URL ? { readUrl: config.DATABASE_READ_URL } : {},
      )
    : await openEmbedded({ dataDir: config.TALLY_DATA_DIR });
  await migrate(db);
  return db;
}
