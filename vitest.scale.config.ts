import { defineConfig } from 'vitest/config';

// The scale test needs a Postgres server: the shared one unless TALLY_TEST_DATABASE_URL says otherwise.
process.env.TALLY_TEST_DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';

/** `npm run test:scale`: 3 Tally processes on one database against one (test/scale). */
export default defineConfig({
  test: {
    include: ['test/scale/**/*.scale.ts'],
    globalSetup: ['test/support/globalSetup.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    poolOptions: { forks: { singleFork: true } },
  },
});
