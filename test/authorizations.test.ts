import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthorizationSchema, CaptureSchema, IncrementSchema } from '../src/http/routes/authorizations.ts';
import { expireHolds } from '../src/services/authorizations/expireHolds.ts';
import { forgetAuthorization } from '../src/services/authorizations/shape.ts';
import { KEY_KEPT_MS } from '../src/services/keys/authenticate.ts';
import { checkLedger } from '../src/services/ledger/checkLedger.ts';
import { createOrgWithKey, freshIdempotencyKey, startTally, type TestTally } from './support/harness.ts';
import { cost } from './support/units.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

// gpt-4o at 1.5 x markup and EUR 0.92 / USD, 1 credit = EUR 0.01:
// 1 000 input tokens = 0.345 credits, 1 000 output tokens = 1.38 credits.
const call = { member: 'u1', feature: 'Chat', provider: 'openai', model: 'gpt-4o' };

async function balanceOf(orgId: string) {
  return (await t.call('GET', `/v1/orgs/${orgId}/balance`)).body;
}

/** A hold of 10 credits with 1 000 output tokens (1.38 credits) streamed. */
/** A hold (10 credits unless told) with one report streamed (1 000 output tokens unless told). */
async function holdWithStreamed({
  estimate = { credits: '10' } as Record<string, unknown>,
  report = { usage: { output_tokens: 1_000 } } as Record<string, unknown>,
  orgOptions = {} as Record<string, unknown>,
} = {}) {
  const { org, key } = await createOrgWithKey(t, orgOptions);
  const auth = await t.call('POST', '/v1/authorizations', { key, body: { ...call, estimate } });
  await t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
    headers: freshIdempotencyKey(),
    key,
    body: report,
  });
  return { org, key, auth };
}

describe('usage past the hold and past the credits', () => {
  it('is billed into overage, not dropped, and the stream is told to stop', async () => {
    const { org, key } = await createOrgWithKey(t); // 500 plan credits, no limit or budget
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '100' } },
    });
    expect(auth.body).toMatchObject({ approved: true, held_credits: '100', available_credits: '400' });
    // 400 000 output tokens = 552 credits: 100 from the hold, 400 from the credits left, 52 overage.
    const inc = await t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
      headers: freshIdempotencyKey(),
      key,
      body: { usage: { output_tokens: 400_000 } },
    });
    expect(inc.body).toMatchObject({ charged_credits: '552', unbilled_credits: '0', action: 'stop' });
    expect(await balanceOf(org.id)).toMatchObject({
      available_credits: '0',
      held_credits: '0',
      overage_credits: '52',
    });
    const cap = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage: { output_tokens: 400_000 }, event_id: 'past-credits' },
    });
    expect(cap.body).toMatchObject({ status: 'captured', credits: '552', unbilled_credits: '0' });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });
});

