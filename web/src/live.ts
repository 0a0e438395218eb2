/**
 * Live updates, pushed: the server tells the page when the org's usage, balance or limits changed
 * (server-sent events from GET /v1/orgs/{org}/usage/stream) and the page reloads what it shows.
 * Read with fetch, since EventSource cannot send the Authorization header. The stream ends every
 * minute or so and is opened again; each reconnection reloads once, for what happened in between.
 */
import { useEffect, useRef, useState } from 'react';
import { ApiError } from './api.ts';
import { useSession } from './sessionContext.tsx';

/** Waits between failed connections, doubling up to this. */
const MAX_BACKOFF_MS = 30_000;
/** A stream that ends sooner than this counts as a failure (no reconnecting in a tight loop). */
const SHORTEST_STREAM_MS = 5000;

/** The event names of a server-sent event stream, as they arrive. */
async function* eventNames(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.search(/\r?\n\r?\n/);
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
      const name = block.match(/^event: ?(.*)$/m)?.[1];
      if (name) yield name;
      end = buffer.search(/\r?\n\r?\n/);
    }
  }
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

/**
 * Calls `onChange` when the org's figures change, at most once per `throttleMs` (the last change is
 * never dropped) and only while the page is visible (a hidden page catches up when shown).
 * `startAfterMs` opens the stream later, so a page's first burst of API calls has all the browser's
 * connections to the server; `catchUpAtStart` reloads once the first stream is watching, for what
 * changed before.
 */
export function useOrgChanges(
  orgId: string,
  onChange: () => void,
  {
    throttleMs,
    startAfterMs = 0,
    catchUpAtStart,
  }: { throttleMs: number; startAfterMs?: number; catchUpAtStart: boolean },
): void {
  const { api } = useSession();
  const latest = useRef(onChange);
  latest.current = onChange;
  useEffect(() => {
    const controller = new AbortController();
    const { signal } = controller;
    let last = 0;
    let trailing: ReturnType<typeof setTimeout> | undefined;
    let missed = false;
    const run = () => {
      last = Date.now();
      latest.current();
    };
    const fire = () => {
      if (document.visibilityState !== 'visible') {
        missed = true;
        return;
      }
      const wait = last + throttleMs - Date.now();
      if (wait <= 0) run();
      else if (trailing === undefined) {
        trailing = setTimeout(() => {
          trailing = undefined;
          run();
        }, wait);
      }
    };
    const shown = () => {
      if (document.visibilityState === 'visible' && missed) {
        missed = false;
        fire();
      }
    };
    document.addEventListener('visibilitychange', shown);
    (async () => {
      let connections = 0;
      let failures = 0;
      await sleep(startAfterMs, signal);
      while (!signal.aborted) {
        const opened = Date.now();
        try {
          const res = await api.stream(`/v1/orgs/${orgId}/usage/stream`, signal);
          for await (const name of eventNames(res.body!)) {
            if (name === 'changed' || (name === 'ready' && (connections > 0 || catchUpAtStart))) fire();
            if (name === 'ready') connections += 1;
          }
          failures = Date.now() - opened < SHORTEST_STREAM_MS ? failures + 1 : 0;
        } catch (error) {
          if (signal.aborted) return;
          // Refused (credential expired, role, org gone): the page's own calls say why.
          if (error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429)
            return;
          failures += 1;
        }
        await sleep(failures === 0 ? 0 : Math.min(MAX_BACKOFF_MS, 1000 * 2 ** failures), signal);
      }
    })();
    return () => {
      controller.abort();
      clearTimeout(trailing);
      document.removeEventListener('visibilitychange', shown);
    };
  }, [api, orgId, throttleMs, startAfterMs, catchUpAtStart]);
}

/**
 * A list the reader pages through (Load more, Show more) is not cut back to its first page by a live
 * change: while it shows more than its first page it only says it is `behind`, and `catchUp` reloads
 * it. `live` counts the changes pushed; `reload` asks for the first page again.
 */
export function useLiveList(live: number, paged: boolean, reload: () => void) {
  const [behind, setBehind] = useState(false);
  const seen = useRef(live);
  const latest = useRef({ paged, reload });
  latest.current = { paged, reload };
  useEffect(() => {
    if (live === seen.current) return;
    seen.current = live;
    if (latest.current.paged) setBehind(true);
    else latest.current.reload();
  }, [live]);
  return {
    behind,
    catchUp() {
      setBehind(false);
      reload();
    },
    /** The list was loaded afresh (another period or filter, or caught up). */
    settled: () => setBehind(false),
  };
}
