/**
 * Holds of one org wait their turn in the process (HOLDS_IN_FLIGHT_PER_ORG in Postgres at once),
 * and the org's terms are checked against tally_spend_version under the lock: many holds sent at
 * once are each answered exactly, a hold that fails gives its turn back, and a limit changed
 * behind this process's back (as another Tally process would) binds the very next hold.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOLDS_IN_FLIGHT_PER_ORG } from '../src/services/authorizations/holdBatches.ts';
import { createOrgWithKey, startTally, type TestTally } from './support/harness.ts';
import { holdStatements } from './support/holdStatements.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

const call = { member: 'u1', feature: 'Chat', provider: 'openai', model: 'gpt-4o' };

describe('holds of one org sent at once', () => {
  it('are each answered, and together never hold more than the credits', async () => {
    const { org, key } = await createOrgWithKey(t);
    const before = (await t.call('GET', `/v1/orgs/${org.id}/balance`)).body;
    expect(before.available_credits).toBe('500');
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        t.call('POST', '/v1/authorizations', {
          key,
          body: { ...call, member: `m${i % 7}`, estimate: { credits: '20' } },
        }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    const approved = answers.filter((a) => a.body.approved);
    expect(approved).toHaveLength(25);
    expect(approved.every((a) => a.body.held_credits === '20' && a.body.reason === null)).toBe(true);
    expect(answers.filter((a) => !a.body.approved).map((a) => a.body.reason)).toEqual(
      Array.from({ length: 15 }, () => 'insufficient_credits'),
    );
    const after = (await t.call('GET', `/v1/orgs/${org.id}/balance`)).body;
    expect(after).toMatchObject({ held_credits: '500', available_credits: '0' });
  });

  it('go to Postgres together: holds queued behind the ones in flight share one statement', async () => {
    const { org, key } = await createOrgWithKey(t);
    const { statements, result: answers } = await holdStatements(t.db, () =>
      Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          t.call('POST', '/v1/authorizations', {
            key,
            body: { ...call, member: `b${i % 5}`, estimate: { credits: String(i + 1) } },
          }),
        ),
      ),
    );
    // 1 + 2 + ... + 30 = 465 credits of 500: every hold fits, each holds its own estimate.
    expect(answers.map((a) => [a.body.approved, a.body.held_credits])).toEqual(
      answers.map((_, i) => [true, String(i + 1)]),
    );
    expect(statements).toContain('batch');
    expect(statements.length).toBeLessThan(30);
    const balance = (await t.call('GET', `/v1/orgs/${org.id}/balance`)).body;
    expect(balance).toMatchObject({ held_credits: '465', available_credits: '35' });
    const [members] = await t.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM members WHERE org_id = $1 AND external_id LIKE 'b%'",
      [org.id],
    );
    expect(members!.n).toBe(5);
  });

  it('a hold that fails with an error gives its turn back', async () => {
    const { key } = await createOrgWithKey(t);
    const failing = await Promise.all(
      Array.from({ length: HOLDS_IN_FLIGHT_PER_ORG * 3 }, () =>
        t.call('POST', '/v1/authorizations', {
          key,
          body: { ...call, model: 'no-such-model', estimate: { input_tokens: 1, max_output_tokens: 1 } },
        }),
      ),
    );
    expect(failing.map((a) => a.status)).toEqual(failing.map(() => 422));
    const next = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '1' } },
    });
    expect(next.status).toBe(200);
    expect(next.body).toMatchObject({ approved: true, held_credits: '1' });
  });
});

describe('holds and the org terms kept in the process', () => {
  it('a limit lowered by another process binds the next hold', async () => {
    const { org, key } = await createOrgWithKey(t);
    // EUR 100 = 10 000 credits: the credits bind first.
    const set = await t.call('PUT', `/v1/orgs/${org.id}/limits`, {
      key,
      body: { alert_threshold: null, allowed_limit: '100.00' },
    });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    const first = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '1' } },
    });
    expect(first.body).toMatchObject({ approved: true, held_credits: '1', available_credits: '499' });
    // Another Tally process lowers it to EUR 0.05 = 5 credits: this one learns it under the lock.
    await t.db.query('UPDATE org_limits SET allowed_limit = 0.05 WHERE org_id = $1', [org.id]);
    const second = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '10' } },
    });
    expect(second.body).toMatchObject({
      approved: true,
      reason: 'partial',
      held_credits: '4',
      available_credits: '0',
    });
    const third = await t.call('POST', '/v1/authorizations', {
      key,
      body: { ...call, estimate: { credits: '1' } },
    });
    expect(third.body).toMatchObject({ approved: false, reason: 'quota_exceeded', held_credits: '0' });
  });
});
