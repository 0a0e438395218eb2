import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLogger } from '../src/http/logger.ts';
import { didWork, type JobDefinition, registerJobs, runDueJob } from '../src/jobs/runner.ts';
import { issuePlanGrants } from '../src/services/ledger/issuePlanGrants.ts';
import { createOrgWithKey, onServer, startTally, type TestTally } from './support/harness.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());
const quiet = jsonLogger(false);

describe('scheduler', () => {
  it('runs a due job once, then not again before its interval', async () => {
    let runs = 0;
    const jobs: JobDefinition[] = [{ name: 'count_once', everySeconds: 3600, run: async () => ++runs }];
    await registerJobs(t.db, jobs);
    expect(await runDueJob(t.db, jobs, 'w1', quiet)).toBe('count_once');
    expect(await runDueJob(t.db, jobs, 'w1', quiet)).toBeNull();
    expect(runs).toBe(1);
  });

  it('records a failing job and schedules it again', async () => {
    const jobs: JobDefinition[] = [
      {
        name: 'fails',
        everySeconds: 1,
        run: async () => {
          throw new Error('boom');
        },
      },
    ];
    await registerJobs(t.db, jobs);
    expect(await runDueJob(t.db, jobs, 'w1', quiet)).toBe('fails');
    const [row] = await t.db.query<{ last_error: string; locked_by: string | null }>(
      "SELECT last_error, locked_by FROM scheduled_jobs WHERE name = 'fails'",
    );
    expect(row).toEqual({ last_error: 'boom', locked_by: null });
  });

  it.runIf(onServer)('lets only one of many concurrent workers run a due job', async () => {
    let runs = 0;
    const jobs: JobDefinition[] = [
      {
        name: 'contended',
        everySeconds: 3600,
        run: async () => {
          runs++;
          await new Promise((r) => setTimeout(r, 200));
        },
      },
    ];
    await registerJobs(t.db, jobs);
    const claimed = await Promise.all(
      Array.from({ length: 10 }, (_, i) => runDueJob(t.db, jobs, `w${i}`, quiet)),
    );
    expect(claimed.filter((c) => c === 'contended')).toHaveLength(1);
    expect(runs).toBe(1);
  });

  it('issues each plan grant once however often the job runs', async () => {
    const { org } = await createOrgWithKey(t);
    const runs = await Promise.all([issuePlanGrants(t.db), issuePlanGrants(t.db), issuePlanGrants(t.db)]);
    const grants = await t.db.query("SELECT id FROM grants WHERE org_id = $1 AND kind = 'plan'", [org.id]);
    expect(grants).toHaveLength(1);
    expect(runs.reduce((sum, run) => sum + run.issued, 0)).toBe(1);
    // A run that issues nothing reports no work, so the runner does not log it every minute.
    const idle = await issuePlanGrants(t.db);
    expect(idle).toEqual({ issued: 0 });
    expect(didWork(idle)).toBe(false);
  });

  it('logs the runs that did something and every failure, not the idle runs', async () => {
    const logged: Record<string, unknown>[] = [];
    const keep = {
      info: (f: Record<string, unknown>) => logged.push(f),
      error: (f: Record<string, unknown>) => logged.push(f),
    };
    const outcomes: Record<string, unknown> = {
      idle: { expired: 0, batches: { rows: 0, done: true } },
      busy: { expired: 0, batches: { rows: 3, done: true } },
      counted: 2,
    };
    const jobs: JobDefinition[] = [
      ...Object.entries(outcomes).map(([name, outcome]) => ({
        name: `log_${name}`,
        everySeconds: 3600,
        run: async () => outcome,
      })),
      { name: 'log_failing', everySeconds: 3600, run: () => Promise.reject(new Error('down')) },
    ];
    await registerJobs(t.db, jobs);
    while ((await runDueJob(t.db, jobs, 'w1', keep)) !== null) {}
    expect(logged.map((f) => f.job).sort()).toEqual(['log_busy', 'log_counted', 'log_failing']);
    expect(logged.find((f) => f.job === 'log_failing')).toMatchObject({ error: 'down' });
  });
});
