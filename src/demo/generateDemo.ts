/**
 * The demo organization's 90 days of AI usage, made up deterministically: the same `now` and seed
 * always give the same members, workspaces and events (ids included). Pure: no database, no clock.
 *
 * The shape aims to look like a real company: busy weekdays and quiet weekends, office-hour peaks in
 * the org's time zone, a slow upward trend, one spike day (an agent-driven migration), a member who
 * joined late and one who left, multi-message conversations and agents that spawn subagents.
 */

import { dateIn } from '../domain/calendar.ts';
import type { Usage } from '../domain/pricing.ts';
import type { UsageEventInput } from '../domain/usageEvent.ts';
import type { CreateWorkspaceInput } from '../services/members/createWorkspace.ts';
import type { CreateOrgInput } from '../services/orgs/createOrg.ts';
import {
  DEMO_ORG,
  type DemoMember,
  type DemoWorkspace,
  FEATURES,
  INTEGRATION,
  MEMBERS,
  MODELS,
  type ModelChoice,
  type SessionKind,
  SUBAGENT_MODEL,
  type Surface,
  WORKSPACES,
} from './demoOrg.ts';
import { Random } from './random.ts';

export const DEMO_SEED = 20250101;
export const DEMO_DAYS = 90;

export interface DemoOptions {
  now: Date;
  seed?: number;
  /** How many days of history, today included. */
  days?: number;
  /** Multiplies how busy everyone is; below 1 makes a lighter data set (tests). */
  volume?: number;
}

export interface DemoMemberDefinition {
  external_id: string;
  name: string;
  email: string;
  role: DemoMember['role'];
  /** Removed from the org after the seed, once their usage is recorded. */
  removed: boolean;
}

export interface DemoData {
  org: CreateOrgInput & { external_id: string };
  members: DemoMemberDefinition[];
  workspaces: CreateWorkspaceInput[];
  /** Oldest first, without `org_id` (the org id is only known once it is created). */
  events: UsageEventInput[];
}

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;

/** Relative chance of a session starting in each local hour: mornings, a lunch dip, afternoons. */
const OFFICE_HOURS = [0, 0, 0, 0, 0, 0, 0.1, 0.6, 3, 6, 9, 9, 6, 4, 8, 8.5, 7, 5, 2.5, 1, 0.5, 0.3, 0.1, 0];
/** The same, plus evenings: the engineers who keep a terminal open. */
const LATE_HOURS = [0.4, 0.1, 0, 0, 0, 0, 0, 0.2, 1.5, 4, 7, 8, 5, 4, 7, 8, 7, 6, 4, 3, 3.5, 3.5, 2.5, 1.2];
/** Sunday first, as Date.getUTCDay counts. */
const WEEKDAY_FACTOR = [0.08, 1, 1.1, 1.1, 1.05, 0.85, 0.12];
const LATE_WEEKEND_FACTOR = 0.3;

/** Days before today of the spike (moved back to a weekday), when the engineers ran a migration with agents. */
const SPIKE_DAYS_AGO = 18;
const SPIKE_FACTOR = 3.5;
const SPIKE_GROUP = 'Engineering';

/** An event before it gets its id: when it happens, and the order it was made in to break ties. */
interface Draft {
  at: number;
  seq: number;
  event: Omit<UsageEventInput, 'id'>;
}

/** Where a session happens: who, which workspace and project, from when. */
interface SessionPlace {
  member: DemoMember;
  workspace: DemoWorkspace;
  project: string | undefined;
  start: number;
}

class Builder {
  readonly drafts: Draft[] = [];
  private conversations = 0;
  private files = 0;

  constructor(readonly rng: Random) {}

  /**
   * A new conversation's id and number, and its title taken in turn from `titles` (no random draw:
   * the rest stays as it was).
   */
  newConversation(titles: readonly string[]): { id: string; n: number; title: string } {
    this.conversations += 1;
    return {
      id: `demo-conv-${String(this.conversations).padStart(5, '0')}`,
      n: this.conversations,
      title: titles[this.conversations % titles.length]!,
    };
  }

