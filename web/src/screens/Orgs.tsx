/** Operator view: every organization with its spend this month, from the API's own summaries. */
import { useEffect, useState } from 'react';
import type { Api } from '../api.ts';
import { Await, ErrorNote, Panel } from '../components/states.tsx';
import { createFormats } from '../format.ts';
import { readLocale } from '../session.ts';
import { useSession } from '../sessionContext.tsx';
import type { Org, Page, Summary } from '../types.ts';
import { useApi } from '../useApi.ts';

export function OrgsScreen({ onPick }: { onPick(id: string): void }) {
  const orgs = useApi<Page<Org>>('/v1/orgs', { limit: 100 });
  return (
    <Panel title="All organizations">
      <Await loaded={orgs} what="organizations">
        {(page) =>
          page.data.length === 0 ? (
            <p className="empty">No organizations yet. Create one with POST /v1/orgs.</p>
          ) : (
            <table className="table">
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
                {page.data.map((org) => (
                  <OrgRow key={org.id} org={org} onPick={onPick} />
                ))}
              </tbody>
            </table>
          )
        }
      </Await>
    </Panel>
  );
}

function OrgRow({ org, onPick }: { org: Org; onPick(id: string): void }) {
  const { api } = useSession();
  const summary = useMonthSummary(api, org.id);
  const formats = createFormats(org.currency, org.timezone, readLocale());
  return (
    <tr>
      <th scope="row">
        <button type="button" className="link" onClick={() => onPick(org.id)}>
          {org.name}
        </button>
      </th>
      <td>{org.billing_mode}</td>
      {summary instanceof Error ? (
        <td colSpan={3}>
          <ErrorNote error={summary} />
        </td>
      ) : (
        <>
          <td className="num">{summary ? formats.credits(summary.credits) : '…'}</td>
          <td className="num">{summary ? formats.money(summary.cost, summary.currency) : '…'}</td>
          <td className="num">{summary ? formats.count(summary.calls) : '…'}</td>
        </>
      )}
    </tr>
  );
}

function useMonthSummary(api: Api, orgId: string): Summary | Error | null {
  const [summary, setSummary] = useState<Summary | Error | null>(null);
  useEffect(() => {
    api.get<Summary>(`/v1/orgs/${orgId}/usage/summary`, { range: 'mtd' }).then(setSummary, setSummary);
  }, [api, orgId]);
  return summary;
}
