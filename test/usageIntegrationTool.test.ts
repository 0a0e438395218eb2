/**
 * Breakdowns, filters and splits by integration (the surface of calls not made on web, cli, api or
 * mobile) and tool (metadata.tool): each row equals the same grouping done here in JS over the
 * events sent, and the rows add up to the summary total to the last unit, on every read path
 * (stored days and hours, the wide rollup under another filter, raw events under a tool filter).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decimalUnits } from '../src/domain/money.ts';
import {
  UsageBreakdownSchema,
  UsageEventsPageSchema,
  UsageSummarySchema,
  UsageTimeseriesSchema,
} from '../src/http/routes/usage.ts';
import { createOrgWithKey, startTally, type TestTally } from './support/harness.ts';
import { everyPage } from './support/paging.ts';
import { cost, credits } from './support/units.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

const LONG_TOOL = `${'x'.repeat(199)}yz`;

interface Sent {
  id: string;
  member: string;
  feature: string;
  surface?: string;
  tool?: unknown;
  at: string;
  credits: bigint;
  cost: bigint;
}

/** The keys as the API documents them, written here independently of the SQL. */
const integrationOf = (e: Sent) =>
  e.surface === undefined || ['web', 'cli', 'api', 'mobile'].includes(e.surface) ? '' : e.surface;
const toolOf = (e: Sent) =>
  typeof e.tool === 'string' ? e.tool.replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, '').slice(0, 200) : '';

async function send(key: string, events: Omit<Sent, 'credits' | 'cost'>[]): Promise<Sent[]> {
  const out: Sent[] = [];
  for (let i = 0; i < events.length; i += 500) {
    const batch = events.slice(i, i + 500);
    const r = await t.call('POST', '/v1/events', {
      key,
      body: {
        events: batch.map((e, j) => ({
          id: e.id,
          member: e.member,
          feature: e.feature,
          provider: 'openai',
          model: j % 2 ? 'gpt-4o' : 'gpt-4o-mini',
          occurred_at: e.at,
          ...(e.surface !== undefined ? { surface: e.surface } : {}),
          ...(e.tool !== undefined ? { metadata: { tool: e.tool } } : {}),
          usage: { input_tokens: 1000 + ((i + j) % 17) * 311, output_tokens: 50 + ((i + j) % 5) * 97 },
        })),
      },
    });
    expect(r.status).toBe(200);
    r.body.results.forEach((res: { status: string; credits: string; cost: string }, j: number) => {
      expect(res.status).toBe('accepted');
      out.push({ ...batch[j]!, credits: credits(res.credits), cost: cost(res.cost) });
    });
  }
  return out;
}

async function allRows(path: string, key: string) {
  const pages = await everyPage(t, path, key, (body) => UsageBreakdownSchema.parse(body), 50);
  return { rows: pages.flatMap((page) => page.data), first: pages[0]! };
}

/** Per key: credits, cost and calls of the events in [start, end) passing `keep`. */
function expected(
  events: Sent[],
  start: string,
  end: string,
  keyOf: (e: Sent) => string,
  keep = (_: Sent) => true,
) {
  const out = new Map<string, { credits: bigint; cost: bigint; calls: number }>();
  for (const e of events) {
    const at = new Date(e.at).getTime();
    if (at < Date.parse(start) || at >= Date.parse(end) || !keep(e)) continue;
    const k = keyOf(e);
    const g = out.get(k) ?? { credits: 0n, cost: 0n, calls: 0 };
    g.credits += e.credits;
    g.cost += e.cost;
    g.calls += 1;
    out.set(k, g);
  }
  return out;
}

const asMap = (rows: { key: string; credits: string; cost: string; calls: number }[]) =>
  new Map(rows.map((r) => [r.key, { credits: credits(r.credits), cost: cost(r.cost), calls: r.calls }]));
const totalOf = (m: Map<string, { credits: bigint; cost: bigint; calls: number }>) =>
  [...m.values()].reduce(
    (a, g) => ({ credits: a.credits + g.credits, cost: a.cost + g.cost, calls: a.calls + g.calls }),
    { credits: 0n, cost: 0n, calls: 0 },
  );