  /** A new uploaded file's number. */
  newFile(): number {
    this.files += 1;
    return this.files;
  }

  add(
    place: SessionPlace,
    offsetSeconds: number,
    fields: {
      feature: string;
      model: ModelChoice;
      surface: Surface;
      usage: Usage;
      conversation_id?: string;
      message_id?: string;
      parent_id?: string;
      metadata?: Record<string, unknown>;
    },
  ): void {
    const at = place.start + Math.round(offsetSeconds) * 1000;
    const event: Omit<UsageEventInput, 'id'> = {
      member: place.member.external_id,
      feature: fields.feature,
      provider: fields.model.provider,
      model: fields.model.model,
      occurred_at: new Date(at).toISOString(),
      surface: fields.surface,
      workspace: place.workspace.external_id,
      workspace_group: place.workspace.workspace_group,
      usage: fields.usage,
    };
    if (place.project) event.project = place.project;
    if (fields.conversation_id) event.conversation_id = fields.conversation_id;
    if (fields.message_id) event.message_id = fields.message_id;
    if (fields.parent_id) event.parent_id = fields.parent_id;
    if (fields.metadata) event.metadata = fields.metadata;
    this.drafts.push({ at, seq: this.drafts.length, event });
  }
}

/** What the chat apps title their conversations, as the host app sends in `metadata.conversation_title`. */
const CONVERSATION_TITLES = {
  chat: [
    'Q3 Marketing Analysis',
    'Customer churn summary',
    'Draft: onboarding email sequence',
    'Competitor pricing comparison',
    'Board deck talking points',
    'Translate release notes to German',
    'Job description: senior data engineer',
    'Explain the new VAT rules',
  ],
  agent: [
    'Migrate billing service to Postgres 16',
    'Fix flaky checkout tests',
    'Add rate limiting to the public API',
    'Refactor the invoice PDF renderer',
    'Upgrade React Router',
    'Investigate memory leak in the worker',
  ],
  image: ['Product hero image', 'Team offsite poster', 'Blog header illustration', 'App store screenshots'],
} as const;

/**
 * The metadata of a conversation's call: its title, the output split into the model's response and
 * tool calls (`toolShare` of it), and how long the model took (a first-token wait, reading the
 * prompt, then writing at about 65 tokens per second), all worked out from its usage so no random
 * draw changes the rest of the data.
 */
function callMetadata(title: string, usage: Usage, toolShare: number): Record<string, unknown> {
  const input = usage.input_tokens ?? 0;
  const output = usage.output_tokens ?? 0;
  const tools = Math.round(output * toolShare);
  return {
    conversation_title: title,
    output_tokens: { response: output - tools, tools },
    processing_ms: 350 + Math.round(input / 40) + Math.round((output * 1000) / 65),
  };
}

/** The tools an agent's steps call, in turn. */
const AGENT_TOOLS = ['Web search', 'Code runner', 'File reader'] as const;

/** Documents chats work on, taken in turn. */
const DOCUMENTS = ['Annual_Report.pdf', 'Q3_Roadmap.docx', 'Pricing_Study.xlsx', 'Security_Policy.pdf'];

/** An uploaded file's number as its id and in its name (CV_00042.pdf). */
const fileNumber = (n: number) => String(n).padStart(5, '0');

/**
 * A document uploaded to a chat, as `metadata.files` names it: its size and the tokens extracted
 * from it follow from its number (no random draw).
 */
function uploadedDocument(b: Builder) {
  const n = b.newFile();
  return {
    id: `demo-file-${fileNumber(n)}`,
    name: DOCUMENTS[n % DOCUMENTS.length]!,
    size_bytes: 800_000 + (n % 7) * 310_000,
    extracted_tokens: 6_000 + (n % 5) * 1_500,
  };
}

