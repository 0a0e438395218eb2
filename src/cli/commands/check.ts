import { type Command, stringOption } from '../command.ts';
import { withTally } from '../runtime.ts';

export const checkCommand: Command = {
  name: 'check',
  summary: 'Re-derive every grant and org balance from the append-only ledger and report each difference.',
  usage: '[--org ORG]',
  details: 'Exits 0 when every balance re-derives exactly, 1 on any difference.',
  options: { org: { type: 'string', value: 'ORG', description: 'Check one organization only (its id)' } },
  positionals: { min: 0, max: 0 },
  async run(args, io) {
    const orgId = stringOption(args, 'org');
    const { checkLedger } = await import('../../services/ledger/checkLedger.ts');
    const differences = await withTally(io, ({ tally }) => checkLedger(tally.db, orgId));
    if (differences.length === 0) {
      io.stdout.write(
        `Ledger consistent${orgId ? ` for ${orgId}` : ''}: every balance re-derives exactly.\n`,
      );
      return 0;
    }
    for (const d of differences) {
      io.stdout.write(
        `${d.org_id} ${d.grant_id ?? '(org)'} ${d.field}: kept ${d.kept}, derived ${d.derived}\n`,
      );
    }
    return 1;
  },
};
