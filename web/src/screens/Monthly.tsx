/**
 * Month-by-month totals for a year, with the same month of the year before beside each, and each
 * month's spending against the org's monthly limit in force then (budget against actual).
 */
import { useState } from 'react';
import { BarList } from '../components/charts.tsx';
import { Await, Panel } from '../components/states.tsx';
import { useOrg } from '../sessionContext.tsx';
import type { Figures, Unit } from '../types.ts';
import { spendText } from '../units.ts';
import { useApi } from '../useApi.ts';

interface MonthLimit {
  alert_threshold: string | null;
  allowed_limit: string | null;
  spent: string;
  used_percent: string | null;
  status: 'ok' | 'alert' | 'exceeded';
}

interface Monthly {
  year: number;
  unit: Unit;
  currency: string;
  total: Figures;
  previous_year_total: Figures;
  data: (Figures & { month: string; limit: MonthLimit | null; previous_year: Figures & { month: string } })[];
}

const LIMIT_STATUS = {
  ok: { tone: '', label: null },
  alert: { tone: 'tone-warn', label: 'Past alert threshold' },
  exceeded: { tone: 'tone-error', label: 'Over limit' },
} as const;

export function MonthlyScreen() {
  const { org, formats } = useOrg();
  const [year, setYear] = useState(() => new Date().getFullYear());
  const monthly = useApi<Monthly>(`/v1/orgs/${org.id}/usage/monthly`, { year });
  return (
    <Panel
      title={`Monthly history ${year}`}
      actions={
        <fieldset className="segmented">
          <legend className="sr-only">Year</legend>
          <button type="button" onClick={() => setYear(year - 1)}>
            ← {year - 1}
          </button>
          <button type="button" onClick={() => setYear(year + 1)} disabled={year >= new Date().getFullYear()}>
            {year + 1} →
          </button>
        </fieldset>
      }
    >
      <Await loaded={monthly} what="the monthly history">
        {(m) => (
          <>
            <p>
              {year}: <strong>{spendText(formats, m.unit, m.total)}</strong> (
              {formats.money(m.total.cost, m.currency)}) · {year - 1}:{' '}
              {spendText(formats, m.unit, m.previous_year_total)}
            </p>
            <BarList
              rows={m.data.map((row) => ({
                key: row.month,
                label: formats.month(row.month),
                value: m.unit === 'usd' ? row.cost : row.credits,
                text: `${spendText(formats, m.unit, row)} · ${formats.money(row.cost, m.currency)}`,
                note: `${year - 1}: ${spendText(formats, m.unit, row.previous_year)}`,
              }))}
            />
            <LimitsAgainstSpend monthly={m} />
          </>
        )}
      </Await>
    </Panel>
  );
}

/** The months that had a monthly limit, each with what was spent against it. */
function LimitsAgainstSpend({ monthly }: { monthly: Monthly }) {
  const { formats } = useOrg();
  const months = monthly.data.flatMap(({ month, limit }) => (limit ? [{ month, limit }] : []));
  if (months.length === 0) return null;
  const money = (value: string | null) => (value === null ? '—' : formats.money(value, monthly.currency));
  return (
    <table className="table">
      <caption>Monthly limit against spending</caption>
      <thead>
        <tr>
          <th scope="col">Month</th>
          <th scope="col" className="num">
            Allowed limit
          </th>
          <th scope="col" className="num">
            Alert threshold
          </th>
          <th scope="col" className="num">
            Spent
          </th>
        </tr>
      </thead>
      <tbody>
        {months.map(({ month, limit }) => (
          <tr key={month}>
            <th scope="row">{formats.month(month)}</th>
            <td className="num">{money(limit.allowed_limit)}</td>
            <td className="num">{money(limit.alert_threshold)}</td>
            <td className={`num ${LIMIT_STATUS[limit.status].tone}`}>
              {money(limit.spent)}
              {limit.used_percent !== null && ` (${formats.percent(limit.used_percent)})`}
              {LIMIT_STATUS[limit.status].label && (
                <span className="tag">{LIMIT_STATUS[limit.status].label}</span>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