/** A CV sent for a summary: read once, its pages' text the tokens past the instructions. */
function cvFile(n: number, pages: number, extractedTokens: number) {
  return {
    id: `demo-file-${fileNumber(n)}`,
    name: `CV_${fileNumber(n)}.pdf`,
    size_bytes: 60_000 + pages * 95_000,
    extracted_tokens: extractedTokens,
    processed: true,
  };
}

const pickModel = (rng: Random, choices: readonly (readonly [ModelChoice, number])[]): ModelChoice =>
  choices[rng.weightedIndex(choices.map(([, weight]) => weight))]![0];

/**
 * Token usage of one call whose prompt repeats the previous call's prompt (a growing conversation).
 * Anthropic reports what it read from and wrote to its prompt cache; OpenAI caches long prefixes on
 * its own in steps of 128 tokens; Google's implicit caching is left out.
 */
function growingPromptUsage(
  provider: ModelChoice['provider'],
  input: number,
  output: number,
  previousInput: number,
): Usage {
  const usage: Usage = { input_tokens: input, output_tokens: output };
  if (provider === 'anthropic') {
    // Read the prefix cached by the previous call, write the rest: never more than the input in total.
    if (previousInput > 0) usage.cache_read_tokens = previousInput;
    usage.cache_write_tokens = input - previousInput;
  } else if (provider === 'openai' && previousInput >= 1024) {
    usage.cache_read_tokens = Math.floor(previousInput / 128) * 128;
  }
  return usage;
}

function chatSession(b: Builder, place: SessionPlace): void {
  const { rng } = b;
  const model = pickModel(rng, MODELS.chat);
  const onWeb = rng.chance(0.85);
  const conversation = b.newConversation(CONVERSATION_TITLES.chat);
  // Every eighth web chat comes in through the chat app integration; every tenth works on a document
  // uploaded at its start and read again by every later message (no random draw for either).
  const surface: Surface = onWeb ? (conversation.n % 8 === 0 ? INTEGRATION : 'web') : 'api';
  const document = conversation.n % 10 === 3 ? uploadedDocument(b) : null;
  const messages = Math.min(14, 2 + rng.poisson(3.5));
  let history = rng.around(900, 0.3);
  let previousInput = 0;
  let seconds = 0;
  let parent: string | undefined;
  for (let i = 1; i <= messages; i++) {
    const input = history + rng.around(120, 0.8);
    const output = rng.around(450, 0.6);
    const messageId = `${conversation.id}-m${i}`;
    const usage = growingPromptUsage(model.provider, input, output, previousInput);
    b.add(place, seconds, {
      feature: FEATURES.chat,
      model,
      surface,
      usage,
      conversation_id: conversation.id,
      message_id: messageId,
      ...(parent ? { parent_id: parent } : {}),
      metadata: {
        ...callMetadata(conversation.title, usage, 0),
        ...(document ? { files: [{ ...document, processed: i === 1 }] } : {}),
        // Now and then the integration's call times out after the model answered (no random draw).
        ...(surface === INTEGRATION && (conversation.n + i) % 19 === 0
          ? { error: 'integration_timeout' }
          : {}),
      },
    });
    parent = messageId;
    previousInput = input;
    history = input + output;
    // Reading the answer and typing the next question.
    seconds += rng.around(70, 0.8) + output / 15;
  }
}