describe('holds: happy path', () => {
  it('holds an estimate, bills increments while streaming, captures and releases the rest', async () => {
    const { org, key } = await createOrgWithKey(t);
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { input_tokens: 10_000, max_output_tokens: 10_000 } },
    });
    expect(auth.status).toBe(200);
    AuthorizationSchema.parse(auth.body);
    // 10 000 in = 3.45, 10 000 out = 13.8 -> 17.25 credits held.
    expect(auth.body).toMatchObject({ approved: true, held_credits: '17.25', available_credits: '482.75' });
    expect((await balanceOf(org.id)).held_credits).toBe('17.25');

    const inc = await t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
      headers: freshIdempotencyKey(),
      key,
      body: { usage: { input_tokens: 10_000, output_tokens: 1_000 } },
    });
    IncrementSchema.parse(inc.body);
    expect(inc.body).toMatchObject({
      charged_credits: '4.83',
      total_charged_credits: '4.83',
      action: 'continue',
    });
    const during = await balanceOf(org.id);
    expect(during).toMatchObject({ held_credits: '12.42', available_credits: '482.75' });

    const cap = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage: { input_tokens: 10_000, output_tokens: 3_000 } },
    });
    expect(cap.status).toBe(200);
    CaptureSchema.parse(cap.body);
    // 3.45 + 4.14 = 7.59 credits in all; EUR 0.0759.
    expect(cap.body).toMatchObject({
      credits: '7.59',
      cost: '0.0759',
      event_id: auth.body.id,
      unbilled_credits: '0',
    });
    const after = await balanceOf(org.id);
    expect(after).toMatchObject({ held_credits: '0', available_credits: '492.41' });
    // Capture is idempotent.
    const again = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage: { input_tokens: 10_000, output_tokens: 3_000 } },
    });
    expect(again.body).toEqual(cap.body);
    // Less than was captured is read as the captured usage (as a count below the streamed one is).
    const less = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage: { input_tokens: 10_000, output_tokens: 2_000 } },
    });
    expect(less.body).toEqual(cap.body);
    // More usage, or another event id, would be billed nowhere: refused, the first capture stands.
    for (const body of [
      { usage: { input_tokens: 10_000, output_tokens: 4_000 } },
      { usage: { input_tokens: 10_000, output_tokens: 3_000, cache_write_tokens: 10 } },
      { usage: { input_tokens: 10_000, output_tokens: 3_000 }, event_id: 'another-event' },
    ]) {
      const other = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, { key, body });
      expect(other.status, JSON.stringify(body)).toBe(409);
      expect(other.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(other.body).toMatchObject({ code: 'authorization_captured' });
    }
    // A capture kept before its usage was (no captured_usage) answers a capture sent again as it did.
    await t.db.query(
      "UPDATE authorizations SET result = result - 'captured_usage' WHERE org_id = $1 AND id = $2",
      [org.id, auth.body.id],
    );
    const older = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage: { input_tokens: 10_000, output_tokens: 4_000 } },
    });
    expect(older.status).toBe(200);
    expect(older.body).toEqual(cap.body);
    expect(await balanceOf(org.id)).toMatchObject({ held_credits: '0', available_credits: '492.41' });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
    const events = await t.db.query<{ credits: string }>('SELECT credits FROM events WHERE org_id = $1', [
      org.id,
    ]);
    expect(events).toEqual([{ credits: '7590000' }]);
  });

  it("records a capture's error as its event's metadata.error, counted as a failed call", async () => {
    const { org, key, auth } = await holdWithStreamed({ orgOptions: { timezone: 'UTC' } });
    const capture = (body: unknown) =>
      t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, { key, body });
    for (const [error, reason] of [
      ['', 'Too small'],
      ['x'.repeat(201), 'Too big'],
      [42, 'Invalid input'],
    ] as const) {
      const refused = await capture({ usage: { output_tokens: 1_000 }, error });
      expect(refused.status, JSON.stringify(refused.body)).toBe(422);
      expect(refused.body).toMatchObject({ param: 'error', detail: expect.stringContaining(reason) });
    }
    const done = await capture({ usage: { output_tokens: 1_000 }, error: 'tool_timeout' });
    expect(done.status).toBe(200);
    expect((await capture({ usage: { output_tokens: 1_000 }, error: 'tool_timeout' })).body).toEqual(
      done.body,
    );
    const [event] = await t.db.query<{ metadata: Record<string, unknown> }>(
      'SELECT metadata FROM events WHERE org_id = $1',
      [org.id],
    );
    expect(event!.metadata).toEqual({ error: 'tool_timeout', authorization_id: auth.body.id });
    const byFeature = await t.call('GET', `/v1/orgs/${org.id}/usage/breakdown?range=1d&by=feature`, { key });
    expect(byFeature.body.data).toMatchObject([
      { key: 'Chat', calls: 1, failed_calls: 1, top_error: 'tool_timeout' },
    ]);
  });

  it('bills many small increments exactly the price of their total, never a rounding more', async () => {
    const { org, key } = await createOrgWithKey(t);
    // gpt-4o-mini input: 0.0000207 credits a token, 20.7 micro-credits: one token alone rounds.
    const mini = { ...call, model: 'gpt-4o-mini' };
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...mini, estimate: { credits: '1' } },
    });
    let last: Record<string, unknown> = {};
    for (let i = 0; i < 10; i++) {
      const inc = await t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
        headers: freshIdempotencyKey(),
        key,
        body: { usage: { input_tokens: 1 } },
      });
      expect(inc.status).toBe(200);
      last = inc.body;
    }
    // The running total is priced, not each token: 10 x 20.7 = 207 micro-credits.
    expect(last.total_charged_credits).toBe('0.000207');
    const cap = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage: { input_tokens: 10 } },
    });
    // 10 tokens: exactly 207 micro-credits, as one event of 10 tokens would be billed.
    expect(cap.body).toMatchObject({ credits: '0.000207', unbilled_credits: '0' });
    const events = await t.db.query<{ credits: string }>('SELECT credits FROM events WHERE org_id = $1', [
      org.id,
    ]);
    expect(events).toEqual([{ credits: '207' }]);
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it('bills running totals only past what the call recorded, so a resent total bills nothing twice', async () => {
    const { org, key } = await createOrgWithKey(t);
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '10' } },
    });
    const report = (body: unknown) =>
      t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
        headers: freshIdempotencyKey(),
        key,
        body,
      });
    const first = await report({ usage_total: { output_tokens: 1_000 } });
    expect(IncrementSchema.parse(first.body)).toMatchObject({
      charged_credits: '1.38',
      total_charged_credits: '1.38',
    });
    // Sent again (its answer was lost): nothing more.
    const again = await report({ usage_total: { output_tokens: 1_000 } });
    expect(again.body).toMatchObject({ charged_credits: '0', total_charged_credits: '1.38' });
    // Totals and deltas mix: 500 more as a delta, then totals of 2 000 bill the last 500.
    await report({ usage: { output_tokens: 500 } });
    const last = await report({ usage_total: { output_tokens: 2_000 } });
    expect(last.body).toMatchObject({ charged_credits: '0.69', total_charged_credits: '2.76' });
    for (const body of [{}, { usage: {}, usage_total: {} }]) {
      const bad = await report(body);
      expect(bad.status).toBe(422);
      expect(bad.body).toMatchObject({ param: 'usage' });
      expect(bad.body.detail).toContain('either usage');
    }
    const capture = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage: { output_tokens: 2_000 } },
    });
    expect(capture.body).toMatchObject({ credits: '2.76' });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it('bills a call no more than the most its reported totals were worth', async () => {
    const { org, key } = await createOrgWithKey(t);
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '40' } },
    });
    const report = (usage_total: Record<string, number>) =>
      t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, { key, body: { usage_total } });
    // 100 000 input tokens: 34.5 credits uncached; then the same tokens reported as read from the
    // cache (17.25), then 1 000 output tokens more (18.63 in all): the call is worth 34.5 at most.
    expect((await report({ input_tokens: 100_000 })).body).toMatchObject({ charged_credits: '34.5' });
    expect((await report({ input_tokens: 100_000, cache_read_tokens: 100_000 })).body).toMatchObject({
      charged_credits: '0',
    });
    const usage = { input_tokens: 100_000, cache_read_tokens: 100_000, output_tokens: 1_000 };
    expect((await report(usage)).body).toMatchObject({ charged_credits: '0', total_charged_credits: '34.5' });
    const capture = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage },
    });
    expect(capture.body).toMatchObject({ credits: '34.5', unbilled_credits: '0' });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it('void bills what was streamed (a client that disconnects still pays)', async () => {
    const { org, key, auth } = await holdWithStreamed();
    const voided = await t.call('POST', `/v1/authorizations/${auth.body.id}/void`, { key });
    expect(voided.body).toMatchObject({ status: 'voided', charged_credits: '1.38' });
    expect(await balanceOf(org.id)).toMatchObject({ held_credits: '0', available_credits: '498.62' });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });
});

