#!/usr/bin/env node
// The `tally` command: runs the TypeScript CLI through tsx (a dependency), as `npm run tally` does.
import { register } from 'tsx/esm/api';

register();
const { runCli, interruptOnSignals } = await import('../src/cli/main.ts');
process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  interruptible: interruptOnSignals,
});
