/** Month-by-month totals for a year, with the same month of the year before beside each. */
import { useState } from 'react';
import { BarList } from '../components/charts.tsx';
import { Await, Panel } from '../components/states.tsx';
import { useOrg } from '../sessionContext.tsx';
import type { Figures, Unit } from '../types.ts';
import { spendText } from '../units.ts';
import { useApi } from '../useApi.ts';

interface Monthly {
  year: number;
  unit: Unit;
  currency: string;
  total: Figures;
  previous_year_total: Figures;
  data: (Figures & { month: string; previous_year: Figures & { month: string } })[];
}

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
          </>
        )}
      </Await>
    </Panel>
  );
}
