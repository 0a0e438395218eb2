/**
 * Operator view: every organization with its spend this month, a page at a time (Load more), searched by
 * name. The API sums each page's spend in one request.
 */
import { useEffect, useState } from 'react';
import { Await, ListFoot, Panel } from '../components/states.tsx';
import { createFormats } from '../format.ts';
import { readLocale } from '../session.ts';
import type { Org } from '../types.ts';
import { usePagedList } from '../usePagedList.ts';

const ORGS_PAGE_SIZE = 50;
/** Typing pauses this long before the search is sent. */
const SEARCH_DELAY_MS = 250;

interface OrgWithSpend extends Org {
  month_spend: { calls: number; credits: string; cost: string; currency: string };
}

export function OrgsScreen({ onPick }: { onPick(id: string): void }) {
  const [typed, setTyped] = useState('');
  const [search, setSearch] = useState('');
  useEffect(() => {
    const timer = setTimeout(() => setSearch(typed.trim()), SEARCH_DELAY_MS);
    return () => clearTimeout(timer);
  }, [typed]);
  const orgs = usePagedList<OrgWithSpend>('/v1/orgs', {
    limit: ORGS_PAGE_SIZE,
    include: 'month_spend',
    q: search,
  });
  return (
    <Panel title="All organizations">
      <div className="field">
        <label htmlFor="org-search">Search by name</label>
        <input id="org-search" type="search" value={typed} onChange={(e) => setTyped(e.target.value)} />
      </div>
      <Await loaded={orgs.first} what="organizations">
        {() =>
          orgs.rows.length === 0 ? (
            <p className="empty">
              {search
                ? `No organization name contains “${search}”.`
                : 'No organizations yet. Create one with POST /v1/orgs.'}
            </p>
          ) : (
            <>
              <table className="table cards">
                <caption className="sr-only">Organizations and their spend this month</caption>
                <thead>
                  <tr>
                    <th scope="col">Organization</th>
                    <th scope="col">Billing</th>
                    <th scope="col" className="num">
                      Credits this month
                    </th>
                    <th scope="col" className="num">
                      Spend this month
                    </th>
                    <th scope="col" className="num">
                      Calls
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {orgs.rows.map((org) => (
                    <OrgRow key={org.id} org={org} onPick={onPick} />
                  ))}
                </tbody>
              </table>
              <ListFoot
                list={orgs}
                end={`${orgs.rows.length === 1 ? 'One organization' : `All ${orgs.rows.length} organizations`} shown`}
              />
            </>
          )
        }
      </Await>
    </Panel>
  );
}

function OrgRow({ org, onPick }: { org: OrgWithSpend; onPick(id: string): void }) {
  const formats = createFormats(org.currency, org.timezone, readLocale());
  const spend = org.month_spend;
  return (
    <tr>
      <th scope="row">
        <button type="button" className="link" onClick={() => onPick(org.id)}>
          {org.name}
        </button>
      </th>
      <td data-label="Billing">{org.billing_mode}</td>
      <td className="num" data-label="Credits this month">
        {org.billing_mode === 'credits' ? formats.credits(spend.credits) : '—'}
      </td>
      <td className="num" data-label="Spend this month">
        {org.billing_mode === 'byok' ? (
          <span title="BYOK: the provider bills the customer directly">—</span>
        ) : (
          formats.money(spend.cost, spend.currency)
        )}
      </td>
      <td className="num" data-label="Calls">
        {formats.count(spend.calls)}
      </td>
    </tr>
  );
}