describe('holds: limits', () => {
  it('judges every hold on the limits in force, however recently they changed', async () => {
    const { org, key } = await createOrgWithKey(t);
    const team = { ...call, workspace: 'team' };
    const first = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...team, estimate: { credits: '3' } },
    });
    expect(first.body).toMatchObject({ approved: true, held_credits: '3' });
    // EUR 0.05 a month = 5 credits, 3 of them held already.
    await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      key,
      body: { alert_threshold: null, allowed_limit: '0.05' },
    });
    const second = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...team, estimate: { credits: '4' } },
    });
    expect(second.body).toMatchObject({ approved: true, reason: 'partial', held_credits: '2' });
    await t.call('POST', `/v1/authorizations/${second.body.id}/void`, { key });
    // A budget made meanwhile binds the next hold at once.
    const budget = await t.call('POST', `/v1/orgs/${org.id}/budgets`, {
      key,
      body: { name: 'Team', scope: { kind: 'workspace', id: 'team' }, amount: '0', period: 'month' },
    });
    expect(budget.status).toBe(201);
    const third = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...team, estimate: { credits: '1' } },
    });
    expect(third.body).toMatchObject({ approved: false, reason: 'budget_exceeded' });
  });

  it("counts a new budget's period from its start: the scope's spend so far binds at once", async () => {
    const { org, key } = await createOrgWithKey(t);
    const team = { ...call, workspace: 'team' };
    const event = (id: string, workspace: string) => ({
      ...call,
      workspace,
      id,
      occurred_at: new Date().toISOString(),
      usage: { input_tokens: 100_000, output_tokens: 20_000 },
    });
    const sent = await t.call('POST', '/v1/events', {
      key,
      body: { events: [event('a', 'team'), event('b', 'team'), event('c', 'elsewhere')] },
    });
    // The two of the team's workspace, summed exactly.
    const [a, b] = sent.body.results.map((r: { cost: string }) => cost(r.cost));
    const budget = await t.call('POST', `/v1/orgs/${org.id}/budgets`, {
      key,
      body: { name: 'Team', scope: { kind: 'workspace', id: 'team' }, amount: '1', period: 'month' },
    });
    expect(budget.status).toBe(201);
    expect(cost(budget.body.current_period.spent)).toBe(a + b);
    const tight = await t.call('POST', `/v1/orgs/${org.id}/budgets`, {
      key,
      body: { name: 'Tight', scope: { kind: 'workspace', id: 'team' }, amount: '0.000001', period: 'cycle' },
    });
    expect(tight.body.current_period).toMatchObject({ remaining: '0', status: 'exceeded' });
    const hold = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...team, estimate: { credits: '1' } },
    });
    expect(hold.body).toMatchObject({ approved: false, reason: 'budget_exceeded' });
    const elsewhere = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, workspace: 'elsewhere', estimate: { credits: '1' } },
    });
    expect(elsewhere.body).toMatchObject({ approved: true });
  });

  it('counts a batch toward a budget made after the batch read the limits (checked under the lock)', async () => {
    const { org, key } = await createOrgWithKey(t);
    const event = (id: string) => ({
      ...call,
      workspace: 'team',
      id,
      occurred_at: new Date().toISOString(),
      usage: { input_tokens: 100_000, output_tokens: 20_000 },
    });
    // This batch leaves the process a copy of the org's limits: no budget yet.
    await t.call('POST', '/v1/events', { key, body: { events: [event('before')] } });
    const budget = await t.call('POST', `/v1/orgs/${org.id}/budgets`, {
      key,
      body: { name: 'Team', scope: { kind: 'workspace', id: 'team' }, amount: '100', period: 'month' },
    });
    const seeded = budget.body.current_period.spent;
    // The next batch starts from that copy, finds it stale under the lock and counts the budget.
    const after = await t.call('POST', '/v1/events', { key, body: { events: [event('after')] } });
    const budgets = await t.call('GET', `/v1/orgs/${org.id}/budgets`, { key });
    expect(cost(budgets.body.data[0].current_period.spent)).toBe(
      cost(seeded) + cost(after.body.results[0].cost),
    );
  });

  it('treats a limit too large for any counter as one that binds nothing (found by the fuzzer: a 500)', async () => {
    const { org, key } = await createOrgWithKey(t);
    const set = await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      key,
      body: { alert_threshold: '889243313805', allowed_limit: '889243313805' },
    });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    // The first hold of an org takes the full path; the next ones the one-statement path.
    for (let i = 0; i < 3; i++) {
      const auth = await t.call('POST', '/v1/authorizations', {
        key,
        body: { ...call, estimate: { credits: '5' } },
      });
      expect(auth.status, JSON.stringify(auth.body)).toBe(200);
      expect(auth.body).toMatchObject({ approved: true, held_credits: '5' });
    }
  });

  it('denies with quota_exceeded at the hard limit and never bills past it', async () => {
    const { org, key } = await createOrgWithKey(t);
    // EUR 0.10 a month = 10 credits.
    await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      key,
      body: { alert_threshold: '0.05', allowed_limit: '0.1' },
    });
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '8' } },
    });
    expect(auth.body).toMatchObject({ approved: true, held_credits: '8', available_credits: '2' });
    const second = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '5' } },
    });
    expect(second.body).toMatchObject({ approved: true, reason: 'partial', held_credits: '2' });
    const third = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '1' } },
    });
    expect(third.body).toMatchObject({ approved: false, reason: 'quota_exceeded', held_credits: '0' });
    // An estimate of nothing is no way past the limit: a hold reserves at least one unit.
    const nothing = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { input_tokens: 0, max_output_tokens: 0 } },
    });
    expect(nothing.body).toMatchObject({ approved: false, reason: 'quota_exceeded', held_credits: '0' });
    // The denial hands the host app the page that explains the block.
    const quota = new URL(third.body.quota_url);
    expect(quota.pathname).toBe('/usage/quota');
    expect(Object.fromEntries(quota.searchParams)).toEqual({ org: org.id, reason: 'quota_exceeded' });
    expect(second.body.quota_url).toBeNull();

    // 10 000 output tokens = 13.8 credits wanted; only the 8 held fit (the other 2 are held elsewhere).
    const inc = await t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
      headers: freshIdempotencyKey(),
      key,
      body: { usage: { output_tokens: 10_000 } },
    });
    expect(inc.body).toMatchObject({ charged_credits: '8', unbilled_credits: '5.8', action: 'stop' });
    await t.call('POST', `/v1/authorizations/${second.body.id}/void`, { key });
    const limits = await t.call('GET', `/v1/orgs/${org.id}/limits`, { key });
    expect(limits.body).toMatchObject({ spent: '0.08', held: '0' });
  });

  it("keeps the month's spend in money when the credit value changes, so a hard limit still holds", async () => {
    const { org, key } = await createOrgWithKey(t, { plan_allowance_credits: '100000' });
    await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      key,
      body: { alert_threshold: '8', allowed_limit: '10' },
    });
    // 500 000 output tokens = 690 credits = EUR 6.90.
    const sent = await t.call('POST', '/v1/events', {
      key,
      body: {
        events: [
          { ...call, id: 'cv-1', occurred_at: new Date().toISOString(), usage: { output_tokens: 500_000 } },
        ],
      },
    });
    expect(sent.body.results[0]).toMatchObject({ status: 'accepted', credits: '690', cost: '6.9' });
    const limits = async () => (await t.call('GET', `/v1/orgs/${org.id}/limits`, { key })).body;
    const setValue = (credit_value: string) =>
      t.call('PATCH', `/v1/orgs/${org.id}`, { body: { credit_value } });
    expect((await setValue('0.02')).status).toBe(200);
    expect(await limits()).toMatchObject({ spent: '6.9', status: 'ok' });
    expect((await setValue('0.005')).status).toBe(200);
    expect(await limits()).toMatchObject({ spent: '6.9', status: 'ok' });
    // 3 credits' worth at 0.07 is no whole number of micro-credits: rounded up, never down.
    expect((await setValue('0.07')).status).toBe(200);
    const rounded = await limits();
    expect(cost(rounded.spent) - cost('6.9')).toBeGreaterThanOrEqual(0n);
    expect(cost(rounded.spent) - cost('6.9')).toBeLessThan(cost('0.00000007'));
    expect((await setValue('0.005')).status).toBe(200);
    // EUR 3.10 of room is 620 credits at 0.005; a call worth EUR 6.55 is billed only that far.
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { input_tokens: 0, max_output_tokens: 2_000_000 } },
    });
    expect(auth.body).toMatchObject({ approved: true, reason: 'partial' });
    expect(cost(auth.body.held_credits)).toBeLessThanOrEqual(cost('620'));
    // The value cannot change under an active hold, which counts its credits at the old one; the
    // value it has already is no change.
    expect((await setValue('0.0050')).status).toBe(200);
    const refused = await setValue('0.01');
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'holds_active', param: 'credit_value' });
    await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage: { output_tokens: 2_000_000 } },
    });
    const after = await limits();
    expect(cost(after.spent)).toBeLessThanOrEqual(cost('10'));
    const summary = await t.call('GET', `/v1/orgs/${org.id}/usage/summary?range=mtd`, { key });
    expect(cost(summary.body.cost)).toBeLessThanOrEqual(cost('10'));
    expect(after.status).toBe('exceeded');
  });

  it('judges whether a stream may go on by its next output, not by the prompt its first report carries', async () => {
    const { org, key } = await createOrgWithKey(t);
    // 26 credits a month; the hold takes 20.01 of them: 50 000 input tokens (17.25) and 2 000 output (2.76).
    await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      body: { alert_threshold: null, allowed_limit: '0.26' },
    });
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { input_tokens: 50_000, max_output_tokens: 2_000 } },
    });
    expect(auth.body).toMatchObject({ approved: true, held_credits: '20.01' });
    // The first report has the whole prompt and 20 output tokens (as a stream's first usage does);
    // another 20 tokens fit easily, another prompt would not.
    const first = await t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
      key,
      body: { usage_total: { input_tokens: 50_000, output_tokens: 20 } },
    });
    expect(first.body).toMatchObject({ charged_credits: '17.2776', action: 'continue' });
    // Output beyond what the hold and the limit leave: told to stop.
    const last = await t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
      key,
      body: { usage_total: { input_tokens: 50_000, output_tokens: 4_500 } },
    });
    expect(last.body).toMatchObject({ action: 'stop' });
  });

  it('names the budget that blocks', async () => {
    const { org, key } = await createOrgWithKey(t);
    const member = await t.call('POST', `/v1/orgs/${org.id}/members`, {
      key,
      body: { external_id: 'capped' },
    });
    const budget = await t.call('POST', `/v1/orgs/${org.id}/budgets`, {
      key,
      body: {
        name: 'Intern cap',
        scope: { kind: 'member', id: member.body.id },
        amount: '0',
        period: 'month',
      },
    });
    expect(budget.status).toBe(201);
    const denied = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, member: 'capped', estimate: { credits: '1' } },
    });
    expect(denied.body).toMatchObject({
      approved: false,
      reason: 'budget_exceeded',
      budget: { id: budget.body.id, name: 'Intern cap' },
    });
    expect(new URL(denied.body.quota_url).searchParams.get('budget')).toBe(budget.body.id);
  });
});

