/**
 * `npm run test:fuzz`: generated requests (fast-check, fixed seed) for every operation of
 * /openapi.json, sent one at a time, most in process through the app's fetch handler and every
 * 20th over real HTTP. For each answer: never a 5xx; an error is problem+json with its status in
 * the body; a refused request committed no write. At the end the heap, after a collection, is
 * within a ceiling of the heap after the warm-up.
 *
 * The run is split into shards (test/fuzz/api-*-of-*.fuzz.ts), one process and one database each,
 * so that it uses every core: batch n of the generated requests goes to shard n mod shards, and
 * with at least one whole batch per shard the shards together send exactly the requests one process
 * would. A smaller run is cut into smaller batches, so that every shard sends some; those requests
 * differ from a single process's.
 *
 * TALLY_FUZZ_REQUESTS (default 100 000, over all shards) sets the count, TALLY_FUZZ_SEED the seed.
 */
import { request as httpRequest } from 'node:http';
import { serve } from '@hono/node-server';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ProblemSchema } from '../../src/http/schemas.ts';
import {
  createOrgWithKey,
  minutesAgo,
  OPERATOR_KEY,
  startTally,
  type TestTally,
} from '../support/harness.ts';
import { committedSince, nextXid, rowsWrittenBy, tableFingerprint } from '../support/writes.ts';
import {
  type FuzzRequest,
  type FuzzWorld,
  type OpenApiDoc,
  operations,
  requestArbitrary,
} from './requests.ts';

const REQUESTS = Number(process.env.TALLY_FUZZ_REQUESTS ?? 100_000);
const SEED = Number(process.env.TALLY_FUZZ_SEED ?? 20_261_123);
const BATCH = 500;
/** Requests per operation from which a shard must have reached every operation. */
const COVERED_AFTER = 50;
const HTTP_EVERY = 20;
/** Refused requests also checked against a full fingerprint of every table (the slow, exact way). */
const FINGERPRINTED = 300;
/** How much the heap may grow between the warm-up and the end (metrics by route and caches level off). */
const HEAP_CEILING_MIB = 32;
const CLOSED_UPSTREAM = 'http://127.0.0.1:9';

let t: TestTally;
let http: { url: string; close: () => Promise<void> };
let doc: OpenApiDoc;
let world: FuzzWorld;
const serverErrors = new Map<string, string>();

function listen(tally: TestTally): Promise<{ url: string; close: () => Promise<void> }> {
  return new Promise((resolve) => {
    const server = serve({ fetch: tally.app.fetch, port: 0, hostname: '127.0.0.1' }, (info) =>
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      }),
    );
  });
}

