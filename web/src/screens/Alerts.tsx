/** Alerts the org received: thresholds reached, quota exceeded, low credits, anomalies, disabled webhook endpoints. */
import { Await, ListFoot, Panel } from '../components/states.tsx';
import { useOrg } from '../sessionContext.tsx';
import { usePagedList } from '../usePagedList.ts';

interface Alert {
  id: string;
  type: string;
  /** 'monthly_limit', 'alert_threshold', 'budget:<id>', 'plan_allowance', 'credits' or 'webhook_endpoint:<id>'. */
  scope: string;
  /** 0 for alerts about no percentage (credits.projected_run_out, webhook_endpoint.disabled). */
  threshold_percent: number;
  period_start: string;
  details: Record<string, unknown>;
  created_at: string;
}

/** The details of a webhook_endpoint.disabled alert (the fields shown). */
interface EndpointDisabledDetails {
  url: string;
  failing_since: string;
  last_error: string;
}

export function AlertsScreen() {
  const { org, formats } = useOrg();
  const alerts = usePagedList<Alert>(`/v1/orgs/${org.id}/alerts`, { limit: 100 });
  return (
    <Panel title="Alerts">
      <Await loaded={alerts.first} what="alerts">
        {() =>
          alerts.rows.length === 0 ? (
            <p className="empty">
              No alerts yet. Set an alert threshold under Limits to be warned before spending gets high.
            </p>
          ) : (
            <>
              <table className="table">
                <thead>
                  <tr>
                    <th scope="col">When</th>
                    <th scope="col">Alert</th>
                    <th scope="col">About</th>
                    <th scope="col" className="num">
                      Reached
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {alerts.rows.map((a) => (
                    <tr key={a.id}>
                      <td>{formats.dateTime(a.created_at)}</td>
                      <td>{a.type}</td>
                      <td>
                        <AlertSubject alert={a} />
                      </td>
                      <td className="num">{a.threshold_percent === 0 ? '—' : `${a.threshold_percent} %`}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <ListFoot list={alerts} end="End of alerts" />
            </>
          )
        }
      </Await>
    </Panel>
  );
}

/**
 * What an alert is about: a disabled webhook endpoint says what happened, a budget goes by its name
 * (its details carry it), any other scope as the API names it.
 */
function AlertSubject({ alert }: { alert: Alert }) {
  const { formats } = useOrg();
  if (alert.type === 'webhook_endpoint.disabled') {
    // This type's details always have this shape (disableFailingEndpoint writes them).
    const { url, failing_since, last_error } = alert.details as unknown as EndpointDisabledDetails;
    return (
      <>
        Webhook endpoint <code>{url}</code> was disabled after failing since {formats.date(failing_since)}:{' '}
        {last_error}
      </>
    );
  }
  const { scope_kind, name } = alert.details;
  return <>{scope_kind === 'budget' && typeof name === 'string' ? `Budget “${name}”` : alert.scope}</>;
}