function agentSession(b: Builder, place: SessionPlace, spike: boolean): void {
  const { rng } = b;
  const model = pickModel(rng, MODELS.agent);
  const surface: Surface = spike || rng.chance(0.7) ? 'cli' : 'web';
  const conversation = b.newConversation(CONVERSATION_TITLES.agent);
  const steps = Math.min(25, 3 + rng.poisson(spike ? 9 : 6));
  let history = rng.around(9000, 0.25);
  let previousInput = 0;
  let seconds = 0;
  let parent: string | undefined;
  let subagents = 0;
  for (let i = 1; i <= steps; i++) {
    // Stay well below the 200k-token long-context tier, as a real agent compacts its context.
    if (history > 120_000) break;
    const input = history + (i === 1 ? rng.around(150, 0.6) : rng.around(1500, 0.9));
    const output = i === steps ? rng.around(900, 0.5) : rng.around(320, 0.8);
    const messageId = `${conversation.id}-m${i}`;
    const usage = growingPromptUsage(model.provider, input, output, previousInput);
    b.add(place, seconds, {
      feature: FEATURES.agent,
      model,
      surface,
      usage,
      conversation_id: conversation.id,
      message_id: messageId,
      ...(parent ? { parent_id: parent } : {}),
      // Steps before the last mostly call tools; the last answers.
      metadata: {
        ...callMetadata(conversation.title, usage, i === steps ? 0 : 0.6),
        ...(i === steps ? {} : { tool: AGENT_TOOLS[i % AGENT_TOOLS.length] }),
        // A tool call fails now and then; the model's tokens were used all the same.
        ...(i !== steps && (conversation.n * 7 + i) % 37 === 0 ? { error: 'tool_error' } : {}),
      },
    });
    if (i > 1 && i < steps && rng.chance(0.18)) {
      subagents += 1;
      subagentRun(
        b,
        place,
        surface,
        SUBAGENT_MODEL[model.provider],
        conversation,
        messageId,
        subagents,
        seconds,
      );
    }
    parent = messageId;
    previousInput = input;
    history = input + output;
    seconds += rng.around(18, 0.6) + output / 40;
  }
}

/** A side task an agent hands to a cheaper model: its own short chain, hanging off the step that spawned it. */
function subagentRun(
  b: Builder,
  place: SessionPlace,
  surface: Surface,
  model: ModelChoice,
  conversation: { id: string; title: string },
  spawnedBy: string,
  number: number,
  startSeconds: number,
): void {
  const { rng } = b;
  const steps = Math.min(8, 1 + rng.poisson(2.5));
  let history = rng.around(3000, 0.3);
  let previousInput = 0;
  let seconds = startSeconds + rng.int(2, 6);
  let parent = spawnedBy;
  for (let i = 1; i <= steps; i++) {
    const input = history + rng.around(900, 0.9);
    const output = rng.around(250, 0.7);
    const messageId = `${conversation.id}-s${number}-m${i}`;
    const usage = growingPromptUsage(model.provider, input, output, previousInput);
    b.add(place, seconds, {
      feature: FEATURES.subagent,
      model,
      surface,
      usage,
      conversation_id: conversation.id,
      message_id: messageId,
      parent_id: parent,
      metadata: callMetadata(conversation.title, usage, i === steps ? 0 : 0.5),
    });
    parent = messageId;
    previousInput = input;
    history = input + output;
    seconds += rng.around(8, 0.6);
  }
}

/** Output tokens of one picture by quality and size, as the provider documents them. */
const IMAGE_SIZES = [
  { quality: 'low', size: '1024x1024', tokens: 272, weight: 2 },
  { quality: 'medium', size: '1024x1024', tokens: 1056, weight: 5 },
  { quality: 'medium', size: '1024x1536', tokens: 1584, weight: 2 },
  { quality: 'high', size: '1024x1024', tokens: 4160, weight: 2 },
] as const;

