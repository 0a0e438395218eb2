/**
 * `npm run tally -- <command>`: operator commands against the configured database.
 *   check    re-derive every balance from the ledger entries and report each difference
 *   migrate  apply pending migrations and exit
 */
import { ConfigError, loadConfig } from '../config.ts';
import { checkLedger } from '../services/ledger/checkLedger.ts';
import { openDatabase } from '../store/open.ts';

const HELP = `Usage: npm run tally -- <command> [--org <org id>]

Commands:
  check     Re-derive grant and org balances from the append-only ledger; exit 1 on any difference
  migrate   Apply pending migrations and exit
`;

async function main(argv: string[]) {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const config = loadConfig();
  const db = await openDatabase(config);
  try {
    if (command === 'migrate') {
      process.stdout.write('Migrations applied.\n');
      return 0;
    }
    if (command === 'check') {
      const orgFlag = rest.indexOf('--org');
      const orgId = orgFlag >= 0 ? rest[orgFlag + 1] : undefined;
      const differences = await checkLedger(db, orgId);
      if (differences.length === 0) {
        process.stdout.write(
          `Ledger consistent${orgId ? ` for ${orgId}` : ''}: every balance re-derives exactly.\n`,
        );
        return 0;
      }
      for (const d of differences) {
        process.stdout.write(
          `${d.org_id} ${d.grant_id ?? '(org)'} ${d.field}: kept ${d.kept}, derived ${d.derived}\n`,
        );
      }
      return 1;
    }
    process.stderr.write(`Unknown command "${command}".\n\n${HELP}`);
    return 2;
  } finally {
    await db.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(
      `${error instanceof ConfigError ? error.message : (error?.stack ?? String(error))}\n`,
    );
    process.exit(1);
  },
);