describe("budgets: a member named by the host app's user id", () => {
  const budgetFor = (orgId: string, key: string, memberRef: string) =>
    t.call('POST', `/v1/orgs/${orgId}/budgets`, {
      key,
      body: { name: 'Member cap', scope: { kind: 'member', id: memberRef }, amount: '100', period: 'month' },
    });
  const budgetRows = (...orgIds: string[]) =>
    t.db.query('SELECT id FROM budgets WHERE org_id = ANY($1::text[])', [orgIds]);

  it("stores the Tally member id, and counts that member's spend against the budget", async () => {
    const { org, key } = await createOrgWithKey(t);
    const member = await t.call('POST', `/v1/orgs/${org.id}/members`, {
      key,
      body: { external_id: 'host-user-42' },
    });
    const event = (id: string) => ({
      ...call,
      member: 'host-user-42',
      id,
      occurred_at: new Date().toISOString(),
      usage: { input_tokens: 100_000, output_tokens: 20_000 },
    });
    const before = await t.call('POST', '/v1/events', { key, body: { events: [event('before')] } });
    const budget = await budgetFor(org.id, key, 'host-user-42');
    expect(budget.status, JSON.stringify(budget.body)).toBe(201);
    expect(budget.body.scope).toEqual({ kind: 'member', id: member.body.id, label: 'host-user-42' });
    expect(cost(budget.body.current_period.spent)).toBe(cost(before.body.results[0].cost));
    const after = await t.call('POST', '/v1/events', { key, body: { events: [event('after')] } });
    const [listed] = (await t.call('GET', `/v1/orgs/${org.id}/budgets`, { key })).body.data;
    expect(listed.scope).toEqual({ kind: 'member', id: member.body.id, label: 'host-user-42' });
    expect(cost(listed.current_period.spent)).toBe(
      cost(before.body.results[0].cost) + cost(after.body.results[0].cost),
    );
    // The audit record keeps the Tally id: erasing the member leaves no host app's id behind.
    const [audited] = await t.db.query<{ data: { scope: unknown } }>(
      "SELECT data FROM audit_log WHERE org_id = $1 AND action = 'budget.created'",
      [org.id],
    );
    expect(audited!.data.scope).toEqual({ kind: 'member', id: member.body.id });
    // A Tally id comes first, even when another member's host app's id is the same text.
    const namesake = await t.call('POST', `/v1/orgs/${org.id}/members`, {
      key,
      body: { external_id: member.body.id },
    });
    expect(namesake.status).toBe(201);
    expect((await budgetFor(org.id, key, member.body.id)).body.scope.id).toBe(member.body.id);
  });

  it('names each scope as the pages do: a member as usage names them, any other scope by its id', async () => {
    const { org, key } = await createOrgWithKey(t);
    const people = [
      { external_id: 'u-named', name: 'Ana Lima', email: 'ana@example.com' },
      { external_id: 'u-mailed', email: 'ben@example.com' },
      { external_id: 'u-bare' },
      { external_id: 'u-leaving', name: 'Cy Leaving' },
    ];
    for (const body of people) {
      expect((await t.call('POST', `/v1/orgs/${org.id}/members`, { key, body })).status).toBe(201);
    }
    for (const { external_id } of people)
      expect((await budgetFor(org.id, key, external_id)).status).toBe(201);
    const workspace = await t.call('POST', `/v1/orgs/${org.id}/budgets`, {
      key,
      body: { name: 'Team cap', scope: { kind: 'workspace', id: 'platform' }, amount: '50', period: 'month' },
    });
    expect(workspace.body.scope).toEqual({ kind: 'workspace', id: 'platform', label: 'platform' });
    const leaving = (
      await t.db.query<{ id: string }>('SELECT id FROM members WHERE org_id = $1 AND external_id = $2', [
        org.id,
        'u-leaving',
      ])
    )[0]!.id;
    expect((await t.call('DELETE', `/v1/orgs/${org.id}/members/${leaving}`, { key })).status).toBe(200);
    const listed = (await t.call('GET', `/v1/orgs/${org.id}/budgets`, { key })).body.data;
    expect(listed.map((b: { scope: { label: string } }) => b.scope.label).sort()).toEqual(
      ['Ana Lima', 'ben@example.com', 'u-bare', 'Unknown user', 'platform'].sort(),
    );
  });

  it('answers 404 naming scope.id for an unknown or erased member, and writes nothing', async () => {
    const { org, key } = await createOrgWithKey(t);
    const erased = await t.call('POST', `/v1/orgs/${org.id}/members`, {
      key,
      body: { external_id: 'gone-user' },
    });
    const erase = await t.call('POST', `/v1/orgs/${org.id}/members/${erased.body.id}/erase`, { key });
    expect(erase.status).toBe(200);
    for (const ref of ['no-such-user', 'gone-user']) {
      const res = await budgetFor(org.id, key, ref);
      expect(res.status, ref).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ code: 'not_found', param: 'scope.id' });
    }
    expect(await budgetRows(org.id)).toEqual([]);
  });

  it("takes an API key scope only for one of the org's own keys", async () => {
    const a = await createOrgWithKey(t);
    const b = await createOrgWithKey(t);
    const budgetOn = (id: string) =>
      t.call('POST', `/v1/orgs/${a.org.id}/budgets`, {
        key: a.key,
        body: { name: 'Key cap', scope: { kind: 'api_key', id }, amount: '5', period: 'month' },
      });
    for (const id of ['key_nope', b.keyId]) {
      const res = await budgetOn(id);
      expect(res.status, id).toBe(404);
      expect(res.body).toMatchObject({ code: 'not_found', param: 'scope.id' });
    }
    expect(await budgetRows(a.org.id)).toEqual([]);
    const own = await budgetOn(a.keyId);
    expect(own.status).toBe(201);
    expect(own.body.scope).toMatchObject({ kind: 'api_key', id: a.keyId });
  });

  it("never finds another org's member, by either id", async () => {
    const a = await createOrgWithKey(t);
    const b = await createOrgWithKey(t);
    const foreign = await t.call('POST', `/v1/orgs/${b.org.id}/members`, {
      key: b.key,
      body: { external_id: 'b-only-user' },
    });
    for (const ref of ['b-only-user', foreign.body.id]) {
      const res = await budgetFor(a.org.id, a.key, ref);
      expect(res.status, ref).toBe(404);
      expect(res.body).toMatchObject({ param: 'scope.id' });
      expect(JSON.stringify(res.body)).not.toContain(foreign.body.id);
    }
    expect(await budgetRows(a.org.id, b.org.id)).toEqual([]);
    // A host app's id both orgs use names each org's own member.
    const own = await t.call('POST', `/v1/orgs/${a.org.id}/members`, {
      key: a.key,
      body: { external_id: 'shared-user' },
    });
    await t.call('POST', `/v1/orgs/${b.org.id}/members`, {
      key: b.key,
      body: { external_id: 'shared-user' },
    });
    expect((await budgetFor(a.org.id, a.key, 'shared-user')).body.scope.id).toBe(own.body.id);
  });
});

