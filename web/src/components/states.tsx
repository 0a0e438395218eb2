/** Loading, error and empty states that say what happened, shared by every panel. */
import type { ReactNode } from 'react';
import { ApiError } from '../api.ts';
import type { Page } from '../types.ts';
import type { Loaded } from '../useApi.ts';
import type { PagedList } from '../usePagedList.ts';

/** Any failure: an API problem says what Tally answered; anything else shows its message. */
export function ErrorNote({ error, retry }: { error: Error; retry?: () => void }) {
  const status = error instanceof ApiError ? error.status : 0;
  const what =
    status === 403
      ? 'Your role does not allow this.'
      : status === 401
        ? 'Your sign-in is no longer valid.'
        : status === 0
          ? ''
          : `Tally answered ${status}.`;
  return (
    <div className="note error" role="alert">
      <span>
        {what} {error.message}
      </span>
      {retry && (
        <button type="button" className="link" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export const Loading = ({ what }: { what: string }) => (
  <p className="loading" aria-busy="true">
    Loading {what}…
  </p>
);

export const Empty = ({ children }: { children: ReactNode }) => <p className="empty">{children}</p>;

/** Renders `children(data)` once loaded; the loading and error states otherwise. */
export function Await<T>({
  loaded,
  what,
  children,
}: {
  loaded: Loaded<T>;
  what: string;
  children: (data: T) => ReactNode;
}) {
  if (loaded.error) return <ErrorNote error={loaded.error} retry={loaded.reload} />;
  if (!loaded.data) return <Loading what={what} />;
  return <>{children(loaded.data)}</>;
}

export function Panel({
  title,
  actions,
  children,
  className = '',
}: {
  title: string;
  actions?: ReactNode;
  children: ReactNode;
  className?: string;
}) {
  const id = `panel-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return (
    <section className={`panel ${className}`} aria-labelledby={id}>
      <header className="panel-head">
        <h2 id={id}>{title}</h2>
        {actions && <div className="panel-actions">{actions}</div>}
      </header>
      {children}
    </section>
  );
}

/** A list kept as the reader paged through it while newer figures arrived: one click shows them. */
export function BehindNote({ children, onCatchUp }: { children: ReactNode; onCatchUp(): void }) {
  return (
    <p className="note" role="status">
      <span>{children}</span>
      <button type="button" className="link" onClick={onCatchUp}>
        Show the latest
      </button>
    </p>
  );
}

/**
 * The foot of a paged list: its Load more (or Show more) button while the API has more, then `end`
 * once every page is in; a page that failed to load says so with a retry.
 */
export function ListFoot({
  list,
  end,
  label = 'Load more',
  className = 'secondary',
}: {
  list: Pick<PagedList<unknown, Page<unknown>>, 'hasMore' | 'more' | 'loadMore'>;
  end?: string;
  label?: string;
  className?: string;
}) {
  return (
    <>
      {list.more.error && <ErrorNote error={list.more.error} retry={list.loadMore} />}
      {list.hasMore ? (
        <button type="button" className={className} onClick={list.loadMore} disabled={list.more.loading}>
          {list.more.loading ? 'Loading…' : label}
        </button>
      ) : (
        end && <p className="end-note">{end}</p>
      )}
    </>
  );
}
