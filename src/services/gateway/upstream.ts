/** Where a gateway call goes: the org's own provider account when it set one, else the operator's. */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Config } from '../../config.ts';
import type { Queryable } from '../../store/db.ts';
import { ServiceError } from '../errors.ts';
import { KEY_KEPT_MS } from '../keys/authenticate.ts';
import { open } from './secretBox.ts';
import type { ProviderName } from './wire.ts';

export interface Upstream {
  baseUrl: string;
  key: string | null;
}

export function operatorUpstream(config: Config, provider: ProviderName): Upstream {
  return provider === 'openai'
    ? { baseUrl: config.TALLY_UPSTREAM_OPENAI_URL, key: config.OPENAI_API_KEY ?? null }
    : { baseUrl: config.TALLY_UPSTREAM_ANTHROPIC_URL, key: config.ANTHROPIC_API_KEY ?? null };
}

interface OwnUpstream {
  base_url: string | null;
  api_key_encrypted: string;
}

/**
 * An org's own upstream setting (or its absence) as this process read it lately, kept as long as
 * API keys are (KEY_KEPT_MS): every gateway call needs it, and it changes rarely. The read itself
 * is kept, so calls arriving while it runs share it (under load a read can wait for a pool
 * connection for a long while, and every call meanwhile would read again). A change made through
 * this process applies at once (`forgetUpstream`); through another Tally process, within that
 * time. Kept sealed; the operator's fallback is read from the config on every call.
 */
const MAX_KEPT = 10_000;
const kept = new Map<string, { own: Promise<OwnUpstream | null>; until: number }>();

/** Call once an org's upstream is set or deleted, so this process uses the new setting at once. */
export function forgetUpstream(orgId: string, provider: ProviderName): void {
  kept.delete(`${orgId}:${provider}`);
}

function ownUpstream(db: Queryable, orgId: string, provider: ProviderName): Promise<OwnUpstream | null> {
  const key = `${orgId}:${provider}`;
  const now = Date.now();
  const entry = kept.get(key);
  if (entry && entry.until > now) return entry.own;
  const own = db
    .query<OwnUpstream>(
      'SELECT base_url, api_key_encrypted FROM gateway_upstreams WHERE org_id = $1 AND provider = $2',
      [orgId, provider],
    )
    .then(([row]) => row ?? null);
  const read = { own, until: now + KEY_KEPT_MS };
  if (kept.size >= MAX_KEPT) kept.clear();
  kept.set(key, read);
  // A failed read is not kept: the next call reads again.
  own.catch(() => {
    if (kept.get(key) === read) kept.delete(key);
  });
  return own;
}

export async function upstreamFor(
  db: Queryable,
  config: Config,
  orgId: string,
  provider: ProviderName,
): Promise<Upstream> {
  const own = await ownUpstream(db, orgId, provider);
  const fallback = operatorUpstream(config, provider);
  if (!own) return fallback;
  if (!config.TALLY_SECRET_KEY) {
    throw new ServiceError(
      503,
      'secret_key_missing',
      'The org has its own provider key but TALLY_SECRET_KEY is not set',
    );
  }
  return {
    baseUrl: own.base_url ?? fallback.baseUrl,
    key: open(own.api_key_encrypted, config.TALLY_SECRET_KEY),
  };
}

/** `https://api.openai.com` + `chat/completions` -> `https://api.openai.com/v1/chat/completions`. */
export function upstreamUrl(baseUrl: string, path: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/v1/${path}`;
}

/** A provider's answer, its body read as it arrives. */
export interface UpstreamAnswer {
  status: number;
  headers: Headers;
  body: AsyncIterable<Uint8Array>;
  text(): Promise<string>;
}

/**
 * Keep-alive connections to providers, shared by every call of this process. node:http rather than
 * fetch: under 200 open streams, fetch's web streams and its WebAssembly parser cost CPU on every
 * streamed chunk.
 */
const AGENTS = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
};

export function postUpstream(
  url: string,
  headers: Record<string, string>,
  body: string,
  signal: AbortSignal,
): Promise<UpstreamAnswer> {
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.request(
      target,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        agent: target.protocol === 'https:' ? AGENTS['https:'] : AGENTS['http:'],
      },
      (response) => {
        // Its reader sees a failure as it reads; one that comes before or after reading must not
        // be an unhandled 'error' event.
        response.on('error', () => {});
        resolve({
          status: response.statusCode ?? 502,
          headers: headersOf(response),
          body: response,
          text: () => textOf(response),
        });
      },
    );
    request.on('error', reject);
    // Aborting destroys the request (and the socket under the answer) without an error: given the
    // signal itself, Node destroyed it with an AbortError that, once the answer was being read,
    // reached its socket as an 'error' event no listener takes.
    const abort = () => request.destroy();
    if (signal.aborted) abort();
    else {
      signal.addEventListener('abort', abort, { once: true });
      request.on('close', () => signal.removeEventListener('abort', abort));
    }
    request.end(body);
  });
}

function headersOf(response: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(response.headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  return headers;
}

async function textOf(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