describe('usage by integration and tool', () => {
  let org: { id: string };
  let key: string;
  let sent: Sent[] = [];
  const SURFACES = ['web', 'cli', 'slack', 'gmail', undefined, 'mobile', 'notion', 'api'];
  const TOOLS: unknown[] = [
    'web_search',
    ' web_search\t',
    'code',
    undefined,
    5,
    '',
    `  ${LONG_TOOL}`,
    'image',
  ];
  const MEMBERS = ['alice', 'bob', 'carol'];

  beforeAll(async () => {
    ({ org, key } = await createOrgWithKey(t, { timezone: 'Europe/Berlin' }));
    // 26 days back to now: whole stored days and the hours of today.
    const events = Array.from({ length: 400 }, (_, i) => ({
      id: `it${i}`,
      member: MEMBERS[i % 3]!,
      feature: ['Chat', 'Agents', 'Analysis'][(i * 7) % 3]!,
      surface: SURFACES[(i * 5) % SURFACES.length],
      tool: TOOLS[(i * 3) % TOOLS.length],
      at: new Date(Date.now() - ((i * 1_579) % (26 * 24 * 60)) * 60_000 - 30_000).toISOString(),
    }));
    sent = await send(key, events);
  });

  const base = () => `/v1/orgs/${org.id}/usage`;

  it('breaks down by integration and tool, rows equal to a JS grouping and adding up to the summary', async () => {
    for (const range of ['30d', '7d', '1d', 'mtd']) {
      const s = UsageSummarySchema.parse(
        (await t.call('GET', `${base()}/summary?range=${range}`, { key })).body,
      );
      for (const [by, keyOf] of [
        ['integration', integrationOf],
        ['tool', toolOf],
      ] as const) {
        const { rows, first } = await allRows(`${base()}/breakdown?range=${range}&by=${by}&limit=3`, key);
        const want = expected(sent, s.range.start, s.range.end, keyOf);
        expect([range, by, asMap(rows)]).toEqual([range, by, want]);
        expect(first.groups).toBe(rows.length);
        expect(totalOf(asMap(rows))).toEqual({
          credits: credits(s.credits),
          cost: cost(s.cost),
          calls: s.calls,
        });
        if (s.calls > 0) expect(rows.reduce((a, r) => a + decimalUnits(r.share, 4), 0n)).toBe(10_000n);
      }
    }
    const tools = await allRows(`${base()}/breakdown?range=30d&by=tool&limit=50`, key);
    expect(tools.rows.map((r) => r.key).sort()).toEqual([
      '',
      'code',
      'image',
      'web_search',
      LONG_TOOL.slice(0, 200),
    ]);
    expect(tools.rows.find((r) => r.key === '')!.label).toBe('No tool');
    const integrations = await allRows(`${base()}/breakdown?range=30d&by=integration&limit=50`, key);
    expect(integrations.rows.map((r) => r.key).sort()).toEqual(['', 'gmail', 'notion', 'slack']);
  });

  it('filters on integration and tool alike in summary, breakdowns, series and the events log', async () => {
    const cases: [string, (e: Sent) => boolean][] = [
      ['integration=slack', (e) => integrationOf(e) === 'slack'],
      ['tool=web_search', (e) => toolOf(e) === 'web_search'],
      ['tool=code&member=bob', (e) => toolOf(e) === 'code' && e.member === 'bob'],
      ['integration=gmail&feature=Chat', (e) => integrationOf(e) === 'gmail' && e.feature === 'Chat'],
      ['integration=web', () => false],
    ];
    for (const [q, keep] of cases) {
      for (const range of ['30d', '1d']) {
        const s = UsageSummarySchema.parse(
          (await t.call('GET', `${base()}/summary?range=${range}&${q}`, { key })).body,
        );
        const want = totalOf(expected(sent, s.range.start, s.range.end, () => '', keep));
        expect([q, range, { credits: credits(s.credits), cost: cost(s.cost), calls: s.calls }]).toEqual([
          q,
          range,
          want,
        ]);
        for (const [by, keyOf] of [
          ['member', (e: Sent) => e.member],
          ['tool', toolOf],
          ['integration', integrationOf],
          ['feature', (e: Sent) => e.feature],
        ] as const) {
          const { rows } = await allRows(`${base()}/breakdown?range=${range}&by=${by}&limit=50&${q}`, key);
          const got = new Map([...asMap(rows)].map(([k, v]) => [by === 'member' ? '' : k, v]));
          const wantRows = expected(
            sent,
            s.range.start,
            s.range.end,
            by === 'member' ? () => '' : keyOf,
            keep,
          );
          // Members are keyed by Tally id: compare their total only.
          if (by === 'member') expect([q, by, totalOf(asMap(rows))]).toEqual([q, by, totalOf(wantRows)]);
          else expect([q, range, by, got]).toEqual([q, range, by, wantRows]);
        }
        const ts = UsageTimeseriesSchema.parse(
          (await t.call('GET', `${base()}/timeseries?range=${range}&split=tool&${q}`, { key })).body,
        );
        expect(ts.data.reduce((a, b) => a + credits(b.credits), 0n)).toBe(want.credits);
        for (const b of ts.data) {
          expect(b.groups!.reduce((a, g) => a + credits(g.credits), 0n)).toBe(credits(b.credits));
        }
        let calls = 0;
        let cursor: string | null = null;
        do {
          const r = await t.call(
            'GET',
            `${base()}/events?range=${range}&limit=200&${q}${cursor ? `&cursor=${cursor}` : ''}`,
            { key },
          );
          const page = UsageEventsPageSchema.parse(r.body);
          calls += page.data.length;
          cursor = page.next_cursor;
        } while (cursor);
        expect([q, range, calls]).toEqual([q, range, want.calls]);
      }
    }
  });

  it('splits a time series by tool and integration, buckets adding up', async () => {
    for (const split of ['tool', 'integration']) {
      const ts = UsageTimeseriesSchema.parse(
        (await t.call('GET', `${base()}/timeseries?range=30d&granularity=day&split=${split}`, { key })).body,
      );
      const s = UsageSummarySchema.parse((await t.call('GET', `${base()}/summary?range=30d`, { key })).body);
      expect(ts.data.reduce((a, b) => a + credits(b.credits), 0n)).toBe(credits(s.credits));
      for (const b of ts.data) {
        expect(b.groups!.reduce((a, g) => a + credits(g.credits), 0n)).toBe(credits(b.credits));
      }
    }
  });

  it('refuses an empty or oversized integration or tool filter naming the field', async () => {
    for (const [q, param] of [
      ['tool=', 'tool'],
      ['integration=', 'integration'],
      [`tool=${'a'.repeat(201)}`, 'tool'],
      ['by=tools', 'by'],
    ]) {
      const r = await t.call('GET', `${base()}/breakdown?${q}`, { key });
      expect([q, r.status, r.body.param]).toEqual([q, 400, param]);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
    }
  });
});