describe('holds: errors and security', () => {
  it('a key revoked by another Tally process stops placing holds within KEY_KEPT_MS', async () => {
    const { key, keyId } = await createOrgWithKey(t);
    const hold = () =>
      t.call('POST', '/v1/authorizations', { key, body: { ...call, estimate: { credits: '1' } } });
    expect((await hold()).status).toBe(200);
    // Another process revokes it: this one learns it from the database only.
    await t.db.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [keyId]);
    await new Promise((r) => setTimeout(r, KEY_KEPT_MS));
    const refused = await hold();
    expect(refused.status).toBe(401);
    expect(refused.body.detail).toMatch(/revoked/);
  });

  it('hides other orgs and refuses finished holds', async () => {
    const a = await createOrgWithKey(t);
    const b = await createOrgWithKey(t);
    const auth = await t.call('POST', '/v1/authorizations', {
      key: a.key,
      body: { ...call, estimate: { credits: '1' } },
    });
    const foreign = await t.call('POST', `/v1/authorizations/${auth.body.id}/void`, { key: b.key });
    expect(foreign.status).toBe(404);
    await t.call('POST', `/v1/authorizations/${auth.body.id}/void`, { key: a.key });
    const again = await t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
      headers: freshIdempotencyKey(),
      key: a.key,
      body: { usage: { output_tokens: 1 } },
    });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('authorization_not_active');
  });

  it('refuses a usage step without an Idempotency-Key, and bills one resent with its key once', async () => {
    const { org, key } = await createOrgWithKey(t);
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '100' } },
    });
    const step = { usage: { output_tokens: 10_000 } };
    const path = `/v1/authorizations/${auth.body.id}/increments`;
    const bare = await t.call('POST', path, { key, body: step });
    expect(bare.status).toBe(400);
    expect(bare.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(bare.body).toMatchObject({ code: 'idempotency_key_required', param: 'Idempotency-Key' });
    expect(bare.body.detail).toMatch(/usage_total/);
    expect(await balanceOf(org.id)).toMatchObject({ held_credits: '100', available_credits: '400' });
    // The answer was lost and the client sends the step again with the same key: billed once.
    const headers = freshIdempotencyKey();
    const first = await t.call('POST', path, { key, headers, body: step });
    const resent = await t.call('POST', path, { key, headers, body: step });
    expect(first.body.charged_credits).toBe('13.8');
    expect(resent.headers.get('idempotent-replayed')).toBe('true');
    expect(resent.body).toEqual(first.body);
    expect((await t.call('POST', path, { key, body: { usage_total: step.usage } })).body).toMatchObject({
      charged_credits: '0',
      total_charged_credits: '13.8',
    });
  });

  it('rejects an unpriced model with a clear error, whichever way the estimate is given', async () => {
    const { org, key } = await createOrgWithKey(t);
    for (const estimate of [{ input_tokens: 1, max_output_tokens: 1 }, { credits: '1' }]) {
      const res = await t.call('POST', '/v1/authorizations', {
        key,
        body: { ...call, model: 'no-such-model', estimate },
      });
      expect(res.status, JSON.stringify(estimate)).toBe(422);
      expect(res.body).toMatchObject({ code: 'model_unpriced', param: 'model' });
      expect(res.body.detail).toContain('no-such-model');
    }
    // Nothing was held: a call that could never be billed is not let through.
    const [held] = await t.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM authorizations WHERE org_id = $1',
      [org.id],
    );
    expect(held!.n).toBe(0);
  });
});

