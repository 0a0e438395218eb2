import { defineConfig } from 'vitest/config';

/**
 * `npm run test:fuzz`: the generated-request run (test/fuzz), its shards in two processes at once
 * (one a core), with the collector exposed for heap figures.
 */
export default defineConfig({
  test: {
    include: ['test/fuzz/**/*.fuzz.ts'],
    globalSetup: ['test/support/globalSetup.ts'],
    testTimeout: 3_600_000,
    hookTimeout: 300_000,
    pool: 'forks',
    poolOptions: { forks: { minForks: 2, maxForks: 2, execArgv: ['--expose-gc'] } },
  },
});
