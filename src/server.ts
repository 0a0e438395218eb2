/** Starting and stopping a Tally process: database, catalog, keys, HTTP. */
import { serve } from '@hono/node-server';
import type { Config } from './config.ts';
import { buildApp } from './http/app.ts';
import { jsonLogger, type Logger } from './http/logger.ts';
import { ensureOperatorKey } from './services/keys/ensureOperatorKey.ts';
import { endOrgWatches } from './services/live/orgChanges.ts';
import { ensureDefaultFx } from './services/pricing/ensureDefaultFx.ts';
import { loadCatalog } from './services/pricing/loadCatalog.ts';
import { PriceBook } from './services/pricing/priceBook.ts';
import type { Db } from './store/db.ts';
import { openDatabase } from './store/open.ts';

export interface Tally {
  db: Db;
  app: ReturnType<typeof buildApp>;
  prices: PriceBook;
  config: Config;
  logger: Logger;
  /** The operator key when this start generated it (to be printed once), else null. */
  generatedOperatorKey: string | null;
}

/** Everything but the listening socket: what tests and the CLI share with `npm start`. */
export async function prepare(config: Config, db?: Db): Promise<Tally> {
  const database = db ?? (await openDatabase(config));
  await loadCatalog(database);
  await ensureDefaultFx(database);
  const generatedOperatorKey = await ensureOperatorKey(database, config.TALLY_ADMIN_KEY);
  const prices = new PriceBook(config.TALLY_DEFAULT_MARKUP);
  await prices.refresh(database, true);
  const logger = jsonLogger(config.TALLY_LOG === 'json');
  const app = buildApp({ db: database, config, prices, logger });
  return { db: database, app, prices, config, logger, generatedOperatorKey };
}

export function listen(tally: Tally): Promise<{ url: string; close: () => Promise<void> }> {
  return new Promise((resolve) => {
    const server = serve(
      { fetch: tally.app.fetch, port: tally.config.PORT, hostname: tally.config.HOST },
      (info) => {
        const host = tally.config.HOST === '0.0.0.0' ? 'localhost' : tally.config.HOST;
        resolve({
          url: `http://${host}:${info.port}`,
          close: () =>
            new Promise<void>((done) => {
              server.close(() => done());
              // Live streams would hold the server open until they end on their own.
              endOrgWatches(tally.db);
            }),
        });
      },
    );
  });
}
