import { defineConfig } from 'vitest/config';

// The fault tests need a Postgres server: the shared one unless TALLY_TEST_DATABASE_URL says otherwise.
process.env.TALLY_TEST_DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';

/** `npm run test:faults`: kill -9 during ingest, a Postgres restart under load, a webhook receiver down (test/faults). */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.faults.ts'],
    globalSetup: ['test/support/globalSetup.ts'],
    testTimeout: 900_000,
    hookTimeout: 300_000,
    pool: 'forks',
    poolOptions: { forks: { singleFork: true } },
  },
});
