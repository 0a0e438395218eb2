/** The operator key from TALLY_ADMIN_KEY, or generated when there is none: only the configured one works. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { prepare } from '../src/server.ts';
import { KEY_KEPT_MS } from '../src/services/keys/authenticate.ts';
import { ensureOperatorKey } from '../src/services/keys/ensureOperatorKey.ts';
import { OPERATOR_KEY, onServer, startTally, type TestTally } from './support/harness.ts';

let t: TestTally;
beforeAll(async () => {
  t = await startTally();
});
afterAll(() => t.close());

const orgsWith = (key: string) => t.call('GET', '/v1/orgs', { key });

describe('operator key', () => {
  it('taking TALLY_ADMIN_KEY out revokes its key and generates one; setting a new value replaces it', async () => {
    expect((await orgsWith(OPERATOR_KEY)).status).toBe(200);
    // The next start has no TALLY_ADMIN_KEY.
    const restarted = await prepare(loadConfig({ TALLY_LOG: 'off' }), t.db);
    const generated = restarted.generatedOperatorKey;
    expect(generated).toMatch(/^tally_op_/);
    await new Promise((r) => setTimeout(r, KEY_KEPT_MS + 100));
    const refused = await orgsWith(OPERATOR_KEY);
    expect(refused.status).toBe(401);
    expect((await orgsWith(generated!)).status).toBe(200);
    // Started again without it: the generated key stays, and none is generated twice.
    expect((await prepare(loadConfig({ TALLY_LOG: 'off' }), t.db)).generatedOperatorKey).toBeNull();
    // Set to a new value: the new key works, and the old value does not come back.
    const rotated = 'tally_op_rotated_operator_key_fedcba9876543210';
    await prepare(loadConfig({ TALLY_LOG: 'off', TALLY_ADMIN_KEY: rotated }), t.db);
    expect((await orgsWith(rotated)).status).toBe(200);
    expect((await orgsWith(OPERATOR_KEY)).status).toBe(401);
    // The generated key, printed to a terminal and the logs, stops working once a key is chosen.
    await new Promise((r) => setTimeout(r, KEY_KEPT_MS + 100));
    expect((await orgsWith(generated!)).status).toBe(401);
  });
});

describe.runIf(onServer)('operator key: processes starting at once on the server', () => {
  it('registers the configured key once, and every process starts', async () => {
    const key = 'tally_op_started_together_0123456789abcdef';
    // A first start: no row yet, so every process inserts it.
    await t.db.query(`DELETE FROM operator_keys WHERE id = 'op_env'`);
    const starts = await Promise.allSettled(Array.from({ length: 8 }, () => ensureOperatorKey(t.db, key)));
    expect(starts.map((s) => s.status)).toEqual(Array(8).fill('fulfilled'));
    const active = await t.db.query<{ id: string }>(
      'SELECT id FROM operator_keys WHERE revoked_at IS NULL ORDER BY id',
    );
    expect(active).toEqual([{ id: 'op_env' }]);
    expect((await orgsWith(key)).status).toBe(200);
  });
});