/** Two orgs with records of every kind, whose ids the generated paths use. */
async function buildWorld(tally: TestTally): Promise<FuzzWorld> {
  const own = await createOrgWithKey(tally, { name: 'Fuzz Org' });
  const other = await createOrgWithKey(tally, { name: 'Other Org', currency: 'USD' });
  const orgPath = `/v1/orgs/${own.org.id}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await tally.call(method, path, { key: own.key, ...(body ? { body } : {}) });
    if (res.status >= 300) throw new Error(`${method} ${path}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const alice = await call('POST', `${orgPath}/members`, {
    external_id: 'alice',
    name: 'Alice',
    email: 'a@x.dev',
  });
  const bob = await call('POST', `${orgPath}/members`, { external_id: 'bob' });
  const spareKey = await tally.call('POST', `${orgPath}/api_keys`, { body: { name: 'spare' } });
  await call('POST', `${orgPath}/workspaces`, { external_id: 'ws-1', name: 'Workspace' });
  await call('POST', '/v1/events', {
    events: [1, 2, 3].map((n) => ({
      id: `seed-${n}`,
      member: n === 3 ? 'bob' : 'alice',
      feature: 'Chat',
      provider: 'openai',
      model: 'gpt-4o',
      occurred_at: minutesAgo(n * 60),
      workspace: 'ws-1',
      conversation_id: 'conv-1',
      usage: { input_tokens: 1000, output_tokens: 200 },
    })),
  });
  const grant = await tally.call('POST', `${orgPath}/grants`, {
    body: { kind: 'bonus', amount_credits: '500' },
  });
  const budget = await call('POST', `${orgPath}/budgets`, {
    name: 'Alice',
    scope: { kind: 'member', id: alice.id },
    amount: '100',
  });
  const holds = [];
  for (const ttl_seconds of [600, 3600]) {
    holds.push(
      await call('POST', '/v1/authorizations', {
        member: 'alice',
        feature: 'Chat',
        provider: 'openai',
        model: 'gpt-4o',
        estimate: { credits: '1' },
        ttl_seconds,
      }),
    );
  }
  const endpoint = await call('POST', `${orgPath}/webhook_endpoints`, { url: 'https://example.com/hook' });
  const checkout = await call('POST', `${orgPath}/checkout_sessions`, { amount: '10' });
  const session = new URL(checkout.url).pathname.split('/').pop()!;
  const deliveries = await call('GET', `${orgPath}/webhook_endpoints/${endpoint.id}/deliveries`);
  const today = new Date().toISOString().slice(0, 10);
  const pick = <T>(...values: T[]) => fc.constantFrom(...values);
  return {
    ids: {
      org: [own.org.id, other.org.id],
      member: [alice.id, bob.id],
      key: [spareKey.body.id],
      grant: [grant.body.id],
      budget: [budget.id],
      id: holds.map((h) => h.id),
      endpoint: [endpoint.id],
      delivery: deliveries.data.map((d: { id: string }) => d.id),
      payment: [checkout.id],
      session: [session],
      date: [today, '2026-01-01'],
      conversation: ['conv-1'],
      currency: ['EUR', 'USD'],
    },
    keys: { operator: OPERATOR_KEY, org: own.key, otherOrg: other.key },
    hints: {
      org_id: pick(own.org.id, other.org.id),
      member: pick('alice', 'bob', alice.id),
      external_id: pick('alice', 'carol', 'dave'),
      provider: pick('openai', 'anthropic'),
      model: pick('gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4-5'),
      feature: pick('Chat', 'Search'),
      occurred_at: fc.integer({ min: 0, max: 60 * 24 * 40 }).map(minutesAgo),
      currency: pick('EUR', 'USD'),
      timezone: pick('UTC', 'Europe/Berlin', 'Asia/Kolkata'),
      url: pick('https://example.com/hook', 'http://127.0.0.1:1/hook'),
      amount: pick('10', '50', '1.5'),
      amount_credits: pick('5', '100.25'),
      expires_at: fc
        .integer({ min: 1, max: 90 })
        .map((d) => new Date(Date.now() + d * 86_400_000).toISOString()),
      from: pick(today, '2026-01-01', minutesAgo(600)),
      to: pick(today, minutesAgo(1)),
      month: pick(today.slice(0, 7)),
      year: pick(today.slice(0, 4)),
      api_key: pick(own.keyId),
    },
  };
}

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

async function send(req: FuzzRequest, overHttp: boolean): Promise<Answer> {
  const init = {
    method: req.method,
    headers: req.headers,
    ...(req.body !== undefined ? { body: req.body } : {}),
  };
  let res: Response;
  try {
    res = overHttp ? await overSocket(req) : await t.app.request(req.path, init);
  } catch (e) {
    // No answer at all (a connection the server cut): a fault like a 5xx, reported with the request.
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? String(e);
    return { status: 599, contentType: '', text: `no answer: ${cause}` };
  }
  const contentType = res.headers.get('content-type') ?? '';
  // A live stream (server-sent events) stays open for a minute: its status and type are the answer.
  if (contentType.startsWith('text/event-stream')) {
    await res.body?.cancel();
    return { status: res.status, contentType, text: '' };
  }
  return { status: res.status, contentType, text: await res.text() };
}

/**
 * One request on a connection of its own (no keep-alive: a reused socket the server had just
 * closed would read as a reset the server did not cause).
 */
function overSocket(req: FuzzRequest): Promise<Response> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      `${http.url}${req.path}`,
      {
        method: req.method,
        // Node sends a DELETE body unframed unless told its length.
        headers: {
          ...req.headers,
          ...(req.body !== undefined ? { 'content-length': Buffer.byteLength(req.body) } : {}),
        },
        agent: false,
      },
      (incoming) => {
        if (String(incoming.headers['content-type'] ?? '').startsWith('text/event-stream')) {
          resolve(
            new Response(null, {
              status: incoming.statusCode ?? 0,
              headers: { 'content-type': 'text/event-stream' },
            }),
          );
          incoming.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
        incoming.on('error', reject);
        incoming.on('end', () => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(incoming.headers)) {
            if (typeof value === 'string') headers.set(name, value);
          }
          const status = incoming.statusCode ?? 0;
          const body = [204, 304].includes(status) ? null : Buffer.concat(chunks);
          resolve(new Response(body, { status, headers }));
        });
      },
    );
    outgoing.on('error', (e) => reject(Object.assign(new Error('no answer'), { cause: e })));
    outgoing.end(req.body);
  });
}

/** What is wrong with an answer, or null. */
/** What the server logged for the request of this answer (a 500's cause), or ''. */
function loggedError(answer: Answer): string {
  const requestId = /"request_id":"([^"]+)"/.exec(answer.text)?.[1] ?? '';
  return serverErrors.get(requestId) ?? '';
}

