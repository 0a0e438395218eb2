import { type Command, UsageError } from '../command.ts';
import { withTally } from '../runtime.ts';

export const seedCommand: Command = {
  name: 'seed',
  summary: 'Load sample data: with --demo, the demo organization with members, workspaces and usage.',
  usage: '--demo',
  details: 'Runs once: an existing demo organization is left as it is.',
  options: { demo: { type: 'boolean', description: 'Load the demo organization (required)' } },
  positionals: { min: 0, max: 0 },
  async run(args, io) {
    if (!args.values.demo) throw new UsageError('Say what to seed: --demo');
    const { seedDemo } = await import('../../demo/seedDemo.ts');
    const result = await withTally(io, ({ tally }) =>
      // Asked for explicitly, so TALLY_DEMO=0 (start empty) does not apply.
      seedDemo({ ...tally, config: { ...tally.config, TALLY_DEMO: '1' } }),
    );
    if (!result) throw new Error('the demo seed did not run');
    io.stdout.write(
      result.created
        ? `Demo organization ${result.orgId} created with ${result.events} events.\n`
        : `Demo organization ${result.orgId} already exists; left as it is.\n`,
    );
    return 0;
  },
};