function imageSession(b: Builder, place: SessionPlace): void {
  const { rng } = b;
  const model = pickModel(rng, MODELS.image);
  const surface: Surface = rng.chance(0.9) ? 'web' : 'api';
  const attempts = Math.min(5, 1 + rng.poisson(1));
  // Several attempts at one picture are a conversation: each refines the previous result.
  const conversation = attempts > 1 ? b.newConversation(CONVERSATION_TITLES.image) : undefined;
  // The mini model counts the same output tokens per picture, at a lower price per token.
  const shape = IMAGE_SIZES[rng.weightedIndex(IMAGE_SIZES.map((s) => s.weight))]!;
  let seconds = 0;
  let parent: string | undefined;
  for (let i = 1; i <= attempts; i++) {
    const messageId = conversation ? `${conversation.id}-m${i}` : undefined;
    const usage: Usage = { input_tokens: rng.around(70, 0.6), output_tokens: shape.tokens };
    b.add(place, seconds, {
      feature: FEATURES.image,
      model,
      surface,
      usage,
      ...(conversation ? { conversation_id: conversation.id, message_id: messageId } : {}),
      ...(parent ? { parent_id: parent } : {}),
      metadata: {
        size: shape.size,
        quality: shape.quality,
        ...(conversation ? callMetadata(conversation.title, usage, 0) : {}),
      },
    });
    parent = messageId;
    seconds += rng.around(50, 0.6);
  }
}

function cvSession(b: Builder, place: SessionPlace): void {
  const { rng } = b;
  const model = pickModel(rng, MODELS.cv);
  // Recruiters often drop a few CVs at once; the hiring tool calls the API for each.
  const count = rng.chance(0.3) ? rng.int(2, 6) : 1;
  const instructions = 1200;
  let seconds = 0;
  for (let i = 0; i < count; i++) {
    const pages = rng.int(1, 4);
    const input = instructions + pages * rng.around(900, 0.3);
    const usage: Usage = { input_tokens: input, output_tokens: rng.around(600, 0.35) };
    if (model.provider === 'anthropic') {
      // The instructions are the same every time: written to the cache once, read after.
      if (i === 0) usage.cache_write_tokens = instructions;
      else usage.cache_read_tokens = instructions;
    }
    b.add(place, seconds, {
      feature: FEATURES.cv,
      model,
      surface: 'api',
      usage,
      metadata: { pages, files: [cvFile(b.newFile(), pages, input - instructions)] },
    });
    seconds += rng.int(3, 20);
  }
}

function searchSession(b: Builder, place: SessionPlace): void {
  const { rng } = b;
  const model = pickModel(rng, MODELS.search);
  const surface: Surface = rng.chance(0.8) ? 'web' : 'api';
  const queries = 1 + rng.poisson(0.8);
  const instructions = 1500;
  let seconds = 0;
  for (let i = 0; i < queries; i++) {
    const input = instructions + rng.around(5000, 0.5);
    const usage: Usage = {
      input_tokens: input,
      output_tokens: rng.around(500, 0.5),
      web_searches: model.model === 'gpt-4o-mini' ? 1 : rng.int(1, 3),
    };
    if (model.provider === 'anthropic') {
      if (i === 0) usage.cache_write_tokens = instructions;
      else usage.cache_read_tokens = instructions;
    }
    b.add(place, seconds, {
      feature: FEATURES.search,
      model,
      surface,
      usage,
      metadata: { tool: 'Web search' },
    });
    seconds += rng.around(45, 0.7);
  }
}

/** Milliseconds to add to UTC to get the wall clock of `zone` at that instant. */
function zoneOffsetMs(formatter: Intl.DateTimeFormat, at: number): number {
  const parts = Object.fromEntries(formatter.formatToParts(at).map((p) => [p.type, p.value]));
  const wall = Date.UTC(
    Number(parts.year),
    Number(parts.month) - 1,
    Number(parts.day),
    Number(parts.hour),
    Number(parts.minute),
    Number(parts.second),
  );
  return wall - at;
}

