import type { Command } from '../command.ts';
import { loadCliConfig } from '../runtime.ts';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'Apply pending database migrations and exit.',
  usage: '',
  details:
    'The database is DATABASE_URL when set, else embedded Postgres in TALLY_DATA_DIR (default ./.tally).',
  options: {},
  positionals: { min: 0, max: 0 },
  async run(_args, io) {
    const config = await loadCliConfig(io);
    const { openDatabase } = await import('../../store/open.ts');
    const db = await openDatabase(config);
    await db.close();
    io.stdout.write('Migrations applied.\n');
    return 0;
  },
};
