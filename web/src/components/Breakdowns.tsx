/**
 * Breakdown cards (feature pills, member colour bar, model bars) and the ranked tables: top
 * workspaces, groups and users, and usage by tool and by integration.
 */
import { useState } from 'react';
import type { Query } from '../api.ts';
import { type Formats, modelName } from '../format.ts';
import { useOrg } from '../sessionContext.tsx';
import type { Breakdown, BreakdownRow, Tokens } from '../types.ts';
import { spendAndMoney, spendText } from '../units.ts';
import { useApi } from '../useApi.ts';
import { usePagedList } from '../usePagedList.ts';
import { BarList } from './charts.tsx';
import { SpendCell } from './SpendCell.tsx';
import { Await, BehindNote, ListFoot, Panel } from './states.tsx';

const TOP_MEMBERS = 5;
/** Members a page of "Show all" loads. */
const MEMBERS_PAGE = 100;

export const useBreakdown = (by: string, query: Query, limit: number) =>
  useApi<Breakdown>(`/v1/orgs/${useOrg().org.id}/usage/breakdown`, { ...query, by, limit });

/** Tokens in short (29.4K tokens), to fit beside the spend in a breakdown row. */
const tokensText = (formats: Formats, tokens: Tokens) => `${formats.tokens(tokens.total)} tokens`;

/** A feature's or model's share of the total, calls and tokens, under its spend. */
const rowNote = (formats: Formats, row: BreakdownRow) =>
  `${formats.share(row.share)} of total · ${formats.count(row.calls)} calls · ${tokensText(formats, row.tokens)}`;

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
                  <span className="pill-value">{spendAndMoney(formats, b.unit, row)}</span>
                  <span className="muted">{rowNote(formats, row)}</span>
                </li>
              ))}
            </ul>
          )
        }
      </Await>
    </Panel>
  );
}

/** The members' shares: the top 5, or all of them (a page at a time) after Show all. */
export function MemberShares({ query, live }: { query: Query; live: number }) {
  const { org, formats } = useOrg();
  const [all, setAll] = useState(false);
  const list = usePagedList<BreakdownRow, Breakdown>(
    `/v1/orgs/${org.id}/usage/breakdown`,
    { ...query, by: 'member', limit: all ? MEMBERS_PAGE : TOP_MEMBERS },
    live,
  );
  return (
    <Panel title="By member">
      {list.behind && (
        <BehindNote onCatchUp={list.catchUp}>The ranking changed since this list was loaded.</BehindNote>
      )}
      <Await loaded={list.first} what="members">
        {(b) =>
          list.rows.length === 0 ? (
            <p className="empty">No usage in this period.</p>
          ) : (
            <>
              <div className="share-bar" aria-hidden="true">
                {list.rows.map((row, i) => (
                  <div
                    key={row.key}
                    className={`share series-${i % 6}`}
                    style={{ width: `${Number(row.share) * 100}%` }}
                  />
                ))}
              </div>
              <ol className="member-list">
                {list.rows.map((row, i) => (
                  <li key={row.key}>
                    <span className={`swatch series-${i % 6}`} aria-hidden="true" />
                    <span className="grow">
                      {memberName(row)}
                      {row.email && <span className="muted"> {row.email}</span>}
                    </span>
                    <span className="num member-figures">
                      {spendText(formats, b.unit, row)}
                      <span className="muted">
                        {tokensText(formats, row.tokens)} · {formats.share(row.share)}
                      </span>
                    </span>
                  </li>
                ))}
              </ol>
              {all && <ListFoot list={list} label="Show more" className="link" />}
              {b.groups > TOP_MEMBERS && (
                <button type="button" className="link" onClick={() => setAll(!all)}>
                  {all ? `Show top ${TOP_MEMBERS}` : `Show all (${b.groups})`}
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
                label: row.provider ? modelName(row.provider, row.label) : row.label,
                value: b.unit === 'usd' ? row.cost : row.credits,
                text: spendAndMoney(formats, b.unit, row),
                note: rowNote(formats, row),
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
  tool: ['By tool', 'Tool'],
  integration: ['By integration', 'Integration'],
};
/**
 * Dimensions most usage does not name (calls without a tool, calls made on the product's own
 * surfaces): their card shows the tokens and the error rate as well (how the integration or tool
 * performs), and stays hidden while the only row is the API's "none" row (key '': "No tool",
 * "No integration").
 */
const SPARSE = new Set(['tool', 'integration']);

/** A ranked table, five rows at a time, following the API's cursor. */
export function TopTable({ by, query, live }: { by: keyof typeof TOP_LABELS; query: Query; live: number }) {
  const { org, formats } = useOrg();
  const [title, column] = TOP_LABELS[by]!;
  const sparse = SPARSE.has(by);
  const list = usePagedList<BreakdownRow, Breakdown>(
    `/v1/orgs/${org.id}/usage/breakdown`,
    { ...query, by, limit: 5 },
    live,
  );
  const first = list.first.data;
  // Nothing to tell (yet): no panel rather than one that loads and then goes.
  if (sparse && !list.first.error && (!first || (!first.has_more && first.data.every((r) => r.key === ''))))
    return null;
  return (
    <Panel title={title}>
      {list.behind && (
        <BehindNote onCatchUp={list.catchUp}>The ranking changed since this list was loaded.</BehindNote>
      )}
      <Await loaded={list.first} what={title.toLowerCase()}>
        {(b) =>
          list.rows.length === 0 ? (
            <p className="empty">No usage in this period.</p>
          ) : (
            <>
              <table className="table cards">
                <thead>
                  <tr>
                    <th scope="col">{column}</th>
                    <th scope="col" className="num">
                      Spend
                    </th>
                    <th scope="col" className="num">
                      Calls
                    </th>
                    {sparse && (
                      <th scope="col" className="num">
                        Tokens
                      </th>
                    )}
                    {sparse && (
                      <th scope="col" className="num">
                        Errors
                      </th>
                    )}
                    <th scope="col" className="num">
                      Share
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {list.rows.map((row) => (
                    <tr key={row.key}>
                      <th scope="row">{by === 'member' ? memberName(row) : row.label}</th>
                      <SpendCell unit={b.unit} figures={row} label="Spend" />
                      <td className="num" data-label="Calls">
                        {formats.count(row.calls)}
                      </td>
                      {sparse && (
                        <td className="num" data-label="Tokens">
                          {formats.count(row.tokens.total)}
                        </td>
                      )}
                      {sparse && <ErrorsCell row={row} />}
                      <td className="num" data-label="Share">
                        {formats.share(row.share)}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <ListFoot list={list} label="Show more" className="link" />
            </>
          )
        }
      </Await>
    </Panel>
  );
}

/** A group's failed calls as a share of its calls, with the error they gave most. */
function ErrorsCell({ row }: { row: BreakdownRow }) {
  const { formats } = useOrg();
  if (row.failed_calls === 0)
    return (
      <td className="num muted" data-label="Errors">
        {formats.percent('0')}
      </td>
    );
  return (
    <td
      className="num tone-warn"
      data-label="Errors"
      title={`${formats.count(row.failed_calls)} of ${formats.count(row.calls)} calls failed`}
    >
      {formats.percent(row.error_rate)}
      {row.top_error && <span className="muted"> · {row.top_error}</span>}
    </td>
  );
}
