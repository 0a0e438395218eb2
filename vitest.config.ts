import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    globalSetup: ['test/support/globalSetup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // A page polled for what it shows gets 5 s, not 1 s: a first render took longer than 1 s on a
    // slow 2-core VM during the server run (the figure asserted was right once it came).
    expect: { poll: { timeout: 5_000 } },
    pool: 'forks',
    // One module graph per worker, not one per file: importing the server afresh for every file
    // cost more CPU than most files' tests. Each file still opens its own database and Tally;
    // a file that replaces a function restores it in its afterAll.
    poolOptions: { forks: { maxForks: 2, minForks: 1, isolate: false } },
  },
});
