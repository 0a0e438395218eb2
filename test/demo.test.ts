import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEATURES } from '../src/demo/demoOrg.ts';
import { type DemoData, generateDemo } from '../src/demo/generateDemo.ts';
import { seedDemo } from '../src/demo/seedDemo.ts';
import { startTally, type TestTally } from './support/harness.ts';

// A Wednesday afternoon in Berlin.
const NOW = new Date('2025-06-18T13:30:00Z');
const ZONE = 'Europe/Berlin';

const countBy = <T>(items: T[], key: (item: T) => string) => {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
};

// One formatter each: building one per event would dominate the test's run time.
const hourFormat = new Intl.DateTimeFormat('en-GB', { timeZone: ZONE, hour: '2-digit', hourCycle: 'h23' });
const dateFormat = new Intl.DateTimeFormat('en-CA', {
  timeZone: ZONE,
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
});
const localHour = (iso: string) => Number(hourFormat.format(new Date(iso)));
const localDate = (iso: string) => dateFormat.format(new Date(iso));

describe('generateDemo', () => {
  let demo: DemoData;
  beforeAll(() => {
    demo = generateDemo({ now: NOW });
  });

  it('gives the same data for the same now and seed, and other data for another seed', () => {
    expect(generateDemo({ now: NOW })).toEqual(demo);
    expect(generateDemo({ now: new Date(NOW), seed: 7 }).events).not.toEqual(demo.events);
  });

  it('has sequential ids, in time order, none in the future', () => {
    expect(demo.events.length).toBeGreaterThan(25_000);
    expect(demo.events.length).toBeLessThan(40_000);
    expect(demo.events.every((e, i) => e.id === `demo-${String(i + 1).padStart(6, '0')}`)).toBe(true);
    const times = demo.events.map((e) => Date.parse(e.occurred_at));
    expect(times.every((t, i) => i === 0 || t >= times[i - 1]!)).toBe(true);
    expect(Math.max(...times)).toBeLessThanOrEqual(NOW.getTime());
  });

  it('describes a EUR org in Berlin with twelve members of every role, one of them removed', () => {
    expect(demo.org).toMatchObject({ currency: 'EUR', timezone: ZONE, external_id: 'demo' });
    expect(demo.members).toHaveLength(12);
    expect(new Set(demo.members.map((m) => m.role))).toEqual(
      new Set(['owner', 'admin', 'billing', 'member', 'viewer']),
    );
    expect(demo.members.every((m) => m.email.endsWith('@example.com'))).toBe(true);
    const removed = demo.members.filter((m) => m.removed);
    expect(removed).toHaveLength(1);
    expect(demo.events.some((e) => e.member === removed[0]!.external_id)).toBe(true);
    expect(new Set(demo.events.map((e) => e.member))).toEqual(
      new Set(demo.members.map((m) => m.external_id)),
    );
  });

  it('covers every feature, surface, provider, workspace and group', () => {
    expect(new Set(demo.events.map((e) => e.feature))).toEqual(new Set(Object.values(FEATURES)));
    expect(new Set(demo.events.map((e) => e.surface))).toEqual(new Set(['web', 'cli', 'api', 'slack']));
    expect(new Set(demo.events.map((e) => e.provider))).toEqual(new Set(['openai', 'anthropic', 'google']));
    expect(new Set(demo.events.map((e) => e.workspace))).toEqual(
      new Set(demo.workspaces.map((w) => w.external_id)),
    );
    expect(new Set(demo.workspaces.map((w) => w.workspace_group)).size).toBeGreaterThanOrEqual(3);
    expect(demo.events.every((e) => e.workspace_group)).toBe(true);
    expect(new Set(demo.events.map((e) => e.project).filter(Boolean)).size).toBeGreaterThanOrEqual(5);
  });

  it('names the tools agents and searches call, and the files chats and CV summaries read', () => {
    const tools = new Set(demo.events.map((e) => e.metadata?.tool).filter(Boolean));
    expect(tools).toEqual(new Set(['Web search', 'Code runner', 'File reader']));
    type File = {
      id: string;
      name: string;
      size_bytes: number;
      extracted_tokens: number;
      processed: boolean;
    };
    const uses = demo.events.flatMap((e) => (e.metadata?.files as File[] | undefined) ?? []);
    const byId = new Map<string, File[]>();
    for (const f of uses) byId.set(f.id, [...(byId.get(f.id) ?? []), f]);
    expect(byId.size).toBeGreaterThan(100);
    for (const [, used] of byId) {
      // Each file is processed once (uploaded, its text extracted), whoever reads it again after.
      expect(used.filter((f) => f.processed)).toHaveLength(1);
      expect(new Set(used.map((f) => JSON.stringify({ ...f, processed: null })))).toHaveProperty('size', 1);
      expect(used[0]!.size_bytes).toBeGreaterThan(0);
      expect(used[0]!.extracted_tokens).toBeGreaterThan(0);
    }
    expect([...byId.values()].some((used) => used.length > 1)).toBe(true);
  });

  it('spans 90 days with busy weekdays, quiet weekends, office hours, a trend and one spike', () => {
    const perDay = countBy(demo.events, (e) => localDate(e.occurred_at));
    expect(perDay.size).toBe(90);
    const days = [...perDay.keys()].sort();
    expect(days.at(-1)).toBe(localDate(NOW.toISOString()));
    expect(days[0]).toBe(localDate(new Date(NOW.getTime() - 89 * 86_400_000).toISOString()));

    const weekday = (d: string) => new Date(`${d}T12:00:00Z`).getUTCDay();
    const full = days.slice(0, -1); // today is only half over
    const workdays = full.filter((d) => weekday(d) % 6 !== 0).map((d) => perDay.get(d)!);
    const weekends = full.filter((d) => weekday(d) % 6 === 0).map((d) => perDay.get(d)!);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(workdays)).toBeGreaterThan(4 * mean(weekends));

    const sorted = [...workdays].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    expect(sorted.filter((n) => n > 2.5 * median)).toHaveLength(1);

    const firstMonth = full.slice(0, 28).reduce((sum, d) => sum + perDay.get(d)!, 0);
    const lastMonth = full.slice(-28).reduce((sum, d) => sum + perDay.get(d)!, 0);
    expect(lastMonth).toBeGreaterThan(firstMonth);

    const officeHours = demo.events.filter((e) => {
      const hour = localHour(e.occurred_at);
      return hour >= 8 && hour < 19;
    });
    expect(officeHours.length / demo.events.length).toBeGreaterThan(0.8);
  });

  it('threads conversations of several messages, with subagents hanging off agent steps', () => {
    const conversations = countBy(
      demo.events.filter((e) => e.conversation_id),
      (e) => e.conversation_id!,
    );
    expect([...conversations.values()].filter((n) => n >= 3).length).toBeGreaterThan(500);
    const messages = new Map(demo.events.filter((e) => e.message_id).map((e) => [e.message_id!, e]));
    expect(messages.size).toBe(demo.events.filter((e) => e.message_id).length);
    const orphans = demo.events.filter((e) => {
      if (!e.parent_id) return false;
      const parent = messages.get(e.parent_id);
      return !parent || parent.conversation_id !== e.conversation_id || parent.occurred_at > e.occurred_at;
    });
    expect(orphans).toEqual([]);
    const subagents = demo.events.filter((e) => e.feature === 'Spawned subagent');
    expect(subagents.every((e) => e.parent_id)).toBe(true);
    expect(subagents.some((e) => messages.get(e.parent_id!)!.feature === 'Agents')).toBe(true);
  });

  it('sends only integer token counts the catalog can price, with valid cache counts', () => {
    const wrong = demo.events.filter(({ usage, provider }) => {
      const cached = (usage.cache_read_tokens ?? 0) + (usage.cache_write_tokens ?? 0);
      return (
        !Object.values(usage).every((n) => Number.isInteger(n) && n! >= 0) ||
        usage.images !== undefined ||
        !(usage.input_tokens! > 0 && usage.output_tokens! > 0) ||
        cached > usage.input_tokens! ||
        (provider === 'anthropic' ? cached === 0 : usage.cache_write_tokens !== undefined)
      );
    });
    expect(wrong).toEqual([]);
  });

  it('can be made lighter and shorter', () => {
    const small = generateDemo({ now: NOW, days: 10, volume: 0.2 });
    expect(small.events.length).toBeLessThan(demo.events.length / 10);
    expect(new Set(small.events.map((e) => localDate(e.occurred_at))).size).toBeLessThanOrEqual(10);
  });
});

