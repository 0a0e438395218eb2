/** Alerts the org received: thresholds reached, quota exceeded, low credits, disabled webhook endpoints. */
import { Await, ListFoot, Panel } from '../components/states.tsx';
import type { Formats } from '../format.ts';
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

/** What each alert type is called on the page; a type this page does not know shows as the API names it. */
const TYPE_NAMES: Record<string, string> = {
  'alert.threshold_crossed': 'Threshold reached',
  'quota.exceeded': 'Limit reached, AI calls paused',
  'credits.low': 'Credits running low',
  'credits.projected_run_out': 'Credits to run out before the cycle ends',
  'webhook_endpoint.disabled': 'Webhook endpoint disabled',
};

/** What an alert's scope is called, by its kind (the part before `:<id>`); a budget goes by its name when it has one. */
const SCOPE_NAMES: Record<string, string> = {
  monthly_limit: 'Monthly limit',
  budget: 'Budget',
  alert_threshold: 'Alert threshold',
  plan_allowance: 'Plan allowance',
  credits: 'Credits',
};

/** The figures the details of spend and credit alerts carry (alerts recorded before a field existed lack it). */
interface AlertFigures {
  name?: string;
  currency?: string;
  spent_amount?: string;
  limit_amount?: string;
  used_credits?: string;
  allowance_credits?: string;
  available_credits?: string;
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
                      <td>{TYPE_NAMES[a.type] ?? a.type}</td>
                      <td>
                        <AlertSubject alert={a} />
                      </td>
                      <td className="num">
                        {a.threshold_percent === 0 ? '—' : formats.percent(String(a.threshold_percent))}
                      </td>
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
 * What an alert is about: a disabled webhook endpoint says what happened; any other alert names its
 * scope, with the spend against the limit (or the credits) its details give.
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
  const details = alert.details as AlertFigures;
  const kind = alert.scope.split(':')[0]!;
  const subject =
    kind === 'budget' && details.name ? `Budget “${details.name}”` : (SCOPE_NAMES[kind] ?? alert.scope);
  const figures = figuresText(details, formats);
  return <>{figures ? `${subject} (${figures})` : subject}</>;
}

function figuresText(details: AlertFigures, formats: Formats): string | null {
  const { currency, spent_amount, limit_amount, used_credits, allowance_credits, available_credits } =
    details;
  if (spent_amount && limit_amount) {
    return `${formats.money(spent_amount, currency)} / ${formats.money(limit_amount, currency)}`;
  }
  if (used_credits && allowance_credits) {
    return `${formats.credits(used_credits)} / ${formats.credits(allowance_credits)} credits`;
  }
  if (available_credits) return `${formats.credits(available_credits)} credits left`;
  return null;
}
