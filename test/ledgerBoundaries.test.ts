/**
 * Boundaries of the ledger the model test reaches only by moving time itself: what the balance
 * says between a grant's expiry and the next job or charge.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLedger } from '../src/services/ledger/checkLedger.ts';
import { createOrgWithKey, freshIdempotencyKey, startTally, type TestTally } from './support/harness.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t?.close());

describe('ledger boundaries', () => {
  it('a grant past its expiry is no longer counted as available, before any job runs', async () => {
    const { org, key } = await createOrgWithKey(t);
    const promo = await t.call('POST', `/v1/orgs/${org.id}/grants`, {
      body: {
        kind: 'promo',
        amount_credits: '100',
        expires_at: new Date(Date.now() + 3_600_000).toISOString(),
      },
    });
    expect(promo.status).toBe(201);
    expect((await t.call('GET', `/v1/orgs/${org.id}/balance`, { key })).body.available_credits).toBe('600');
    // The expiry instant passes; no job has run yet and no charge has touched the org.
    await t.db.query(
      "UPDATE grants SET expires_at = now() - interval '1 second' WHERE org_id = $1 AND id = $2",
      [org.id, promo.body.id],
    );
    const balance = await t.call('GET', `/v1/orgs/${org.id}/balance`, { key });
    expect(balance.body).toMatchObject({
      available_credits: '500',
      remaining_credits: '500',
      expired_credits: '100',
      by_kind: { promo: { remaining_credits: '0' } },
      bonus: { remaining_credits: '0' },
    });
    const grant = await t.call('GET', `/v1/orgs/${org.id}/grants?status=expired`, { key });
    expect(grant.body.data.map((g: any) => [g.id, g.expired_credits])).toEqual([[promo.body.id, '100']]);
    expect(await checkLedger(t.db, org.id)).toEqual([]);
  });

  it('the ledger check names every kept figure that no longer re-derives (grant, org, hold, call)', async () => {
    const { org, key } = await createOrgWithKey(t);
    const auth = await t.call('POST', '/v1/authorizations', {
      key,
      body: {
        member: 'u1',
        feature: 'Chat',
        provider: 'openai',
        model: 'gpt-4o',
        estimate: { credits: '10' },
      },
    });
    expect(auth.body.approved).toBe(true);
    await t.call('POST', `/v1/authorizations/${auth.body.id}/increments`, {
      headers: freshIdempotencyKey(),
      key,
      body: { usage: { output_tokens: 1_000 } },
    });
    expect(await checkLedger(t.db, org.id)).toEqual([]);
    // Tamper with the kept figures behind the ledger's back (the row CHECKs still hold).
    const [plan] = await t.db.query<{ id: string }>(
      "SELECT id FROM grants WHERE org_id = $1 AND kind = 'plan'",
      [org.id],
    );
    await t.db.query(
      'UPDATE grants SET consumed = consumed + 1, remaining = remaining - 1 WHERE org_id = $1 AND id = $2',
      [org.id, plan!.id],
    );
    await t.db.query('UPDATE org_balances SET overage = overage + 7 WHERE org_id = $1', [org.id]);
    await t.db.query(
      'UPDATE authorizations SET held = held - 2, charged = charged + 3 WHERE org_id = $1 AND id = $2',
      [org.id, auth.body.id],
    );
    const found = (await checkLedger(t.db, org.id)).map((d) => [d.grant_id, d.field, d.kept, d.derived]);
    expect(found.sort()).toEqual(
      [
        [plan!.id, 'consumed', '1380001', '1380000'],
        [plan!.id, 'remaining', '498619999', '498620000'],
        [null, 'overage', '7', '0'],
        [null, `held by ${auth.body.id}`, '8619998', '8620000'],
        [null, `charged by ${auth.body.id}`, '1380003', '1380000'],
      ].sort(),
    );
  });
});
