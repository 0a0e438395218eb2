/**
 * A list read page by page on the API's cursor: the first page loads with the component (and again
 * when its query changes), `loadMore` appends the next one until `has_more` is false.
 */
import { useEffect, useRef, useState } from 'react';
import { ApiError, type Query } from './api.ts';
import { useLiveList } from './live.ts';
import { useSession } from './sessionContext.tsx';
import type { Page } from './types.ts';
import { type Loaded, requestKey, useApi } from './useApi.ts';

export interface PagedList<Row, Answer extends Page<Row>> {
  /** The first page's answer: its loading and error states, and whatever else the answer carries. */
  first: Loaded<Answer>;
  /** Every row loaded so far, in the API's order. */
  rows: Row[];
  /** Changes rows in place (e.g. a row the page edited), keeping the pages read. */
  setRows(change: (rows: Row[]) => Row[]): void;
  hasMore: boolean;
  /** The state of the latest `loadMore`. */
  more: { loading: boolean; error: Error | null };
  loadMore(): Promise<void>;
  /** A live change arrived while more than the first page was shown (see useLiveList). */
  behind: boolean;
  catchUp(): void;
}

/**
 * `query` carries the page size (`limit`); `live` counts the changes pushed for this list (0 for a
 * list that does not follow them).
 */
export function usePagedList<Row, Answer extends Page<Row> = Page<Row>>(
  path: string | null,
  query: Query,
  live = 0,
): PagedList<Row, Answer> {
  const { api } = useSession();
  const first = useApi<Answer>(path, query);
  const [kept, setKept] = useState<Pages<Row, Answer>>(() => pagesFrom<Row, Answer>(null));
  // The pages read belong to one first page; a new first page (reloaded, another query) starts over,
  // in the same render, so the old rows never show beside the new answer.
  const pages = kept.of === first.data ? kept : pagesFrom<Row, Answer>(first.data);
  // The latest loadMore's state belongs to its first page as well: a new first page shows none.
  const [moreOf, setMoreOf] = useState<MoreState<Answer>>({ of: null, loading: false, error: null });
  // A Load more asked while the first page is loading again (a live change) waits for the new first
  // page and goes on from it; the reader's click is not lost. It holds the list's key, so a click
  // made before another query was chosen is dropped.
  const key = requestKey(path, query);
  const [waiting, setWaiting] = useState<string | null>(null);
  const queued = waiting !== null && waiting === key;
  const more =
    moreOf.of === first.data
      ? { loading: moreOf.loading || queued, error: moreOf.error }
      : { ...NO_MORE, loading: queued };
  const setMore = (of: Answer | null, state: { loading: boolean; error: Error | null }) =>
    setMoreOf({ of, ...state });
  // The reader asking for more counts as paging: a live change then says the list is behind rather
  // than reloading the first page under the page being read.
  const { behind, catchUp, settled } = useLiveList(
    live,
    pages.rows.length > (first.data?.data.length ?? 0) || more.loading,
    first.reload,
  );
  const latest = useRef({ data: first.data, key });
  latest.current = { data: first.data, key };
  // biome-ignore lint/correctness/useExhaustiveDependencies: `settled` only clears a flag.
  useEffect(() => {
    settled();
  }, [first.data]);
  /** Changes the pages of the first page `of`, unless the list loaded afresh since. */
  const update = (of: Answer | null, change: (pages: Pages<Row, Answer>) => Pages<Row, Answer>) =>
    setKept((previous) => change(previous.of === of ? previous : pagesFrom<Row, Answer>(of)));
  const loadMore = async () => {
    if (first.loading && first.data) {
      setWaiting(key);
      return;
    }
    const { of, cursor } = pages;
    if (!path || !cursor) return;
    setMore(of, { loading: true, error: null });
    /**
     * The first page loaded again while the next one was on its way: the answer is dropped, and
     * asked again from the new first page (unless another query was chosen meanwhile).
     */
    const superseded = () => {
      if (latest.current.data === of) return false;
      if (latest.current.key === key) setWaiting(key);
      return true;
    };
    try {
      const page = await api.get<Answer>(path, { ...query, cursor });
      if (superseded()) return;
      update(of, (p) => ({
        of,
        rows: [...p.rows, ...page.data],
        cursor: page.has_more ? page.next_cursor : null,
      }));
      setMore(of, { loading: false, error: null });
    } catch (error) {
      if (superseded()) return;
      // A ranked list (usage breakdowns) whose ranking moved since its first page: the API cannot go
      // on from the cursor (409), so the list loads again from the top.
      if (error instanceof ApiError && error.code === 'cursor_stale') {
        setMore(of, { loading: false, error: null });
        catchUp();
        return;
      }
      setMore(of, { loading: false, error: error as Error });
    }
  };
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs this render's loadMore, on the first page it shows.
  useEffect(() => {
    if (!queued || first.loading) return;
    setWaiting(null);
    loadMore();
  }, [queued, first.loading, first.data]);
  const setRows = (change: (rows: Row[]) => Row[]) =>
    update(first.data, (p) => ({ ...p, rows: change(p.rows) }));
  return {
    first,
    rows: pages.rows,
    setRows,
    hasMore: pages.cursor !== null,
    more,
    loadMore,
    behind,
    catchUp,
  };
}

interface MoreState<Answer> {
  of: Answer | null;
  loading: boolean;
  error: Error | null;
}
const NO_MORE = { loading: false, error: null };

/** The rows read so far, from the first page `of` on, and the cursor of the next page (null: no more). */
interface Pages<Row, Answer> {
  of: Answer | null;
  rows: Row[];
  cursor: string | null;
}

const pagesFrom = <Row, Answer extends Page<Row>>(answer: Answer | null): Pages<Row, Answer> => ({
  of: answer,
  rows: answer?.data ?? [],
  cursor: answer?.has_more ? answer.next_cursor : null,
});
