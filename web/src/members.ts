/** How the pages name a member: by the same rule the API labels usage with (memberLabel in src/services/usage/scope.ts). */
import type { Member } from './types.ts';

export const UNKNOWN_USER = 'Unknown user';

/**
 * The name, else the email, else the host app's user id (members created by their first event have
 * only that); a removed or erased member is "Unknown user", as their usage is.
 */
export const memberLabel = (m: Member): string =>
  m.status === 'removed' ? UNKNOWN_USER : (m.name ?? m.email ?? m.external_id ?? UNKNOWN_USER);
