/** Alerts the org received: thresholds reached, quota exceeded, low credits, anomalies. */
import { Await, ListFoot, Panel } from '../components/states.tsx';
import { useOrg } from '../sessionContext.tsx';
import { usePagedList } from '../usePagedList.ts';

interface Alert {
  id: string;
  type: string;
  scope: string;
  threshold_percent: number;
  period_start: string;
  created_at: string;
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
                    <th scope="col">Scope</th>
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
                      <td>{a.scope}</td>
                      <td className="num">{a.threshold_percent} %</td>
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
