/** Loads one API answer for a component, again when its inputs change or `reload` is called. */
import { useCallback, useEffect, useState } from 'react';
import type { ApiError, Query } from './api.ts';
import { useSession } from './sessionContext.tsx';

export interface Loaded<T> {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  reload(): void;
}

/** What identifies a request of a component: its path and query (null: no request). */
export const requestKey = (path: string | null, query: Query): string | null =>
  path === null ? null : `${path}?${JSON.stringify(query)}`;

export function useApi<T>(path: string | null, query: Query = {}): Loaded<T> {
  const { api } = useSession();
  const [state, setState] = useState<{ data: T | null; error: ApiError | null; loading: boolean }>({
    data: null,
    error: null,
    loading: path !== null,
  });
  const [generation, setGeneration] = useState(0);
  const key = requestKey(path, query);
  // biome-ignore lint/correctness/useExhaustiveDependencies: `key` stands for path and query.
  useEffect(() => {
    if (path === null) return;
    const controller = new AbortController();
    setState((previous) => ({ ...previous, loading: true }));
    api.get<T>(path, query, controller.signal).then(
      (data) => setState({ data, error: null, loading: false }),
      (error) => {
        if (!controller.signal.aborted) setState({ data: null, error, loading: false });
      },
    );
    return () => controller.abort();
  }, [api, key, generation]);
  const reload = useCallback(() => setGeneration((n) => n + 1), []);
  return { ...state, reload };
}
