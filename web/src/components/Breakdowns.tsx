/** Breakdown cards (feature pills, member colour bar, model bars) and the top workspaces/groups/users tables. */
import { useEffect, useState } from 'react';
import { ApiError, type Query } from '../api.ts';
import { useLiveList } from '../live.ts';
import { useOrg } from '../sessionContext.tsx';
import type { Breakdown, BreakdownRow } from '../types.ts';
import { moneyNote, spendText } from '../units.ts';
import { useApi } from '../useApi.ts';
import { BarList } from './charts.tsx';
import { Await, BehindNote, ErrorNote, Panel } from './states.tsx';

const useBreakdown = (by: string, query: Query, limit: number) =>
  useApi<Breakdown>(`/v1/orgs/${useOrg().org.id}/usage/breakdown`, { ...query, by, limit });

export function FeaturePills({ query }: { query: Query }) {
  const { formats } = useOrg();
  const answer = useBreakdown('feature', query, 20);
  return (
    <Panel title="By feature">
      <Await loaded={answer} what="features">
        {(b) =>
          b.data.length === 0 ? (
            <p className="empty">No usage in this period.</p>
          ) : (
            <ul className="pills">
              {b.data.map((row) => (
                <li key={row.key} className="pill">
                  <span className="pill-label">{row.label}</span>
                  <span className="pill-value">{spendText(formats, b.unit, row)}</span>
                  <span className="muted">{formats.count(row.calls)} calls</span>
                </li>
              ))}
            </ul>
          )
        }
      </Await>
    </Panel>
  );
}

export function MemberShares({ query }: { query: Query }) {
  const { formats } = useOrg();
  const [all, setAll] = useState(false);
  const answer = useBreakdown('member', query, all ? 500 : 5);
  return (
    <Panel title="By member">
      <Await loaded={answer} what="members">
        {(b) =>
          b.data.length === 0 ? (
            <p className="empty">No usage in this period.</p>
          ) : (
            <>
              <div className="share-bar" aria-hidden="true">
                {b.data.map((row, i) => (
                  <div
                    key={row.key}
                    className={`share series-${i % 6}`}
                    style={{ width: `${Number(row.share) * 100}%` }}
                  />
                ))}
              </div>
              <ol className="member-list">
                {b.data.map((row, i) => (
                  <li key={row.key}>
                    <span className={`swatch series-${i % 6}`} aria-hidden="true" />
                    <span className="grow">
                      {memberName(row)}
                      {row.email && <span className="muted"> {row.email}</span>}
                    </span>
                    <span className="num">{spendText(formats, b.unit, row)}</span>
                    <span className="num muted">{formats.share(row.share)}</span>
                  </li>
                ))}
              </ol>
              {b.groups > 5 && (
                <button type="button" className="link" onClick={() => setAll(!all)}>
                  {all ? 'Show top 5' : `Show all (${b.groups})`}
                </button>
              )}
            </>
          )
        }
      </Await>
    </Panel>
  );
}

/** A removed or erased member's usage stays, under this name. */
export const memberName = (row: { label: string | null; key?: string }) => row.label || 'Unknown user';

export function ModelBars({ query }: { query: Query }) {
  const { formats } = useOrg();
  const answer = useBreakdown('model', query, 10);
  return (
    <Panel title="By model">
      <Await loaded={answer} what="models">
        {(b) =>
          b.data.length === 0 ? (
            <p className="empty">No usage in this period.</p>
          ) : (
            <BarList
              rows={b.data.map((row) => ({
                key: row.key,
                label: row.label,
                value: b.unit === 'usd' ? row.cost : row.credits,
                text: spendText(formats, b.unit, row),
                note: `${formats.count(row.calls)} calls`,
              }))}
            />
          )
        }
      </Await>
    </Panel>
  );
}

const TOP_LABELS: Record<string, [string, string]> = {
  workspace: ['Top workspaces', 'Workspace'],
  workspace_group: ['Top workspace groups', 'Group'],
  member: ['Top users', 'User'],
};

/** A ranked table, five rows at a time, following the API's cursor. */
export function TopTable({ by, query, live }: { by: keyof typeof TOP_LABELS; query: Query; live: number }) {
  const { api, org, formats } = useOrg();
  const [title, column] = TOP_LABELS[by]!;
  const first = useBreakdown(by, query, 5);
  const [rows, setRows] = useState<BreakdownRow[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [more, setMore] = useState<{ loading: boolean; error: Error | null }>({
    loading: false,
    error: null,
  });
  const { behind, catchUp, settled } = useLiveList(live, rows.length > 5, first.reload);
  // biome-ignore lint/correctness/useExhaustiveDependencies: `settled` only clears a flag.
  useEffect(() => {
    setRows(first.data?.data ?? []);
    setCursor(first.data?.has_more ? first.data.next_cursor : null);
    settled();
  }, [first.data]);
  const showMore = async () => {
    if (!cursor) return;
    setMore({ loading: true, error: null });
    try {
      const page = await api.get<Breakdown>(`/v1/orgs/${org.id}/usage/breakdown`, {
        ...query,
        by,
        limit: 5,
        cursor,
      });
      setRows((previous) => [...previous, ...page.data]);
      setCursor(page.has_more ? page.next_cursor : null);
      setMore({ loading: false, error: null });
    } catch (error) {
      // The pages follow the first one's ranking; usage that arrived late since made it one the API
      // cannot go on with (409): the list loads again from the top.
      if (error instanceof ApiError && error.code === 'cursor_stale') {
        setMore({ loading: false, error: null });
        catchUp();
        return;
      }
      setMore({ loading: false, error: error as Error });
    }
  };
  return (
    <Panel title={title}>
      {behind && <BehindNote onCatchUp={catchUp}>The ranking changed since this list was loaded.</BehindNote>}
      <Await loaded={first} what={title.toLowerCase()}>
        {(b) =>
          rows.length === 0 ? (
            <p className="empty">No usage in this period.</p>
          ) : (
            <>
              <table className="table">
                <thead>
                  <tr>
                    <th scope="col">{column}</th>
                    <th scope="col" className="num">
                      Spend
                    </th>
                    <th scope="col" className="num">
                      Requests
                    </th>
                    <th scope="col" className="num">
                      Share
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((row) => (
                    <tr key={row.key}>
                      <th scope="row">{by === 'member' ? memberName(row) : row.label}</th>
                      <td className="num">
                        {spendText(formats, b.unit, row)}
                        {moneyNote(formats, b.unit, row) && (
                          <div className="muted">{moneyNote(formats, b.unit, row)}</div>
                        )}
                      </td>
                      <td className="num">{formats.count(row.calls)}</td>
                      <td className="num">{formats.share(row.share)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {more.error && <ErrorNote error={more.error} retry={showMore} />}
              {cursor && (
                <button type="button" className="link" onClick={showMore} disabled={more.loading}>
                  {more.loading ? 'Loading…' : 'Show more'}
                </button>
              )}
            </>
          )
        }
      </Await>
    </Panel>
  );
}
