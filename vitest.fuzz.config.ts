import { defineConfig } from 'vitest/config';

/** `npm run test:fuzz`: the generated-request run (test/fuzz), with the collector exposed for heap figures. */
export default defineConfig({
  test: {
    include: ['test/fuzz/**/*.fuzz.ts'],
    globalSetup: ['test/support/globalSetup.ts'],
    testTimeout: 3_600_000,
    hookTimeout: 300_000,
    pool: 'forks',
    poolOptions: { forks: { singleFork: true, execArgv: ['--expose-gc'] } },
  },
});