/** The `days` calendar dates ending today in the org's zone, with when each starts (UTC ms). */
function calendarDays(zone: string, now: Date, days: number) {
  const formatter = new Intl.DateTimeFormat('en-US', {
    timeZone: zone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
  const today = Date.parse(`${dateIn(zone, now)}T00:00:00Z`);
  return Array.from({ length: days }, (_, index) => {
    const daysAgo = days - 1 - index;
    const wallMidnight = today - daysAgo * DAY_MS;
    // The offset at midday; a DST switch at night shifts only the few events in those hours.
    const offset = zoneOffsetMs(formatter, wallMidnight + 12 * 60 * MINUTE_MS);
    return { index, daysAgo, weekday: new Date(wallMidnight).getUTCDay(), start: wallMidnight - offset };
  });
}

export function generateDemo(options: DemoOptions): DemoData {
  const days = options.days ?? DEMO_DAYS;
  const volume = options.volume ?? 1;
  const rng = new Random(options.seed ?? DEMO_SEED);
  const builder = new Builder(rng);
  const calendar = calendarDays(DEMO_ORG.timezone, options.now, days);
  const workspaces = new Map(WORKSPACES.map((w) => [w.external_id, w]));

  let spikeDaysAgo = SPIKE_DAYS_AGO;
  while (WEEKDAY_FACTOR[calendar[days - 1 - spikeDaysAgo]?.weekday ?? 1]! < 0.5) spikeDaysAgo += 1;

  for (const day of calendar) {
    // A slow climb as the company adopts the tools: three quarters of today's volume 90 days ago.
    const trend = 0.75 + (0.5 * day.index) / Math.max(1, days - 1);
    for (const member of MEMBERS) {
      if (member.joinedDaysAgo !== undefined && day.daysAgo > member.joinedDaysAgo) continue;
      if (member.leftDaysAgo !== undefined && day.daysAgo <= member.leftDaysAgo) continue;
      const workspace = workspaces.get(member.workspace)!;
      const weekend = day.weekday === 0 || day.weekday === 6;
      const dayFactor = weekend && member.lateHours ? LATE_WEEKEND_FACTOR : WEEKDAY_FACTOR[day.weekday]!;
      const spike = day.daysAgo === spikeDaysAgo && workspace.workspace_group === SPIKE_GROUP;
      const mix = spike ? { ...member.mix, agent: (member.mix.agent ?? 0) * 4 } : member.mix;
      const sessions = rng.poisson(
        member.sessionsPerDay * dayFactor * trend * volume * (spike ? SPIKE_FACTOR : 1),
      );
      const hours = member.lateHours ? LATE_HOURS : OFFICE_HOURS;
      for (let s = 0; s < sessions; s++) {
        const kind = rng.weighted<SessionKind>(mix);
        const minute = rng.weightedIndex(hours) * 60 + rng.int(0, 59);
        const place: SessionPlace = {
          member,
          workspace,
          project: kind === 'cv' || rng.chance(0.75) ? rng.pick(workspace.projects) : undefined,
          start: day.start + minute * MINUTE_MS + rng.int(0, 59) * 1000,
        };
        if (kind === 'chat') chatSession(builder, place);
        else if (kind === 'agent') agentSession(builder, place, spike);
        else if (kind === 'image') imageSession(builder, place);
        else if (kind === 'cv') cvSession(builder, place);
        else searchSession(builder, place);
      }
    }
  }

  // Today's sessions only up to now: nothing may lie in the future.
  const cutoff = options.now.getTime();
  const events = builder.drafts
    .filter((d) => d.at <= cutoff)
    .sort((a, b) => a.at - b.at || a.seq - b.seq)
    .map((d, i) => ({ id: `demo-${String(i + 1).padStart(6, '0')}`, ...d.event }));

  return {
    org: { ...DEMO_ORG },
    members: MEMBERS.map((m) => ({
      external_id: m.external_id,
      name: m.name,
      email: m.email,
      role: m.role,
      removed: m.leftDaysAgo !== undefined,
    })),
    workspaces: WORKSPACES.map((w) => ({
      external_id: w.external_id,
      name: w.name,
      workspace_group: w.workspace_group,
    })),
    events,
  };
}
