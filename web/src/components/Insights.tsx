/**
 * Forecast, anomalies and recommendations, as the API computes them. A panel whose endpoint this
 * Tally does not offer (404) is left out rather than filled with guesses.
 */
import type { Query } from '../api.ts';
import { useOrg } from '../sessionContext.tsx';
import { moneyNote, unitValue } from '../units.ts';
import { useApi } from '../useApi.ts';
import { BarList, ColumnChart } from './charts.tsx';
import { Await, Panel } from './states.tsx';

interface Projection {
  amount: string;
  cost: string;
}
interface Forecast {
  unit: 'credits' | 'usd' | 'tokens';
  currency: string;
  method: string;
  next_30_days: { conservative: Projection; likely: Projection; aggressive: Projection };
  end_of_month: {
    month: string;
    month_to_date: Projection;
    conservative: Projection;
    likely: Projection;
    aggressive: Projection;
  };
  run_out: { likely_date: string | null; earliest_date: string | null; latest_date: string | null } | null;
}

export function ForecastPanel() {
  const { org, formats } = useOrg();
  const answer = useApi<Forecast>(`/v1/orgs/${org.id}/usage/forecast`);
  return (
    <Panel title="Forecast">
      <Await loaded={answer} what="the forecast">
        {(f) => {
          const rows: [string, Forecast['next_30_days']][] = [
            [`End of ${formats.month(f.end_of_month.month)}`, f.end_of_month],
            ['Next 30 days', f.next_30_days],
          ];
          return (
            <>
              <table className="table cards">
                <thead>
                  <tr>
                    <th scope="col">Period</th>
                    <th scope="col" className="num">
                      Conservative
                    </th>
                    <th scope="col" className="num">
                      Likely
                    </th>
                    <th scope="col" className="num">
                      Aggressive
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map(([label, p]) => (
                    <tr key={label}>
                      <th scope="row">{label}</th>
                      <ProjectionCell projection={p.conservative} forecast={f} label="Conservative" />
                      <ProjectionCell projection={p.likely} forecast={f} label="Likely" strong />
                      <ProjectionCell projection={p.aggressive} forecast={f} label="Aggressive" />
                    </tr>
                  ))}
                </tbody>
              </table>
              {f.run_out?.likely_date && (
                <p>
                  Credits run out around <strong>{formats.day(f.run_out.likely_date)}</strong>
                  {f.run_out.earliest_date && <> (earliest {formats.day(f.run_out.earliest_date)})</>}.
                </p>
              )}
              <details>
                <summary>How this is computed</summary>
                <p className="muted">{f.method}</p>
              </details>
            </>
          );
        }}
      </Await>
    </Panel>
  );
}

/** One projection: its amount in the org's unit, with the bill it means in the org's currency under credits. */
function ProjectionCell({
  projection,
  forecast,
  label,
  strong = false,
}: {
  projection: Projection;
  forecast: Pick<Forecast, 'unit' | 'currency'>;
  /** The column's name, shown beside the figure where a phone shows the row as a card. */
  label: string;
  strong?: boolean;
}) {
  const { formats } = useOrg();
  const money = moneyNote(formats, forecast.unit, projection, forecast.currency);
  return (
    <td className={strong ? 'num strong' : 'num'} data-label={label}>
      {unitValue(formats, forecast.unit)(projection.amount)}
      {money && <div className="muted">{money}</div>}
    </td>
  );
}

interface Anomaly {
  date: string;
  /** spend: value and median in the unit; error_rate: in percent of the calls. */
  metric: 'spend' | 'error_rate';
  scope: 'org' | 'member' | 'feature';
  key: string;
  label: string;
  value: string;
  median: string;
  severity: 'low' | 'medium' | 'high';
  failed_calls: number | null;
  calls: number | null;
}

