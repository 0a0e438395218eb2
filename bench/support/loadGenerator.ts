/**
 * A load generator in a process of its own: the bench module forks itself with a flag, and the copy
 * runs the jobs it is sent over IPC, one at a time, so the load it makes never shares Tally's event
 * loop (only the machine's cores).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface LoadGenerator<Job, Result> {
  pid: number;
  run(job: Job): Promise<Result>;
  stop(): Promise<void>;
}

/** Forks the module at `moduleUrl` with `flag`; resolves once the copy says it is ready. */
export async function forkGenerator<Job, Result>(
  moduleUrl: string,
  flag: string,
): Promise<LoadGenerator<Job, Result>> {
  const child: ChildProcess = fork(fileURLToPath(moduleUrl), [flag], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`the load generator exited with ${code}`)));
  });
  return {
    pid: child.pid!,
    run: (job) =>
      new Promise<Result>((resolve, reject) => {
        const onExit = (code: number | null) => reject(new Error(`the load generator exited with ${code}`));
        child.once('exit', onExit);
        child.once('message', (result) => {
          child.off('exit', onExit);
          resolve(result as Result);
        });
        child.send(job as object);
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.disconnect();
      }),
  };
}

/** In the forked copy (started with `flag`): answers each job with `run`'s result; `closing` on exit. */
export function serveGeneratorJobs<Job, Result>(
  flag: string,
  run: (job: Job) => Promise<Result>,
  closing: () => void,
): void {
  if (!process.argv.includes(flag) || !process.send) return;
  process.on('message', (job: Job) => {
    run(job).then(
      (result) => process.send!(result),
      (error) => {
        process.stderr.write(`load generator: ${error?.stack ?? String(error)}\n`);
        process.exit(1);
      },
    );
  });
  process.on('disconnect', () => {
    closing();
    process.exit(0);
  });
  process.send('ready');
}