function fault(req: FuzzRequest, answer: Answer, wrote: Record<string, number>): string | null {
  if (req.path.startsWith('/gateway/')) return gatewayFault(req, answer) ?? writeFault(answer, wrote);
  if (answer.status >= 500 && !configurationAnswer(req, answer)) {
    return `status ${answer.status}: ${loggedError(answer) || answer.text.slice(0, 300)}`;
  }
  if (answer.status < 400) return null;
  if (!/^application\/problem\+json/.test(answer.contentType)) return `error as ${answer.contentType}`;
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    return `error body is not JSON: ${answer.text.slice(0, 200)}`;
  }
  const parsed = ProblemSchema.safeParse(body);
  if (!parsed.success) return `error body is not a problem: ${answer.text.slice(0, 200)}`;
  if (parsed.data.status !== answer.status)
    return `problem status ${parsed.data.status} in a ${answer.status}`;
  return writeFault(answer, wrote);
}

function writeFault(answer: Answer, wrote: Record<string, number>): string | null {
  if (answer.status < 400) return null;
  if (Object.keys(wrote).length > 0)
    return `refused with ${answer.status} yet wrote rows (table: count, -1 a change the fingerprint saw) ${JSON.stringify(wrote)}`;
  return null;
}

/**
 * Faults found by this run in code the fuzzer's author does not own, reported to its owner: each is
 * counted and printed, never silently passed. Remove an entry once its fault is fixed.
 */
const KNOWN_FAULTS: {
  name: string;
  matches: (req: FuzzRequest, answer: Answer, wrote: Record<string, number>) => boolean;
}[] = [];

/**
 * The gateway answers in each provider's own format (`{error: {type, message}}`, for Anthropic
 * inside `{type: "error"}`), not problem+json; its 502 is the proxy's answer for the upstream
 * this run cannot reach.
 */
function gatewayFault(req: FuzzRequest, answer: Answer): string | null {
  if (answer.status < 400) return null;
  if (answer.status >= 500 && answer.status !== 502)
    return `status ${answer.status}: ${answer.text.slice(0, 300)}`;
  let body: { type?: unknown; error?: { type?: unknown; message?: unknown } };
  try {
    body = JSON.parse(answer.text);
  } catch {
    return `gateway error body is not JSON: ${answer.text.slice(0, 200)}`;
  }
  const shaped = typeof body.error?.type === 'string' && typeof body.error?.message === 'string';
  const anthropic = req.path.startsWith('/gateway/anthropic/');
  if (!shaped || (anthropic && body.type !== 'error'))
    return `gateway error not in the provider's format: ${answer.text.slice(0, 200)}`;
  return null;
}

/**
 * The one 5xx that is an answer, not a fault: Stripe's webhook while STRIPE_WEBHOOK_SECRET is unset
 * (the local provider serves this run) answers 503 so that Stripe retries until it is configured.
 */
function configurationAnswer(req: FuzzRequest, answer: Answer): boolean {
  return (
    answer.status === 503 &&
    req.path.startsWith('/v1/webhooks/stripe') &&
    answer.text.includes('"stripe_not_configured"')
  );
}

