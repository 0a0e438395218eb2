/**
 * Who is in the demo organization and how each person uses AI: the cast the generator animates.
 * Everything here is fictional (names, the company, the example.com addresses).
 */
import type { Role } from '../domain/permissions.ts';

export const DEMO_EXTERNAL_ID = 'demo';

export const DEMO_ORG = {
  name: 'Northwind Labs',
  currency: 'EUR',
  timezone: 'Europe/Berlin',
  billing_mode: 'credits',
  external_id: DEMO_EXTERNAL_ID,
  // A team plan: a typical month of the demo uses about three quarters of it.
  plan_allowance_credits: '30000',
} as const;

/** What a person sits down to do; one session becomes one or many events. */
export type SessionKind = 'chat' | 'agent' | 'image' | 'cv' | 'search';

export const FEATURES = {
  chat: 'Chat',
  agent: 'Agents',
  subagent: 'Spawned subagent',
  image: 'Image generation',
  cv: 'Summarize CV',
  search: 'Web search',
} as const;

export const SURFACES = ['web', 'cli', 'api'] as const;
/** Chats that reach the product from another app: an integration (any surface not built in). */
export const INTEGRATION = 'slack';
export type Surface = (typeof SURFACES)[number] | typeof INTEGRATION;

export interface DemoWorkspace {
  external_id: string;
  name: string;
  workspace_group: string;
  projects: readonly string[];
}

export const WORKSPACES: readonly DemoWorkspace[] = [
  {
    external_id: 'platform',
    name: 'Platform',
    workspace_group: 'Engineering',
    projects: ['Checkout API', 'Billing service'],
  },
  {
    external_id: 'mobile-app',
    name: 'Mobile App',
    workspace_group: 'Engineering',
    projects: ['iOS 3.0', 'Android widgets'],
  },
  {
    external_id: 'data-lab',
    name: 'Data Lab',
    workspace_group: 'Engineering',
    projects: ['Churn model', 'Warehouse migration'],
  },
  {
    external_id: 'brand-studio',
    name: 'Brand Studio',
    workspace_group: 'Go-to-market',
    projects: ['Spring campaign', 'Website relaunch'],
  },
  {
    external_id: 'growth',
    name: 'Growth',
    workspace_group: 'Go-to-market',
    projects: ['Newsletter', 'SEO content'],
  },
  {
    external_id: 'people-ops',
    name: 'People Ops',
    workspace_group: 'Operations',
    projects: ['Hiring pipeline'],
  },
  { external_id: 'finance', name: 'Finance', workspace_group: 'Operations', projects: ['Quarterly close'] },
  {
    external_id: 'support',
    name: 'Customer Support',
    workspace_group: 'Operations',
    projects: ['Help center', 'Ticket triage'],
  },
];

export interface DemoMember {
  external_id: string;
  name: string;
  email: string;
  role: Role;
  workspace: string;
  /** Sessions on an ordinary weekday at the start of the 90 days. */
  sessionsPerDay: number;
  mix: Partial<Record<SessionKind, number>>;
  /** Works evenings and some weekends (the engineers with a terminal open). */
  lateHours?: boolean;
  /** Joined this many days before today; absent: there from the start. */
  joinedDaysAgo?: number;
  /** Left this many days before today and was removed from the org; their usage stays. */
  leftDaysAgo?: number;
}