export function AnomaliesPanel() {
  const { org, formats } = useOrg();
  const answer = useApi<{ unit: 'credits' | 'usd' | 'tokens'; data: Anomaly[] }>(
    `/v1/orgs/${org.id}/usage/anomalies`,
  );
  return (
    <Panel title="Unusual spikes">
      <Await loaded={answer} what="anomalies">
        {(a) => {
          const format = unitValue(formats, a.unit);
          const spend = (value: string) =>
            a.unit === 'credits' ? `${format(value)} credits` : format(value);
          return a.data.length === 0 ? (
            <p className="empty">Nothing unusual in the last 7 days.</p>
          ) : (
            <ul className="anomalies">
              {a.data.slice(0, 8).map((item) => (
                <li key={`${item.date}-${item.metric}-${item.scope}-${item.key}`}>
                  <span className={`severity severity-${item.severity}`}>{item.severity}</span>
                  <span className="grow">
                    {formats.day(item.date)}:{' '}
                    {item.scope === 'org' ? 'the organization' : item.label || 'Unknown user'}{' '}
                    {item.metric === 'error_rate'
                      ? `failed ${formats.percent(item.value)} of calls (${formats.count(item.failed_calls ?? 0)} of ${formats.count(item.calls ?? 0)}; usually ${formats.percent(item.median)})`
                      : `spent ${spend(item.value)} (usually ${spend(item.median)})`}
                  </span>
                </li>
              ))}
            </ul>
          );
        }}
      </Await>
    </Panel>
  );
}

interface Recommendation {
  id: string;
  title: string;
  detail: string;
  monthly_savings_cost: string | null;
  /** Percent of the range's spend ('17.0'). */
  savings_share: string | null;
}

/** Cost cuts computed by the API from the org's own usage, each with the figure it rests on. */
export function RecommendationsPanel({ query }: { query: Query }) {
  const { org, formats } = useOrg();
  const answer = useApi<{ currency: string; data: Recommendation[] }>(
    `/v1/orgs/${org.id}/usage/recommendations`,
    query,
  );
  // A Tally without this endpoint (404) shows no panel rather than an error.
  if (answer.error?.status === 404) return null;
  return (
    <Panel title="Recommendations">
      <Await loaded={answer} what="recommendations">
        {(r) =>
          r.data.length === 0 ? (
            <p className="empty">No savings to suggest for this usage.</p>
          ) : (
            <ul className="recommendations">
              {r.data.map((item) => (
                <li key={item.id}>
                  <strong>{item.title}</strong>
                  {item.monthly_savings_cost && (
                    <span className="saving">
                      {' '}
                      saves about {formats.money(item.monthly_savings_cost, r.currency)} a month
                      {item.savings_share && ` (${formats.percent(item.savings_share)} reduction)`}
                    </span>
                  )}
                  <p className="muted">{item.detail}</p>
                </li>
              ))}
            </ul>
          )
        }
      </Await>
    </Panel>
  );
}

interface Cell {
  credits: string;
  cost: string;
  calls: number;
  share: string;
}
interface Patterns {
  unit: 'credits' | 'usd' | 'tokens';
  busiest_hour: number | null;
  hours: (Cell & { hour: number })[];
  weekdays: (Cell & { weekday: number; name: string })[];
  week_over_week: { trend: { label: string } };
}

/** When the organization uses AI: busiest hours (org time zone) and weekdays, and the week-over-week change. */
export function PatternsPanel({ query }: { query: Query }) {
  const { org, formats } = useOrg();
  const answer = useApi<Patterns>(`/v1/orgs/${org.id}/usage/patterns`, query);
  if (answer.error?.status === 404) return null;
  return (
    <Panel title="When your team uses AI">
      <Await loaded={answer} what="usage patterns">
        {(p) => {
          const format = unitValue(formats, p.unit);
          const value = (c: Cell) => (p.unit === 'usd' ? c.cost : c.credits);
          if (p.busiest_hour === null) return <p className="empty">No usage in this period.</p>;
          return (
            <>
              <p>
                Busiest hour: <strong>{String(p.busiest_hour).padStart(2, '0')}:00</strong> (
                {formats.timeZone}) · this week against last: <strong>{p.week_over_week.trend.label}</strong>
              </p>
              <ColumnChart
                title="Spend by hour of day"
                columns={p.hours.map((h) => ({
                  key: String(h.hour),
                  label: `${String(h.hour).padStart(2, '0')}h`,
                  value: value(h),
                  text: `${format(value(h))}, ${formats.count(h.calls)} calls`,
                  highlight: h.hour === p.busiest_hour,
                }))}
              />
              <BarList
                rows={p.weekdays.map((d) => ({
                  key: d.name,
                  label: d.name,
                  value: value(d),
                  text: format(value(d)),
                  note: formats.share(d.share),
                }))}
              />
            </>
          );
        }}
      </Await>
    </Panel>
  );
}