describe('usage by integration and tool: property', () => {
  it('rows equal a JS grouping of random events and add up to the summary, exactly', async () => {
    const arbEvent = fc.record({
      minutesAgo: fc.integer({ min: 1, max: 29 * 24 * 60 }),
      member: fc.constantFrom('m1', 'm2'),
      feature: fc.constantFrom('Chat', 'Agents'),
      surface: fc.constantFrom(undefined, 'web', 'cli', 'slack', 'Slack', 'gmail'),
      tool: fc.constantFrom(undefined, 'web_search', ' code ', '', 3, 'code'),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(arbEvent, { maxLength: 25 }),
        fc.constantFrom('1d', '7d', '30d', 'mtd'),
        fc.constantFrom('', '&feature=Chat', '&tool=code', '&integration=slack'),
        async (evs, range, filter) => {
          const { org, key } = await createOrgWithKey(t, { timezone: 'Asia/Katmandu' });
          const sent = await send(
            key,
            evs.map((e, i) => ({
              id: `p${i}`,
              member: e.member,
              feature: e.feature,
              surface: e.surface,
              tool: e.tool,
              at: new Date(Date.now() - e.minutesAgo * 60_000).toISOString(),
            })),
          );
          const keep = (e: Sent) =>
            filter === '&feature=Chat'
              ? e.feature === 'Chat'
              : filter === '&tool=code'
                ? toolOf(e) === 'code'
                : filter === '&integration=slack'
                  ? integrationOf(e) === 'slack'
                  : true;
          const base = `/v1/orgs/${org.id}/usage`;
          const s = UsageSummarySchema.parse(
            (await t.call('GET', `${base}/summary?range=${range}${filter}`, { key })).body,
          );
          for (const [by, keyOf] of [
            ['integration', integrationOf],
            ['tool', toolOf],
          ] as const) {
            const { rows } = await allRows(`${base}/breakdown?range=${range}&by=${by}&limit=4${filter}`, key);
            expect(asMap(rows)).toEqual(expected(sent, s.range.start, s.range.end, keyOf, keep));
            expect(totalOf(asMap(rows))).toEqual({
              credits: credits(s.credits),
              cost: cost(s.cost),
              calls: s.calls,
            });
          }
        },
      ),
      { numRuns: 12 },
    );
  });
});