describe('holds: expiry', () => {
  const expireNow = (id: string) =>
    t.db.query("UPDATE authorizations SET expires_at = now() - interval '1 second' WHERE id = $1", [id]);
  const jobsCtx = () => ({
    ...t,
    principal: { kind: 'operator' as const, id: 'op_jobs' },
    requestId: 'test',
  });
  const eventCredits = (orgId: string) =>
    t.db.query<{ id: string; credits: string }>(
      'SELECT id, credits::text FROM events WHERE org_id = $1 ORDER BY id',
      [orgId],
    );

  it('the expiry job releases the hold and bills what was streamed', async () => {
    const { org, auth } = await holdWithStreamed();
    await expireNow(auth.body.id);
    expect(await expireHolds(jobsCtx())).toEqual({ expired: 1 });
    expect(await expireHolds(jobsCtx())).toEqual({ expired: 0 });
    expect(await balanceOf(org.id)).toMatchObject({ held_credits: '0', available_credits: '498.62' });
    const [event] = await t.db.query<{ credits: string }>('SELECT credits FROM events WHERE org_id = $1', [
      org.id,
    ]);
    expect(event).toEqual({ credits: '1380000' });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it('an increment renews the hold for its TTL, so a long stream is not ended under it', async () => {
    const { key } = await createOrgWithKey(t);
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '10' }, ttl_seconds: 60 },
    });
    // 59 of its 60 seconds gone, with Tally's clock (expires_at) 0.3 s ahead of the database's.
    await t.db.query(
      `UPDATE authorizations SET created_at = now() - interval '59.3 seconds', expires_at = now() + interval '1 second'
        WHERE id = $1`,
      [auth.body.id],
    );
    const inc = await t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
      headers: freshIdempotencyKey(),
      key,
      body: { usage: { output_tokens: 1_000 } },
    });
    expect(inc.body.action).toBe('continue');
    const [row] = await t.db.query<{ left: number }>(
      'SELECT extract(epoch FROM expires_at - now())::int AS left FROM authorizations WHERE id = $1',
      [auth.body.id],
    );
    expect(row!.left).toBeGreaterThanOrEqual(58);
    expect(row!.left).toBeLessThanOrEqual(60);
    // Renewed again by the next increment: the TTL stays 60 s, it does not grow.
    await t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
      headers: freshIdempotencyKey(),
      key,
      body: { usage: { output_tokens: 1 } },
    });
    const [again] = await t.db.query<{ ttl: string }>(
      'SELECT extract(epoch FROM expires_at - renewed_at)::text AS ttl FROM authorizations WHERE id = $1',
      [auth.body.id],
    );
    expect(Number(again!.ttl)).toBe(60);
    expect(await expireHolds(jobsCtx())).toEqual({ expired: 0 });
  });

  it('a hold that cannot end does not keep the job from ending the others', async () => {
    const stuck = await holdWithStreamed();
    const fine = await holdWithStreamed();
    // Whatever makes one hold fail (here, streamed usage no event may carry: far above the cost
    // ceiling), the oldest due hold comes first on every run.
    await t.db.query(
      `UPDATE authorizations SET usage = '{"output_tokens": 999999999}', expires_at = now() - interval '1 minute'
        WHERE id = $1`,
      [stuck.auth.body.id],
    );
    await expireNow(fine.auth.body.id);
    await expect(expireHolds(jobsCtx())).rejects.toThrow(
      `1 due hold(s) could not expire (1 did): ${stuck.auth.body.id}`,
    );
    expect(await balanceOf(fine.org.id)).toMatchObject({ held_credits: '0' });
    expect(await eventCredits(fine.org.id)).toEqual([{ id: fine.auth.body.id, credits: '1380000' }]);
    // Mended, it ends on the next run (and leaves the later tests' runs to themselves).
    await t.db.query(`UPDATE authorizations SET usage = '{"output_tokens": 1000}' WHERE id = $1`, [
      stuck.auth.body.id,
    ]);
    expect(await expireHolds(jobsCtx())).toEqual({ expired: 1 });
  });

  it('a capture past the TTL, before the expiry job, bills the whole call as one event', async () => {
    const { org, key, auth } = await holdWithStreamed();
    await expireNow(auth.body.id);
    const late = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage: { output_tokens: 2_000 } },
    });
    expect(late.status, JSON.stringify(late.body)).toBe(200);
    expect(late.body).toMatchObject({ credits: '2.76', event_id: auth.body.id, late: false });
    expect(await expireHolds(jobsCtx())).toEqual({ expired: 0 });
    expect(await balanceOf(org.id)).toMatchObject({ held_credits: '0', available_credits: '497.24' });
    expect(await eventCredits(org.id)).toEqual([{ id: auth.body.id, credits: '2760000' }]);
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it('a capture after the expiry job bills the rest of the call as an event of its own, once', async () => {
    const { org, key, auth } = await holdWithStreamed();
    await expireNow(auth.body.id);
    expect(await expireHolds(jobsCtx())).toEqual({ expired: 1 });
    const capture = () =>
      t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
        key,
        body: { usage: { output_tokens: 2_000 } },
      });
    const late = await capture();
    expect(late.status, JSON.stringify(late.body)).toBe(200);
    expect(late.body).toMatchObject({
      status: 'captured',
      credits: '2.76',
      event_id: `${auth.body.id}:late`,
      unbilled_credits: '0',
      late: true,
    });
    // Sent again: the same answer, nothing billed twice.
    expect((await capture()).body).toEqual(late.body);
    expect(await balanceOf(org.id)).toMatchObject({ held_credits: '0', available_credits: '497.24' });
    expect(await eventCredits(org.id)).toEqual([
      { id: auth.body.id, credits: '1380000' },
      { id: `${auth.body.id}:late`, credits: '1380000' },
    ]);
    const [rest] = await t.db.query<{ output_tokens: string }>(
      'SELECT output_tokens::text FROM events WHERE org_id = $1 AND id = $2',
      [org.id, `${auth.body.id}:late`],
    );
    expect(rest).toEqual({ output_tokens: '1000' });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it("refuses an event that reuses a hold's id, so the hold can still end and the call counts once", async () => {
    const { org, key, auth } = await holdWithStreamed();
    const other = await createOrgWithKey(t);
    const event = (id: string) => ({
      id,
      ...call,
      occurred_at: new Date().toISOString(),
      usage: { output_tokens: 1 },
    });
    const sent = await t.call('POST', '/v1/events', {
      key,
      body: {
        events: [event(auth.body.id), event(`${auth.body.id}:late`), event('auth_not_a_hold_of_ours')],
      },
    });
    expect(sent.status).toBe(200);
    expect(
      sent.body.results.map((r: { status: string; error: { code: string } | null }) => [
        r.status,
        r.error?.code,
      ]),
    ).toEqual([
      ['rejected', 'reserved_id'],
      ['rejected', 'reserved_id'],
      ['accepted', undefined],
    ]);
    // Another org's events may use the id: it names no authorization of theirs.
    const elsewhere = await t.call('POST', '/v1/events', {
      key: other.key,
      body: { events: [event(auth.body.id)] },
    });
    expect(elsewhere.body.results[0]).toMatchObject({ status: 'accepted' });
    await expireNow(auth.body.id);
    expect(await expireHolds(jobsCtx())).toEqual({ expired: 1 });
    // (Sorted here: how the random id compares with the other is the collation's choice.)
    expect((await eventCredits(org.id)).sort((a, b) => b.credits.length - a.credits.length)).toEqual([
      { id: auth.body.id, credits: '1380000' },
      { id: 'auth_not_a_hold_of_ours', credits: '1380' },
    ]);
    expect(await balanceOf(org.id)).toMatchObject({ held_credits: '0' });
  });

  it('a late capture whose rest counts no usage of its own still bills what the final count adds', async () => {
    // Streamed: 1 000 input tokens, all read from the cache (gpt-4o: 0.1725 credits here).
    const { org, key, auth } = await holdWithStreamed({
      report: { usage_total: { input_tokens: 1_000, cache_read_tokens: 1_000 } },
    });
    await expireNow(auth.body.id);
    expect(await expireHolds(jobsCtx())).toEqual({ expired: 1 });
    // The final count has the same 1 000 input tokens, none cached: 0.345 credits, twice as much.
    const late = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage: { input_tokens: 1_000 } },
    });
    expect(late.status, JSON.stringify(late.body)).toBe(200);
    expect(late.body).toMatchObject({ credits: '0.345', event_id: `${auth.body.id}:late`, late: true });
    expect(await eventCredits(org.id)).toEqual([
      { id: auth.body.id, credits: '172500' },
      { id: `${auth.body.id}:late`, credits: '172500' },
    ]);
    expect(await balanceOf(org.id)).toMatchObject({ held_credits: '0', available_credits: '499.655' });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it('a late capture of a BYOK call records the rest of its tokens, at no charge', async () => {
    const { org, key, auth } = await holdWithStreamed({
      orgOptions: { billing_mode: 'byok' },
      estimate: { input_tokens: 10, max_output_tokens: 1_000 },
      report: { usage: { output_tokens: 500 } },
    });
    await expireNow(auth.body.id);
    expect(await expireHolds(jobsCtx())).toEqual({ expired: 1 });
    const late = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage: { input_tokens: 10, output_tokens: 1_000 } },
    });
    expect(late.body).toMatchObject({ status: 'captured', event_id: `${auth.body.id}:late`, late: true });
    const events = await t.db.query(
      'SELECT id, input_tokens::text, output_tokens::text, credits::text FROM events WHERE org_id = $1 ORDER BY id',
      [org.id],
    );
    expect(events).toEqual([
      { id: auth.body.id, input_tokens: '0', output_tokens: '500', credits: '0' },
      { id: `${auth.body.id}:late`, input_tokens: '10', output_tokens: '500', credits: '0' },
    ]);
  });

  it('a late capture bills past the expired hold only as far as the monthly limit allows', async () => {
    const { org, key } = await createOrgWithKey(t);
    // EUR 0.03 a month = 3 credits: the hold gets 3 of the 4 asked for.
    await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      body: { alert_threshold: null, allowed_limit: '0.03' },
    });
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '4' } },
    });
    expect(auth.body).toMatchObject({ held_credits: '3' });
    await t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
      headers: freshIdempotencyKey(),
      key,
      body: { usage: { output_tokens: 1_000 } },
    });
    await expireNow(auth.body.id);
    expect(await expireHolds(jobsCtx())).toEqual({ expired: 1 });
    const late = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage: { output_tokens: 5_000 } },
    });
    // 5 000 tokens = 6.9 credits: 1.38 streamed, then 1.62 up to the limit; 3.9 refused by it.
    expect(late.status, JSON.stringify(late.body)).toBe(200);
    expect(late.body).toMatchObject({ credits: '3', unbilled_credits: '3.9', late: true });
    const limits = await t.call('GET', `/v1/orgs/${org.id}/limits`);
    expect(limits.body).toMatchObject({ spent: '0.03', held: '0' });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });
});

