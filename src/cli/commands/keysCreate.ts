import { ROLES, type Role } from '../../domain/permissions.ts';
import { type Command, requiredOption, stringOption, UsageError } from '../command.ts';
import { operatorCtx, withTally } from '../runtime.ts';

export const keysCreateCommand: Command = {
  name: 'keys create',
  summary: 'Create an API key for an organization and print its secret (shown this once).',
  usage: '--org ORG [--name NAME] [--role ROLE] [--expires-at TIME]',
  details:
    'The secret alone goes to stdout (so `KEY=$(tally keys create --org ...)` works); its id to stderr.',
  options: {
    org: { type: 'string', value: 'ORG', description: 'The organization id (org_...)' },
    name: { type: 'string', value: 'NAME', description: 'A label for the key (default "cli")' },
    role: { type: 'string', value: 'ROLE', description: `One of ${ROLES.join(', ')} (default admin)` },
    'expires-at': { type: 'string', value: 'TIME', description: 'RFC 3339 time the key stops working' },
  },
  positionals: { min: 0, max: 0 },
  async run(args, io) {
    const orgId = requiredOption(args, 'org');
    const role = stringOption(args, 'role') ?? 'admin';
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
    }
    const { createApiKey } = await import('../../services/keys/createApiKey.ts');
    const key = await withTally(io, (opened) =>
      createApiKey(operatorCtx(opened, 'cli-keys-create'), orgId, {
        name: stringOption(args, 'name') ?? 'cli',
        role: role as Role,
        expires_at: stringOption(args, 'expires-at') ?? null,
      }),
    );
    io.stderr.write(`Created key ${key.id} (${key.role}) for ${orgId}. The secret is shown this once:\n`);
    io.stdout.write(`${key.key}\n`);
    return 0;
  },
};