export const MEMBERS: readonly DemoMember[] = [
  {
    external_id: 'u_1001',
    name: 'Amelia Hoffmann',
    email: 'amelia.hoffmann@example.com',
    role: 'owner',
    workspace: 'growth',
    sessionsPerDay: 4,
    mix: { chat: 6, search: 3, image: 1 },
  },
  {
    external_id: 'u_1002',
    name: 'Jonas Weber',
    email: 'jonas.weber@example.com',
    role: 'admin',
    workspace: 'platform',
    sessionsPerDay: 5.5,
    mix: { agent: 6, chat: 3, search: 1 },
    lateHours: true,
  },
  {
    external_id: 'u_1003',
    name: 'Priya Nair',
    email: 'priya.nair@example.com',
    role: 'member',
    workspace: 'platform',
    sessionsPerDay: 7,
    mix: { agent: 5, chat: 3, search: 2 },
  },
  {
    external_id: 'u_1004',
    name: 'Lukas Schneider',
    email: 'lukas.schneider@example.com',
    role: 'member',
    workspace: 'mobile-app',
    sessionsPerDay: 6.5,
    mix: { agent: 7, chat: 2, search: 1 },
    lateHours: true,
  },
  {
    external_id: 'u_1005',
    name: 'Sofia Rossi',
    email: 'sofia.rossi@example.com',
    role: 'admin',
    workspace: 'brand-studio',
    sessionsPerDay: 8,
    mix: { chat: 4, image: 5, search: 1 },
  },
  {
    external_id: 'u_1006',
    name: 'Mateo García',
    email: 'mateo.garcia@example.com',
    role: 'member',
    workspace: 'brand-studio',
    sessionsPerDay: 9,
    mix: { image: 6, chat: 3 },
  },
  {
    external_id: 'u_1007',
    name: 'Hannah Becker',
    email: 'hannah.becker@example.com',
    role: 'billing',
    workspace: 'finance',
    sessionsPerDay: 2,
    mix: { chat: 8, search: 2 },
  },
  {
    external_id: 'u_1008',
    name: 'Elif Yılmaz',
    email: 'elif.yilmaz@example.com',
    role: 'member',
    workspace: 'people-ops',
    sessionsPerDay: 14,
    mix: { cv: 7, chat: 3 },
  },
  {
    external_id: 'u_1009',
    name: 'Noah Fischer',
    email: 'noah.fischer@example.com',
    role: 'member',
    workspace: 'support',
    sessionsPerDay: 12,
    mix: { chat: 6, search: 4 },
  },
  {
    external_id: 'u_1010',
    name: 'Chloé Martin',
    email: 'chloe.martin@example.com',
    role: 'viewer',
    workspace: 'growth',
    sessionsPerDay: 1.2,
    mix: { chat: 7, search: 3 },
  },
  {
    external_id: 'u_1011',
    name: 'Daniel Kim',
    email: 'daniel.kim@example.com',
    role: 'member',
    workspace: 'data-lab',
    sessionsPerDay: 7,
    mix: { agent: 4, chat: 4, search: 2 },
    joinedDaysAgo: 45,
  },
  {
    external_id: 'u_1012',
    name: 'Marta Nowak',
    email: 'marta.nowak@example.com',
    role: 'member',
    workspace: 'people-ops',
    sessionsPerDay: 11,
    mix: { cv: 5, chat: 4 },
    leftDaysAgo: 20,
  },
];

/** Provider and model pairs the price catalog knows, with how often each is chosen. */
export type ModelChoice = { provider: 'openai' | 'anthropic' | 'google'; model: string };

const openai = (model: string): ModelChoice => ({ provider: 'openai', model });
const anthropic = (model: string): ModelChoice => ({ provider: 'anthropic', model });
const google = (model: string): ModelChoice => ({ provider: 'google', model });

export const MODELS = {
  chat: [
    [openai('gpt-4o'), 35],
    [openai('gpt-4o-mini'), 20],
    [anthropic('claude-3-5-sonnet'), 25],
    [google('gemini-2.5-pro'), 10],
    [google('gemini-2.5-flash'), 10],
  ],
  agent: [
    [anthropic('claude-3-5-sonnet'), 60],
    [openai('gpt-4o'), 25],
    [google('gemini-2.5-pro'), 15],
  ],
  // Billed by their tokens (the catalog has no per-image price); their output price is the image price.
  image: [
    [openai('gpt-image-1'), 60],
    [openai('gpt-image-1-mini'), 40],
  ],
  cv: [
    [openai('gpt-4o-mini'), 50],
    [google('gemini-2.5-flash'), 30],
    [anthropic('claude-3-5-haiku'), 20],
  ],
  // Only models with a catalog price for web searches.
  search: [
    [openai('gpt-4o-mini'), 60],
    [openai('gpt-4o'), 25],
    [anthropic('claude-3-5-sonnet'), 15],
  ],
} as const satisfies Record<SessionKind, readonly (readonly [ModelChoice, number])[]>;

/** The cheaper model an agent hands side tasks to, from the same provider. */
export const SUBAGENT_MODEL: Record<ModelChoice['provider'], ModelChoice> = {
  openai: openai('gpt-4o-mini'),
  anthropic: anthropic('claude-3-5-haiku'),
  google: google('gemini-2.5-flash'),
};
