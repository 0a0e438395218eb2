/** Recent activity: 50 rows a page, Load more on the API's cursor, and the end of the period said plainly. */
import { useEffect, useState } from 'react';
import type { Query } from '../api.ts';
import { useLiveList } from '../live.ts';
import { Link } from '../router.tsx';
import { useOrg } from '../sessionContext.tsx';
import type { Page, UsageEvent } from '../types.ts';
import { useApi } from '../useApi.ts';
import { memberName } from './Breakdowns.tsx';
import { Await, BehindNote, ErrorNote, Panel } from './states.tsx';

const PAGE = 50;

export function ActivityTable({ query, live }: { query: Query; live: number }) {
  const { api, org, formats } = useOrg();
  const path = `/v1/orgs/${org.id}/usage/events`;
  const first = useApi<Page<UsageEvent>>(path, { ...query, limit: PAGE });
  const [rows, setRows] = useState<UsageEvent[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [more, setMore] = useState<{ loading: boolean; error: Error | null }>({
    loading: false,
    error: null,
  });
  const { behind, catchUp, settled } = useLiveList(live, rows.length > PAGE, first.reload);
  // biome-ignore lint/correctness/useExhaustiveDependencies: `settled` only clears a flag.
  useEffect(() => {
    setRows(first.data?.data ?? []);
    setCursor(first.data?.has_more ? first.data.next_cursor : null);
    settled();
  }, [first.data]);
  const loadMore = async () => {
    setMore({ loading: true, error: null });
    try {
      const page = await api.get<Page<UsageEvent>>(path, { ...query, limit: PAGE, cursor });
      setRows((previous) => [...previous, ...page.data]);
      setCursor(page.has_more ? page.next_cursor : null);
      setMore({ loading: false, error: null });
    } catch (error) {
      setMore({ loading: false, error: error as Error });
    }
  };
  const byok = org.billing_mode === 'byok';
  return (
    <Panel title="Recent activity">
      {behind && <BehindNote onCatchUp={catchUp}>New activity since this list was loaded.</BehindNote>}
      <Await loaded={first} what="recent activity">
        {() =>
          rows.length === 0 ? (
            <p className="empty">No activity in this period.</p>
          ) : (
            <>
              <div className="scroll">
                <table className="table activity">
                  <thead>
                    <tr>
                      <th scope="col">Date</th>
                      <th scope="col">User</th>
                      <th scope="col">Event type</th>
                      <th scope="col">Provider / model</th>
                      <th scope="col" className="num">
                        Tokens
                      </th>
                      {!byok && (
                        <>
                          <th scope="col" className="num">
                            Credits
                          </th>
                          <th scope="col" className="num">
                            Cost
                          </th>
                        </>
                      )}
                    </tr>
                  </thead>
                  <tbody>
                    {rows.map((e) => (
                      <tr key={e.id}>
                        <td>{formats.dateTime(e.occurred_at)}</td>
                        <td>
                          {memberName({ label: e.member?.label ?? null })}
                          {e.member?.email && <div className="muted">{e.member.email}</div>}
                        </td>
                        <td>
                          {e.conversation_id ? (
                            <Link href={`/usage/conversations/${encodeURIComponent(e.conversation_id)}`}>
                              {e.feature}
                            </Link>
                          ) : (
                            e.feature
                          )}
                          {e.surface && <span className="tag">{e.surface}</span>}
                        </td>
                        <td>
                          {e.provider} / {e.model}
                        </td>
                        <td
                          className="num"
                          title={`input ${e.tokens.input}, output ${e.tokens.output}, cache read ${e.tokens.cache_read}, cache write ${e.tokens.cache_write}`}
                        >
                          {formats.count(e.tokens.total)}
                        </td>
                        {!byok && (
                          <>
                            <td className="num">{formats.credits(e.credits)}</td>
                            <td className="num">{formats.money(e.cost, e.currency)}</td>
                          </>
                        )}
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              {more.error && <ErrorNote error={more.error} retry={loadMore} />}
              {cursor ? (
                <button type="button" className="secondary" onClick={loadMore} disabled={more.loading}>
                  {more.loading ? 'Loading…' : 'Load more'}
                </button>
              ) : (
                <p className="end-note">End of activity for this period</p>
              )}
            </>
          )
        }
      </Await>
    </Panel>
  );
}
