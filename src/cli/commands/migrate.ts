import { loadConfig } from '../../config.ts';
import { openDatabase } from '../../store/open.ts';
import type { Command } from '../command.ts';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'Apply pending database migrations and exit.',
  usage: '',
  details:
    'The database is DATABASE_URL when set, else embedded Postgres in TALLY_DATA_DIR (default ./.tally).',
  options: {},
  positionals: { min: 0, max: 0 },
  async run(_args, io) {
    const db = await openDatabase(loadConfig(io.env));
    await db.close();
    io.stdout.write('Migrations applied.\n');
    return 0;
  },
};