describe('seedDemo', () => {
  let t: TestTally;
  beforeAll(async () => {
    t = await startTally();
  });
  afterAll(() => t.close());

  it('loads the demo org through the services, accepting every event, once', async () => {
    // All 90 days (most of them older than the late-event window), at a third of the volume for speed.
    const options = { now: new Date(), volume: 0.3 };
    const expected = generateDemo(options);
    const first = await seedDemo(t, options);
    expect(first).toMatchObject({ created: true, events: expected.events.length });
    const orgId = first!.orgId;

    const [events] = await t.db.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE org_id = $1', [
      orgId,
    ]);
    expect(Number(events!.n)).toBe(expected.events.length);

    const org = await t.call('GET', `/v1/orgs/${orgId}`);
    expect(org.body).toMatchObject({ name: 'Northwind Labs', currency: 'EUR', timezone: ZONE });
    const members = await t.call('GET', `/v1/orgs/${orgId}/members?limit=100`);
    expect(members.body.data).toHaveLength(12);
    const removed = members.body.data.filter((m: any) => m.status === 'removed');
    expect(removed.map((m: any) => m.external_id)).toEqual(
      expected.members.filter((m) => m.removed).map((m) => m.external_id),
    );
    const workspaces = await t.db.query<{ workspace_group: string | null }>(
      'SELECT workspace_group FROM workspaces WHERE org_id = $1',
      [orgId],
    );
    expect(workspaces).toHaveLength(expected.workspaces.length);
    expect(workspaces.every((w) => w.workspace_group)).toBe(true);

    const again = await seedDemo(t);
    expect(again).toEqual({ orgId, created: false, events: 0 });
    const [after] = await t.db.query<{ n: string }>('SELECT count(*) AS n FROM events');
    expect(Number(after!.n)).toBe(expected.events.length);
  });

  it('does nothing when the demo is switched off', async () => {
    expect(await seedDemo({ ...t, config: { ...t.config, TALLY_DEMO: '0' } })).toBeNull();
  });
});
