/** The cumulative spend chart (total or by feature) and the usage chart split web vs CLI by granularity. */
import { useState } from 'react';
import type { Query } from '../api.ts';
import type { Formats } from '../format.ts';
import { useOrg } from '../sessionContext.tsx';
import type { Timeseries } from '../types.ts';
import { plotted, unitValue } from '../units.ts';
import { useApi } from '../useApi.ts';
import { LineChart, type LineSeries } from './charts.tsx';
import { Await, Panel } from './states.tsx';

function bucketLabel(start: string, granularity: Timeseries['granularity'], formats: Formats) {
  const options: Intl.DateTimeFormatOptions =
    granularity === 'hour'
      ? { hour: '2-digit', minute: '2-digit', timeZone: formats.timeZone }
      : { day: 'numeric', month: 'short', timeZone: formats.timeZone };
  return new Intl.DateTimeFormat(formats.locale, options).format(new Date(start));
}

function toSeries(answer: Timeseries, totalLabel: string): LineSeries[] {
  if (answer.series.length === 0) {
    return [{ key: 'total', label: totalLabel, values: answer.data.map((p) => plotted(answer.unit, p)) }];
  }
  return answer.series.map((s) => ({
    key: s.key,
    label: s.label,
    values: answer.data.map((p) => {
      const group = p.groups?.find((g) => g.key === s.key);
      return group ? plotted(answer.unit, group) : '0';
    }),
  }));
}

function SeriesChart({
  answer,
  title,
  totalLabel,
}: {
  answer: Timeseries;
  title: string;
  totalLabel: string;
}) {
  const { formats } = useOrg();
  const format = unitValue(formats, answer.unit);
  if (answer.data.every((p) => p.calls === 0)) return <p className="empty">No usage in this period.</p>;
  return (
    <LineChart
      title={title}
      xLabels={answer.data.map((p) => bucketLabel(p.start, answer.granularity, formats))}
      series={toSeries(answer, totalLabel)}
      formatValue={format}
      formatAxis={(n) => format(String(Math.round(n * 100) / 100))}
    />
  );
}

export function CumulativeChart({ query }: { query: Query }) {
  const [split, setSplit] = useState<'' | 'feature'>('');
  const answer = useApi<Timeseries>(`/v1/orgs/${useOrg().org.id}/usage/timeseries`, {
    ...query,
    cumulative: true,
    split,
    split_limit: 6,
  });
  return (
    <Panel
      title="Cumulative spend"
      actions={
        <fieldset className="segmented">
          <legend className="sr-only">Cumulative spend view</legend>
          <button type="button" aria-pressed={split === ''} onClick={() => setSplit('')}>
            Total
          </button>
          <button type="button" aria-pressed={split === 'feature'} onClick={() => setSplit('feature')}>
            By feature
          </button>
        </fieldset>
      }
    >
      <Await loaded={answer} what="the cumulative spend">
        {(data) => <SeriesChart answer={data} title="Cumulative spend over the period" totalLabel="Total" />}
      </Await>
    </Panel>
  );
}

const GRANULARITY_LABELS = { hour: 'Hourly', day: 'Daily', week: 'Weekly' } as const;

export function SurfaceChart({ query }: { query: Query }) {
  const [granularity, setGranularity] = useState<'' | keyof typeof GRANULARITY_LABELS>('');
  const answer = useApi<Timeseries>(`/v1/orgs/${useOrg().org.id}/usage/timeseries`, {
    ...query,
    split: 'surface',
    granularity,
  });
  return (
    <Panel
      title="Web and CLI usage"
      actions={
        <label className="inline">
          Granularity{' '}
          <select value={granularity} onChange={(e) => setGranularity(e.target.value as typeof granularity)}>
            <option value="">Automatic</option>
            {Object.entries(GRANULARITY_LABELS).map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </label>
      }
    >
      <Await loaded={answer} what="usage by surface">
        {(data) => <SeriesChart answer={data} title="Usage by surface (web, CLI, API)" totalLabel="Total" />}
      </Await>
    </Panel>
  );
}
