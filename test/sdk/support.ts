/**
 * Real sockets for SDK tests: Tally served over HTTP, a fault-injecting proxy in front of it, and a
 * local model server answering in OpenAI's and Anthropic's streaming wire formats.
 */

import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { minutesAgo, type TestTally } from '../support/harness.ts';

/** Event `n` of the SDK tests: a gpt-4o call a minute ago, with `extra` fields over it. */
export const sdkEvent = (n: number, extra: Record<string, unknown> = {}) => ({
  id: `e${n}`,
  member: 'u1',
  feature: 'Chat',
  provider: 'openai',
  model: 'gpt-4o',
  occurred_at: minutesAgo(1),
  usage: { input_tokens: 1000, output_tokens: 100 },
  ...extra,
});

export interface Listening {
  url: string;
  close(): Promise<void>;
}

function listening(server: Server): Promise<Listening> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

export function serveTally(t: TestTally): Promise<Listening> {
  return listening(serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' }) as Server);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/**
 * What the proxy does with one request, in arrival order (requests past the plan pass through):
 * `pass` forwards; `drop` forwards, lets Tally act, then closes the client's connection without an
 * answer; `{status}` answers that status (and problem `code`, if given) itself without forwarding;
 * `{delayMs}` forwards after that long (a slow Tally).
 */
export type Fault =
  | 'pass'
  | 'drop'
  | { status: number; code?: string; headers?: Record<string, string> }
  | { delayMs: number };

export interface SeenRequest {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  body: any;
  at: number;
}

export interface FaultyProxy extends Listening {
  seen: SeenRequest[];
  /** While set, every request gets this fault and the plan waits: an outage as long as a test wants. */
  outage: Fault | undefined;
}

export async function startFaultyProxy(target: string, plan: Fault[] = []): Promise<FaultyProxy> {
  const seen: SeenRequest[] = [];
  let next = 0;
  let proxy: FaultyProxy | undefined;
  const server = createServer(async (req, res) => {
    const raw = await readBody(req);
    seen.push({
      method: req.method!,
      path: req.url!,
      idempotencyKey: req.headers['idempotency-key'] as string | undefined,
      body: raw.length ? JSON.parse(raw.toString()) : undefined,
      at: Date.now(),
    });
    const fault = proxy?.outage ?? plan[next++] ?? 'pass';
    if (typeof fault === 'object' && 'delayMs' in fault) {
      await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
    } else if (typeof fault === 'object') {
      res.writeHead(fault.status, { 'content-type': 'application/problem+json', ...fault.headers });
      const { status, code } = fault;
      res.end(JSON.stringify({ type: 'about:blank', title: 'Injected', status, code, detail: 'x' }));
      return;
    }
    const headers = Object.fromEntries(
      Object.entries(req.headers).filter(
        ([name]) => !['host', 'connection', 'content-length'].includes(name),
      ),
    ) as Record<string, string>;
    // Tally may be gone (a test stopped it, or ended while a background request was on its way):
    // answered as a proxy answers an unreachable upstream, never as an unhandled rejection.
    let answer: Response;
    let text: string;
    try {
      answer = await fetch(`${target}${req.url}`, {
        method: req.method,
        headers,
        body: raw.length ? raw : undefined,
      });
      text = await answer.text();
    } catch {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('upstream unreachable');
      return;
    }
    if (fault === 'drop') {
      req.socket.destroy();
      return;
    }
    res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' });
    res.end(text);
  });
  proxy = { ...(await listening(server)), seen, outage: undefined };
  return proxy;
}

/** A model server streaming SSE chunks; `clientHungUp` resolves when a client hangs up before the end. */
export interface ModelServer extends Listening {
  sent(): number;
  clientHungUp: Promise<void>;
}

export async function startModelServer(chunks: (body: any) => unknown[]): Promise<ModelServer> {
  let sent = 0;
  let hungUp: () => void = () => {};
  const clientHungUp = new Promise<void>((resolve) => {
    hungUp = resolve;
  });
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const body = JSON.parse((await readBody(req)).toString());
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let finished = false;
    res.on('close', () => {
      if (!finished) hungUp();
    });
    for (const chunk of chunks(body)) {
      if (res.destroyed) return;
      const event = (chunk as { type?: string }).type;
      const named = event && req.url?.includes('/messages') ? `event: ${event}\n` : '';
      sent++;
      // At a model's pace (and never faster than the client reads), so a client that stops
      // early hangs up before the whole answer was written.
      if (!res.write(`${named}data: ${JSON.stringify(chunk)}\n\n`)) {
        await Promise.race([once(res, 'drain'), once(res, 'close')]);
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    if (!req.url?.includes('/messages')) res.write('data: [DONE]\n\n');
    finished = true;
    res.end();
  });
  return { ...(await listening(server)), sent: () => sent, clientHungUp };
}