describe('holds: the captured event', () => {
  it('keeps the parts of a count with their whole when the final count and the streamed one differ', async () => {
    const { org, key } = await createOrgWithKey(t);
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '5' } },
    });
    await t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
      headers: freshIdempotencyKey(),
      key,
      body: { usage: { input_tokens: 1_000, cache_write_tokens: 1_000 } },
    });
    const res = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage: { input_tokens: 1_000, cache_read_tokens: 1_000, output_tokens: 10 } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    // The input with its parts as the capture counted them (not reads and writes of 2 000 among
    // 1 000), the output as reported; the 0.345 credits streamed stay billed.
    const [event] = await t.db.query(
      `SELECT input_tokens::text, cache_read_tokens::text, cache_write_tokens::text, output_tokens::text,
              credits::text FROM events WHERE org_id = $1`,
      [org.id],
    );
    expect(event).toEqual({
      input_tokens: '1000',
      cache_read_tokens: '1000',
      cache_write_tokens: '0',
      output_tokens: '10',
      credits: '345000',
    });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it('is dated when the call began, in the period its hold counted it', async () => {
    const { org, key } = await createOrgWithKey(t);
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '5' } },
    });
    await new Promise((r) => setTimeout(r, 1_100));
    // As another Tally process would: the hold read from the database, not the copy kept here.
    forgetAuthorization(auth.body.id);
    const capturedAt = Date.now();
    await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage: { output_tokens: 10 } },
    });
    const [row] = await t.db.query<{ occurred_at: Date; created_at: Date }>(
      `SELECT e.occurred_at, a.created_at FROM events e JOIN authorizations a ON a.org_id = e.org_id AND a.id = e.id
        WHERE e.org_id = $1`,
      [org.id],
    );
    expect(row!.occurred_at.getTime()).toBeLessThan(capturedAt - 1_000);
    expect(Math.abs(row!.occurred_at.getTime() - row!.created_at.getTime())).toBeLessThan(500);
  });

  it('never takes back what the stream reported: a final count below it is read as the streamed one', async () => {
    const { org, key } = await createOrgWithKey(t);
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '5' } },
    });
    await t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
      headers: freshIdempotencyKey(),
      key,
      body: { usage: { output_tokens: 1_000 } },
    });
    const res = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage: { input_tokens: 1_000, output_tokens: 0 } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ credits: '1.725', unbilled_credits: '0' });
    const [event] = await t.db.query(
      'SELECT input_tokens::text, output_tokens::text, credits::text FROM events WHERE org_id = $1',
      [org.id],
    );
    expect(event).toEqual({ input_tokens: '1000', output_tokens: '1000', credits: '1725000' });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it('is fingerprinted as recorded, so resending it answers duplicate', async () => {
    const { key } = await createOrgWithKey(t);
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '5' } },
    });
    const usage = { input_tokens: 100, output_tokens: 50 };
    await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage, event_id: 'cap-1' },
    });
    const [row] = await t.db.query<{ occurred_at: Date }>('SELECT occurred_at FROM events WHERE id = $1', [
      'cap-1',
    ]);
    const resent = await t.call('POST', '/v1/events', {
      key,
      body: {
        events: [
          {
            id: 'cap-1',
            ...call,
            occurred_at: row!.occurred_at.toISOString(),
            usage,
            metadata: { authorization_id: auth.body.id },
          },
        ],
      },
    });
    expect(resent.body.results[0]).toMatchObject({ status: 'duplicate', credits: '0.1035' });
  });

  it('refuses an event id recorded before and writes nothing, then captures under a new id', async () => {
    const { org, key } = await createOrgWithKey(t);
    const usage = { input_tokens: 1_000, output_tokens: 1_000 };
    const ingested = await t.call('POST', '/v1/events', {
      key,
      body: { events: [{ id: 'taken-1', ...call, occurred_at: new Date().toISOString(), usage }] },
    });
    expect(ingested.body.results[0].status).toBe('accepted');
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '5' } },
    });
    const before = await balanceOf(org.id);
    const rollups = () =>
      t.db.query<{ kind: string; calls: string; credits: string }>(
        `SELECT 'hourly' AS kind, sum(calls)::text AS calls, sum(credits)::text AS credits
           FROM usage_hourly WHERE org_id = $1
         UNION ALL SELECT 'total', sum(calls)::text, sum(credits)::text FROM usage_hourly_total WHERE org_id = $1
         UNION ALL SELECT 'daily', sum(calls)::text, sum(credits)::text
           FROM usage_daily_dim WHERE org_id = $1 AND dimension = 'all'`,
        [org.id],
      );
    const rolledUpBefore = await rollups();

    const refused = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage, event_id: 'taken-1' },
    });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'event_id_taken', param: 'event_id' });
    expect(await balanceOf(org.id)).toEqual(before);
    expect(await rollups()).toEqual(rolledUpBefore);

    const captured = await t.call('POST', `/v1/authorizations/${auth.body.id}/capture`, {
      key,
      body: { usage, event_id: 'taken-2' },
    });
    expect(captured.status).toBe(200);
    // Each rollup counts the two events exactly once.
    const [stored] = await t.db.query<{ calls: string; credits: string }>(
      'SELECT count(*)::text AS calls, sum(credits)::text AS credits FROM events WHERE org_id = $1',
      [org.id],
    );
    expect(stored).toEqual({ calls: '2', credits: expect.any(String) });
    expect(await rollups()).toEqual(
      ['hourly', 'total', 'daily'].map((kind) => ({ kind, calls: '2', credits: stored!.credits })),
    );
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });
});
