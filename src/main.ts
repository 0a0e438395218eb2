/** `npm start`: Tally on the configured database, with the demo organization on a fresh install. */
import { ConfigError, loadConfig } from './config.ts';
import { seedDemo } from './demo/seedDemo.ts';
import { jobCatalog } from './jobs/catalog.ts';
import { registerJobs, startScheduler } from './jobs/runner.ts';
import { listen, prepare } from './server.ts';

async function main() {
  const config = loadConfig();
  const tally = await prepare(config);
  const demo = config.TALLY_DEMO === '1' ? await seedDemo(tally) : null;
  const { url, close } = await listen(tally);
  let stopJobs = async () => {};
  if (config.TALLY_JOBS === '1') {
    const jobs = jobCatalog({ ...tally, principal: { kind: 'operator', id: 'op_jobs' }, requestId: 'jobs' });
    await registerJobs(tally.db, jobs);
    stopJobs = startScheduler(tally.db, jobs, tally.logger);
  }
  const publicUrl = config.TALLY_PUBLIC_URL ?? url;
  const lines = [
    '',
    `  Tally is running on ${tally.db.kind === 'embedded' ? `embedded Postgres in ${config.TALLY_DATA_DIR}` : 'a Postgres server'}`,
    `  Dashboard:  ${publicUrl}/`,
    `  API docs:   ${publicUrl}/docs`,
  ];
  if (tally.generatedOperatorKey) {
    lines.push(`  Operator key (shown once, keep it safe): ${tally.generatedOperatorKey}`);
  } else if (!config.TALLY_ADMIN_KEY) {
    lines.push(
      '  Operator key: generated on the first start and printed then (set TALLY_ADMIN_KEY to choose one)',
    );
  }
  if (demo)
    lines.push(`  Demo organization: ${demo.orgId}${demo.created ? ` (${demo.events} events loaded)` : ''}`);
  process.stderr.write(`${lines.join('\n')}\n\n`);
  const stop = async () => {
    await close();
    await stopJobs();
    await tally.db.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error) => {
  process.stderr.write(`${error instanceof ConfigError ? error.message : (error?.stack ?? String(error))}\n`);
  process.exit(1);
});
