/**
 * `tally <command>` (or `npm run tally -- <command>`): operator commands beside the database.
 * Each command is one file in ./commands; `tally <command> --help` describes it.
 */
import { fileURLToPath } from 'node:url';
import { ServiceError } from '../services/errors.ts';
import { CliError, type CliIo, type Command, helpText, parseCommandArgs, UsageError } from './command.ts';
import { checkCommand } from './commands/check.ts';
import { exportCommand } from './commands/export.ts';
import { importCommand } from './commands/import.ts';
import { keysCreateCommand } from './commands/keysCreate.ts';
import { migrateCommand } from './commands/migrate.ts';
import { pricesRefreshCommand } from './commands/prices.ts';
import { seedCommand } from './commands/seed.ts';
import { startCommand } from './commands/start.ts';

export const COMMANDS: Command[] = [
  startCommand,
  migrateCommand,
  seedCommand,
  importCommand,
  exportCommand,
  keysCreateCommand,
  pricesRefreshCommand,
  checkCommand,
];

function overview(commands: Command[], heading = 'Usage: tally <command> [options]'): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `${heading}\n\nCommands:\n${lines.join('\n')}\n\nRun tally <command> --help for its options.\n`;
}

/** Runs one command line and answers its exit code; never exits the process itself. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [first, second] = argv;
  if (!first || first === '--help' || first === '-h' || first === 'help') {
    io.stdout.write(overview(COMMANDS));
    return 0;
  }
  const command =
    COMMANDS.find((c) => c.name === `${first} ${second}`) ?? COMMANDS.find((c) => c.name === first);
  if (!command) {
    // `tally keys` alone: the commands of that group.
    const group = COMMANDS.filter((c) => c.name.startsWith(`${first} `));
    if (group.length > 0) {
      const asked = second === undefined || second === '--help' || second === '-h';
      (asked ? io.stdout : io.stderr).write(overview(group, `Usage: tally ${first} <command> [options]`));
      return asked ? 0 : 2;
    }
    io.stderr.write(`Unknown command "${first}".\n\n${overview(COMMANDS)}`);
    return 2;
  }
  const rest = argv.slice(command.name.split(' ').length);
  try {
    const args = parseCommandArgs(command, rest);
    if (args.help) {
      io.stdout.write(helpText(command));
      return 0;
    }
    return await command.run(args, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(
        `tally ${command.name}: ${error.message}\nRun tally ${command.name} --help for usage.\n`,
      );
      return 2;
    }
    if (error instanceof CliError) {
      io.stderr.write(`tally ${command.name}: ${error.message}\n`);
      return 1;
    }
    if (error instanceof ServiceError) {
      const param = error.param ? ` (${error.param})` : '';
      io.stderr.write(`tally ${command.name}: ${error.message}${param}\n`);
      return 1;
    }
    throw error;
  }
}

/**
 * The first SIGINT or SIGTERM asks the running command to stop at a safe point (an import after
 * its current batch); a second one ends the process at once.
 */
export function interruptOnSignals(): AbortSignal {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    process.stderr.write(`\n${signal}: stopping at the next safe point (again to stop at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return controller.signal;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const io = {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    interruptible: interruptOnSignals,
  };
  runCli(process.argv.slice(2), io).then(
    (code) => process.exit(code),
    (error) => {
      process.stderr.write(`${error?.stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}
