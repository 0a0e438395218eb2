/**
 * Roles and what they may do: the single table the API, the web app and the tests read.
 * The operator (the SaaS running Tally) may do everything on every org.
 */
export const ROLES = ['owner', 'admin', 'billing', 'member', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export const PERMISSIONS = {
  'org:read': 'See the organization and its settings',
  'org:update': 'Change organization settings',
  'members:read': 'List members and workspaces',
  'members:write': 'Add, change, remove and erase members; manage workspaces',
  'keys:write': 'Create and revoke API keys',
  'usage:read': 'See usage, balance, limits and prices',
  'events:write': 'Send usage events and place holds',
  'billing:purchase': 'Buy credit top-ups and see payments',
  'limits:write': 'Set limits and budgets',
  'webhooks:write': 'Manage webhook endpoints',
  'embed:create': 'Mint embed tokens for the usage page',
} as const;
export type Permission = keyof typeof PERMISSIONS;

const ALL = Object.keys(PERMISSIONS) as Permission[];

export const ROLE_PERMISSIONS: Record<Role, readonly Permission[]> = {
  owner: ALL,
  admin: ALL,
  billing: ['org:read', 'members:read', 'usage:read', 'billing:purchase', 'limits:write'],
  member: ['org:read', 'members:read', 'usage:read', 'events:write'],
  viewer: ['org:read', 'members:read', 'usage:read'],
};

/**
 * What an embed token never grants, whatever its role: it lives in a browser, so usage comes from the
 * host app's backend, and it mints no credential that would outlive it (API keys, other embed tokens).
 */
export const EMBED_WITHHELD: readonly Permission[] = ['events:write', 'keys:write', 'embed:create'];

/** What a member may do on the usage page opened with an embed token of this role. */
export const embedPermissions = (role: Role): readonly Permission[] =>
  ROLE_PERMISSIONS[role].filter((permission) => !EMBED_WITHHELD.includes(permission));
