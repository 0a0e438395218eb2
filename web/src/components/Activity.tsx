/** Recent activity: 50 rows a page, Load more on the API's cursor, and the end of the period said plainly. */
import type { Query } from '../api.ts';
import { modelName } from '../format.ts';
import { Link } from '../router.tsx';
import { useOrg } from '../sessionContext.tsx';
import type { UsageEvent } from '../types.ts';
import { otherUsageText } from '../units.ts';
import { usePagedList } from '../usePagedList.ts';
import { memberName } from './Breakdowns.tsx';
import { Await, BehindNote, ListFoot, Panel } from './states.tsx';

const PAGE = 50;

export function ActivityTable({ query, live }: { query: Query; live: number }) {
  const { org, formats } = useOrg();
  const list = usePagedList<UsageEvent>(`/v1/orgs/${org.id}/usage/events`, { ...query, limit: PAGE }, live);
  const byok = org.billing_mode === 'byok';
  // A host may keep the model of credit-billed calls to itself; an org paying its provider sees it.
  const showsModel = org.billing_mode !== 'credits' || org.activity_shows_model;
  return (
    <Panel title="Recent activity">
      {list.behind && (
        <BehindNote onCatchUp={list.catchUp}>New activity since this list was loaded.</BehindNote>
      )}
      <Await loaded={list.first} what="recent activity">
        {() =>
          list.rows.length === 0 ? (
            <p className="empty">No activity in this period.</p>
          ) : (
            <>
              <div className="scroll">
                <table className="table activity cards">
                  <thead>
                    <tr>
                      <th scope="col">Date</th>
                      <th scope="col">User</th>
                      <th scope="col">Event type</th>
                      {showsModel && <th scope="col">Provider / model</th>}
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
                    {list.rows.map((e) => (
                      <tr key={e.id}>
                        <td data-label="Date">{formats.dateTime(e.occurred_at)}</td>
                        <td data-label="User">
                          {memberName({ label: e.member?.label ?? null })}
                          {e.member?.email && <div className="muted">{e.member.email}</div>}
                        </td>
                        <td data-label="Event type">
                          {e.conversation_id ? (
                            <Link href={`/usage/conversations/${encodeURIComponent(e.conversation_id)}`}>
                              {e.feature}
                            </Link>
                          ) : (
                            e.feature
                          )}
                          {e.surface_label && <span className="tag">{e.surface_label}</span>}
                          {e.error && (
                            <span className="tag tone-warn" title={`The call failed: ${e.error}`}>
                              Failed: {e.error}
                            </span>
                          )}
                        </td>
                        {showsModel && (
                          <td data-label="Provider / model">{modelName(e.provider, e.model)}</td>
                        )}
                        <UsageCell event={e} />
                        {!byok && (
                          <>
                            <td className="num" data-label="Credits">
                              {formats.credits(e.credits)}
                            </td>
                            <td className="num" data-label="Cost">
                              {formats.money(e.cost, e.currency)}
                            </td>
                          </>
                        )}
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              <ListFoot list={list} end="End of activity for this period" />
            </>
          )
        }
      </Await>
    </Panel>
  );
}

/**
 * An event's tokens, and below them what else it counted (images, seconds, requests, web
 * searches); an event that counted only those shows them alone rather than "0" tokens.
 */
function UsageCell({ event }: { event: UsageEvent }) {
  const { formats } = useOrg();
  const { tokens } = event;
  const other = otherUsageText(formats, event.usage);
  const [first, ...rest] =
    tokens.total > 0 || other.length === 0 ? [formats.count(tokens.total), ...other] : other;
  return (
    <td
      className="num"
      data-label="Tokens"
      title={`input ${tokens.input}, output ${tokens.output}, cache read ${tokens.cache_read}, cache write ${tokens.cache_write}`}
    >
      {first}
      {rest.map((text) => (
        <div key={text} className="muted">
          {text}
        </div>
      ))}
    </td>
  );
}