function heapMiB(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc (vitest.fuzz.config.ts does)');
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

/** Tally on a database of its own, reached in process and over HTTP, with the world the requests name. */
function startWorld() {
  beforeAll(async () => {
    // The gateway's upstreams point at a closed local port: no generated request leaves the machine.
    t = await startTally({
      TALLY_UPSTREAM_OPENAI_URL: CLOSED_UPSTREAM,
      TALLY_UPSTREAM_ANTHROPIC_URL: CLOSED_UPSTREAM,
      OPENAI_API_KEY: 'sk-fuzz',
      ANTHROPIC_API_KEY: 'sk-ant-fuzz',
    });
    http = await listen(t);
    doc = (await t.call('GET', '/openapi.json', { key: '' })).body;
    world = await buildWorld(t);
    // What the server logs about a 500 goes into the failure report.
    t.logger.error = (fields) => {
      if (typeof fields.request_id === 'string')
        serverErrors.set(fields.request_id, String(fields.error).slice(0, 300));
    };
  });
  afterAll(async () => {
    await http?.close();
    await t?.close();
  });
}

/** Registers this file's shard of the run: the batches numbered `index` modulo `of`. */
export function fuzzApiShard(index: number, of: number) {
  const size = Math.min(BATCH, Math.ceil(REQUESTS / of));
  const batches = Array.from({ length: Math.ceil(REQUESTS / size) }, (_, n) => n).filter(
    (n) => n % of === index,
  );
  const mine = batches.reduce((sum, n) => sum + Math.min(size, REQUESTS - n * size), 0);
  startWorld();
  it(
    `answers its ${mine} of ${REQUESTS} generated requests (shard ${index + 1} of ${of}) without a 5xx, with problem+json errors and no write when refused`,
    () => fuzz(batches, size, Math.min(5_000, Math.floor(mine / 10))),
    3_600_000,
  );
}

async function fuzz(batches: number[], size: number, warmUp: number) {
  const started = performance.now();
  const arbitrary = requestArbitrary(doc, world);
  const failures: string[] = [];
  const statuses = new Map<number, number>();
  const covered = new Set<string>();
  let sent = 0;
  let refused = 0;
  /** Requests meant to be valid (by the schema), and how many of those were taken. */
  const meantValid = { sent: 0, taken: 0 };
  let fingerprinted = 0;
  /** Refused requests whose only committed transactions locked rows (SELECT ... FOR UPDATE). */
  let locksOnly = 0;
  const knownSeen = new Map<string, number>();
  let warmHeap = 0;
  for (const batch of batches) {
    const first = batch * size;
    const requests = fc.sample(arbitrary, { seed: SEED + batch, numRuns: Math.min(size, REQUESTS - first) });
    for (const [n, req] of requests.entries()) {
      const overHttp = (first + n) % HTTP_EVERY === HTTP_EVERY - 1;
      const exact = fingerprinted < FINGERPRINTED && req.method !== 'GET';
      const before = exact ? await tableFingerprint(t.db) : null;
      const xid = await nextXid(t.db);
      const answer = await send(req, overHttp);
      const refusedNow = answer.status >= 400;
      const committed = refusedNow ? await committedSince(t.db, xid) : [];
      const wrote = committed.length > 0 ? await rowsWrittenBy(t.db, committed) : {};
      if (committed.length > 0) locksOnly += Object.keys(wrote).length === 0 ? 1 : 0;
      if (refusedNow && before) {
        fingerprinted++;
        const after = await tableFingerprint(t.db);
        // Deletes too show here (the transaction-id check sees inserts and updates only).
        for (const table of Object.keys(after)) if (after[table] !== before[table]) wrote[table] ??= -1;
      }
      const known = KNOWN_FAULTS.find((k) => k.matches(req, answer, wrote));
      if (known) knownSeen.set(known.name, (knownSeen.get(known.name) ?? 0) + 1);
      const problemFound = known ? null : fault(req, answer, wrote);
      if (problemFound && failures.length < 50) {
        failures.push(
          `${problemFound}\n    ${req.method} ${req.path} ${JSON.stringify(req.headers)} ${req.body?.slice(0, 500) ?? ''}`,
        );
      }
      if (refusedNow) refused++;
      if (req.kind === 'valid') {
        meantValid.sent++;
        if (!refusedNow) meantValid.taken++;
      }
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      covered.add(`${req.method} ${routeOf(req.path)}`);
      sent++;
      if (sent === warmUp) warmHeap = heapMiB();
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const endHeap = heapMiB();
  const byStatus = [...statuses.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${s}:${n}`);
  console.log(
    `fuzz: ${sent} requests (seed ${SEED}, ${Math.ceil(sent / HTTP_EVERY)} over HTTP) in ${seconds.toFixed(1)} s` +
      ` (${Math.round(sent / seconds)}/s); refused ${refused} (${fingerprinted} also fingerprinted, ${locksOnly} only locked rows);` +
      ` ${meantValid.taken} of ${meantValid.sent} schema-valid requests taken; statuses ${byStatus.join(' ')};` +
      ` heap ${warmHeap.toFixed(1)} MiB after warm-up, ${endHeap.toFixed(1)} MiB at the end;` +
      ` rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`,
  );
  for (const [name, n] of knownSeen) console.log(`fuzz: known fault seen ${n} times: ${name}`);
  expect(failures).toEqual([]);
  expect(fingerprinted).toBeGreaterThan(0);
  expect(endHeap - warmHeap).toBeLessThan(HEAP_CEILING_MIB);
  // Every operation was reached, in a run big enough to expect it (a quick run of a few hundred
  // requests reaches most, by chance).
  const templates = operations(doc).map(({ method, template }) => `${method} ${template}`);
  const missed = templates.filter((op) => !covered.has(op));
  if (sent >= templates.length * COVERED_AFTER) expect(missed).toEqual([]);
  else
    console.log(`fuzz: ${sent} requests, too few to require every operation; ${missed.length} not reached`);
}

/** The operation template a generated path came from, to count coverage. */
function routeOf(path: string): string {
  templatePatterns ??= operations(doc).map(({ template }) => ({
    template,
    pattern: new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+').replace(/\./g, '\\.')}$`),
  }));
  const bare = path.split('?')[0]!;
  return templatePatterns.find(({ pattern }) => pattern.test(bare))?.template ?? bare;
}
let templatePatterns: { template: string; pattern: RegExp }[] | undefined;
