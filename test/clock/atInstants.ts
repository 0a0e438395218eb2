/**
 * The suite with the clock moved (libfaketime): a test that passes today can fail on a month's last
 * day, in its first hours or on a Monday morning in Berlin, whenever CI happens to run. For each
 * instant below, vitest runs on PGlite with the process clock offset so that "now" starts there and
 * goes on at its real pace (child processes and the browser get the same offset). Not part of
 * `npm test`: about seven minutes an instant for the whole suite.
 *
 *   npm run test:clock                         every instant, the whole suite
 *   npm run test:clock -- test/browser         every instant, these files
 *   TALLY_CLOCK_AT=2027-02-28T12:00:00Z npm run test:clock -- test/alerts.test.ts
 *   npm run test:clock -- --list               the instants, without running anything
 *
 * Needs `faketime` (Debian: apt-get install -y faketime). The instants are the next ones from now,
 * so the price catalog and the demo history stay valid.
 */
import { spawnSync } from 'node:child_process';
import { calendarMonth, localDate, startOfLocalDay } from '../../src/domain/periods.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

interface Instant {
  at: Date;
  why: string;
}

/** A candidate that `next` passes over. */
const PAST = new Date(0);

/** The first of `candidate(n)` for n = 0, 1, … that lies at least a minute ahead. */
function next(candidate: (n: number) => Date, now: Date): Date {
  for (let n = 0; ; n++) {
    const at = candidate(n);
    if (at.getTime() > now.getTime() + 60_000) return at;
  }
}

/** The month `n` months after the one `now` is in, in `zone`. */
function monthAfter(zone: string, now: Date, n: number) {
  let period = calendarMonth(zone, now);
  for (let i = 0; i < n; i++) period = calendarMonth(zone, period.end);
  return period;
}

function instants(now: Date): Instant[] {
  const berlin = 'Europe/Berlin';
  return [
    {
      at: next((n) => new Date(monthAfter('UTC', now, n).end.getTime() - 12 * HOUR_MS), now),
      why: "a month's last day in every zone the tests use (noon UTC)",
    },
    {
      at: next((n) => new Date(monthAfter(berlin, now, n).end.getTime() + 10_000), now),
      why: "a month's first minutes in Berlin, its last hours in New York",
    },
    {
      at: next((n) => new Date(monthAfter('America/New_York', now, n).end.getTime() + HOUR_MS), now),
      why: "a month's first hours in every zone",
    },
    {
      at: next((n) => {
        const { year, month, day } = localDate(berlin, new Date(now.getTime() + n * DAY_MS));
        const monday = new Date(Date.UTC(year, month - 1, day)).getUTCDay() === 1;
        return monday ? new Date(startOfLocalDay(berlin, year, month, day).getTime() + 3 * 60_000) : PAST;
      }, now),
      why: 'a Monday, 00:03 in Berlin (weeks start; Sunday evening in New York)',
    },
    {
      at: next((n) => {
        const year = now.getUTCFullYear() + n;
        const lastSunday = 31 - new Date(Date.UTC(year, 2, 31)).getUTCDay();
        return new Date(Date.UTC(year, 2, lastSunday, 0, 57));
      }, now),
      why: "three minutes before Berlin's clocks spring forward (a 23-hour day)",
    },
  ];
}

/** The suite on PGlite: the Postgres server keeps its own clock, which faketime cannot move. */
function embeddedOnly(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { TALLY_TEST_DATABASE_URL: _server, ...rest } = env;
  return rest;
}

function main() {
  const only = process.env.TALLY_CLOCK_AT;
  const chosen = only ? [{ at: new Date(only), why: 'TALLY_CLOCK_AT' }] : instants(new Date());
  if (chosen.some((i) => Number.isNaN(i.at.getTime()))) {
    console.error(`TALLY_CLOCK_AT is not an ISO date and time: ${only}`);
    process.exit(2);
  }
  if (process.argv.includes('--list')) {
    for (const { at, why } of chosen) console.log(`${at.toISOString()}  ${why}`);
    return;
  }
  const hasFaketime = spawnSync('faketime', ['-f', '+0', 'true']).status === 0;
  if (!hasFaketime) {
    console.error('test:clock needs libfaketime: apt-get install -y faketime');
    process.exit(2);
  }
  const results: { row: string; passed: boolean }[] = [];
  for (const { at, why } of chosen) {
    const started = Date.now();
    const offset = Math.round((at.getTime() - started) / 1000);
    console.log(`\n=== ${at.toISOString()}: ${why}`);
    const run = spawnSync(
      'faketime',
      ['-f', `${offset >= 0 ? '+' : ''}${offset}`, 'npx', 'vitest', 'run', ...process.argv.slice(2)],
      {
        stdio: 'inherit',
        env: embeddedOnly(process.env),
      },
    );
    const seconds = Math.round((Date.now() - started) / 1000);
    const passed = run.status === 0;
    results.push({
      row: `| ${at.toISOString()} | ${why} | ${passed ? 'passed' : 'FAILED'} | ${seconds} s |`,
      passed,
    });
  }
  console.log(
    ['\n| instant (UTC) | why | suite | time |', '|---|---|---|---|', ...results.map((r) => r.row)].join(
      '\n',
    ),
  );
  process.exit(results.every((r) => r.passed) ? 0 : 1);
}

main();
