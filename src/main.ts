/** `npm start`: Tally on the configured database, with the demo organization on a fresh install. */
import cluster from 'node:cluster';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { seedDemo } from './demo/seedDemo.ts';
import { answerWorkersScrapes } from './http/clusterMetrics.ts';
import { jobCatalog } from './jobs/catalog.ts';
import { registerJobs, startScheduler } from './jobs/runner.ts';
import { listen, prepare, type Tally } from './server.ts';

async function main() {
  const config = loadConfig();
  if (config.TALLY_WORKERS > 1 && cluster.isPrimary) return superviseWorkers(config);
  const tally = await prepare(config);
  // With workers, the primary seeded the demo org and printed the banner before forking them.
  const demo = config.TALLY_DEMO === '1' && cluster.isPrimary ? await seedDemo(tally) : null;
  const { url, close } = await listen(tally);
  let stopJobs = async () => {};
  if (config.TALLY_JOBS === '1') {
    const jobs = jobCatalog({ ...tally, principal: { kind: 'operator', id: 'op_jobs' }, requestId: 'jobs' });
    await registerJobs(tally.db, jobs);
    stopJobs = startScheduler(tally.db, jobs, tally.logger);
  }
  if (cluster.isPrimary) printBanner(config, tally, url, demo);
  const stop = async () => {
    await close();
    await stopJobs();
    await tally.db.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

function printBanner(
  config: Config,
  tally: Tally,
  url: string,
  demo: Awaited<ReturnType<typeof seedDemo>> | null,
  workers = 1,
) {
  const publicUrl = config.TALLY_PUBLIC_URL ?? url;
  const lines = [
    '',
    `  Tally is running on ${tally.db.kind === 'embedded' ? `embedded Postgres in ${config.TALLY_DATA_DIR}` : 'a Postgres server'}${workers > 1 ? ` in ${workers} processes` : ''}`,
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
}

/**
 * TALLY_WORKERS > 1: migrations, the operator key and the demo org are done once here, then the
 * workers serve the port (node:cluster hands them the connections) and each runs the scheduler,
 * whose jobs are claimed with SKIP LOCKED. A worker that dies is replaced.
 */
async function superviseWorkers(config: Config) {
  if (!config.DATABASE_URL) {
    throw new ConfigError(
      'Invalid configuration:\n  TALLY_WORKERS: more than 1 needs DATABASE_URL (embedded Postgres serves one process)',
    );
  }
  const tally = await prepare(config);
  const demo = config.TALLY_DEMO === '1' ? await seedDemo(tally) : null;
  await tally.db.close();
  let stopping = false;
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    process.stderr.write(`Tally worker ${worker.process.pid} ended (${signal ?? code}); starting another\n`);
    cluster.fork();
  });
  answerWorkersScrapes();
  const first = cluster.fork();
  for (let i = 1; i < config.TALLY_WORKERS; i++) cluster.fork();
  const address = await new Promise<{ port: number }>((resolve) =>
    first.once('listening', (a) => resolve(a)),
  );
  const host = config.HOST === '0.0.0.0' ? 'localhost' : config.HOST;
  printBanner(config, tally, `http://${host}:${address.port}`, demo, config.TALLY_WORKERS);
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error) => {
  process.stderr.write(`${error instanceof ConfigError ? error.message : (error?.stack ?? String(error))}\n`);
  process.exit(1);
});
