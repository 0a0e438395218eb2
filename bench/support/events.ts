/**
 * Realistic usage events, reproducible from a seed: members, features, surfaces, workspaces and
 * conversations of a host app; models of OpenAI, Anthropic and Google that the price catalog knows,
 * with prompt caching where the provider has it. All of them are accepted by a fresh Tally.
 */
import type { UsageEventInput } from '../../src/domain/usageEvent.ts';

/** Deterministic PRNG (mulberry32), so two runs send the same kind of traffic. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ModelSpec {
  provider: string;
  model: string;
  weight: number;
  /** Share of input tokens read from the prompt cache, at most. */
  cacheRead: number;
  /** Share of input tokens written to the prompt cache, at most (Anthropic prices writes). */
  cacheWrite: number;
}

export const MODELS: ModelSpec[] = [
  { provider: 'openai', model: 'gpt-4o', weight: 12, cacheRead: 0.5, cacheWrite: 0 },
  { provider: 'openai', model: 'gpt-4o-mini', weight: 20, cacheRead: 0.5, cacheWrite: 0 },
  { provider: 'openai', model: 'gpt-4.1-mini', weight: 8, cacheRead: 0.5, cacheWrite: 0 },
  { provider: 'openai', model: 'gpt-5-mini', weight: 10, cacheRead: 0.6, cacheWrite: 0 },
  { provider: 'anthropic', model: 'claude-sonnet-4-5', weight: 16, cacheRead: 0.7, cacheWrite: 0.2 },
  { provider: 'anthropic', model: 'claude-haiku-4-5', weight: 10, cacheRead: 0.7, cacheWrite: 0.2 },
  { provider: 'anthropic', model: 'claude-opus-4-1', weight: 3, cacheRead: 0.7, cacheWrite: 0.2 },
  { provider: 'google', model: 'gemini-2.5-flash', weight: 14, cacheRead: 0.4, cacheWrite: 0 },
  { provider: 'google', model: 'gemini-2.5-pro', weight: 7, cacheRead: 0.4, cacheWrite: 0 },
];

const FEATURES = ['chat', 'summarize', 'search', 'agent', 'autocomplete', 'translate'];
const SURFACES = ['web', 'web', 'web', 'api', 'cli', 'mobile', 'slack'];

export interface EventShape {
  /** The orgs events are spread over (operator key: each event names its org). */
  orgIds: string[];
  membersPerOrg: number;
  workspacesPerOrg: number;
  /** Events land in the last `hours` hours (hourly rollup buckets), never in the future. */
  hours: number;
}

export const DEFAULT_SHAPE: Omit<EventShape, 'orgIds'> = {
  membersPerOrg: 250,
  workspacesPerOrg: 12,
  hours: 72,
};

/** `count` events with ids `${prefix}-${n}`, unique as long as the prefix is. */
export function makeEvents(
  shape: EventShape,
  count: number,
  prefix: string,
  seed: number,
  now = Date.now(),
): UsageEventInput[] {
  const rnd = random(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
  const totalWeight = MODELS.reduce((a, m) => a + m.weight, 0);
  const pickModel = () => {
    let x = rnd() * totalWeight;
    for (const m of MODELS) {
      x -= m.weight;
      if (x < 0) return m;
    }
    return MODELS[0]!;
  };
  const events: UsageEventInput[] = [];
  for (let n = 0; n < count; n++) {
    const org = pick(shape.orgIds);
    const m = pickModel();
    const member = Math.floor(rnd() ** 2 * shape.membersPerOrg); // a few heavy users, a long tail
    const ws = member % shape.workspacesPerOrg;
    const input = 200 + Math.floor(rnd() ** 3 * 60_000);
    const cacheRead = rnd() < 0.6 ? Math.floor(input * m.cacheRead * rnd()) : 0;
    const cacheWrite = m.cacheWrite > 0 && rnd() < 0.3 ? Math.floor(input * m.cacheWrite * rnd()) : 0;
    const conversation = `conv_${org.slice(-6)}_${member}_${Math.floor(rnd() * 40)}`;
    const event: UsageEventInput = {
      id: `${prefix}-${n}`,
      org_id: org,
      member: `user_${member}`,
      feature: pick(FEATURES),
      provider: m.provider,
      model: m.model,
      // At least a minute old, so no clock skew can push it into the future.
      occurred_at: new Date(now - 60_000 - Math.floor(rnd() * shape.hours * 3_600_000)).toISOString(),
      surface: pick(SURFACES),
      workspace: `ws_${ws}`,
      workspace_group: `group_${ws % 3}`,
      conversation_id: conversation,
      message_id: `msg_${prefix}_${n}`,
      usage: {
        input_tokens: input,
        output_tokens: 20 + Math.floor(rnd() ** 2 * 4_000),
        ...(cacheRead ? { cache_read_tokens: cacheRead } : {}),
        ...(cacheWrite ? { cache_write_tokens: cacheWrite } : {}),
      },
    };
    if (rnd() < 0.4) event.project = `proj_${ws}_${member % 4}`;
    if (rnd() < 0.25) event.metadata = { trace_id: `tr_${seed}_${n}`, region: pick(['eu', 'us']) };
    events.push(event);
  }
  return events;
}
