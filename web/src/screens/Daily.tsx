/** One day, itemized: each operation with its billing unit, calls, credits and cost. */
import { Await, Panel } from '../components/states.tsx';
import { Link, useLocation } from '../router.tsx';
import { overviewHref } from '../session.ts';
import { useOrg } from '../sessionContext.tsx';
import type { Figures, Unit } from '../types.ts';
import { moneyNote, spendText } from '../units.ts';
import { useApi } from '../useApi.ts';

interface DayItems {
  date: string;
  unit: Unit;
  currency: string;
  total: Figures;
  truncated: boolean;
  data: (Figures & {
    category: string;
    operation: string;
    component: string;
    quantity: string;
    billing_unit: string;
    unit_price: string;
  })[];
}

export function DailyScreen({ date }: { date: string }) {
  const { org, formats } = useOrg();
  // The overview's user filter comes along in the link, so the day is itemized for that user only.
  const member = useLocation().searchParams.get('member') ?? undefined;
  const valid = /^\d{4}-\d{2}-\d{2}$/.test(date);
  const day = useApi<DayItems>(valid ? `/v1/orgs/${org.id}/usage/days/${date}` : null, { member });
  if (!valid)
    return (
      <p className="empty">
        That is not a day. <Link href={overviewHref()}>Back to the overview</Link>
      </p>
    );
  return (
    <Panel
      title={`Daily detail: ${formats.day(date)}`}
      actions={<Link href={overviewHref()}>Back to the overview</Link>}
    >
      {member && (
        <p className="muted">
          One user's usage, as chosen on the overview.{' '}
          <Link href={`/usage/daily/${date}`}>Show all users</Link>
        </p>
      )}
      <Await loaded={day} what="the day's entries">
        {(d) => (d.data.length === 0 ? <p className="empty">No usage on this day.</p> : <DayTable day={d} />)}
      </Await>
    </Panel>
  );
}

/**
 * The day's total and its entries. The entries' amounts are rounded together, so those shown add
 * up to the total shown (each rounded on its own could miss it by a cent); when only the largest
 * entries are listed, each is rounded on its own.
 */
function DayTable({ day: d }: { day: DayItems }) {
  const { formats } = useOrg();
  const costs = formats.moneyParts(
    d.total.cost,
    d.data.map((item) => item.cost),
    d.currency,
  );
  // spendText and moneyNote show the day's cost through `money`: here they get the total as the
  // entries' costs were rounded with it (to four decimals when one is below one unit), so the
  // entries add up to the total above them.
  const totalFormats = { ...formats, money: () => costs.total };
  const money = moneyNote(totalFormats, d.unit, d.total, d.currency);
  const credits = formats.creditParts(
    d.total.credits,
    d.data.map((item) => item.credits),
  ).parts;
  return (
    <>
      <p>
        Total: <strong>{spendText(totalFormats, d.unit, d.total)}</strong>
        {money && <> ({money})</>}, {formats.count(d.total.calls)} calls
      </p>
      <div className="scroll">
        <table className="table cards">
          <thead>
            <tr>
              <th scope="col">Category</th>
              <th scope="col">Operation</th>
              <th scope="col" className="num">
                Unit price
              </th>
              <th scope="col" className="num">
                Quantity
              </th>
              <th scope="col" className="num">
                Calls
              </th>
              <th scope="col" className="num">
                Cost
              </th>
            </tr>
          </thead>
          <tbody>
            {d.data.map((item, i) => (
              <tr key={`${item.category}|${item.operation}|${item.component}`}>
                <td data-label="Category">{item.category}</td>
                <th scope="row">{item.operation}</th>
                <td className="num" data-label="Unit price">
                  {formats.price(item.unit_price, d.currency)} per {item.billing_unit}
                </td>
                <td className="num" data-label="Quantity">
                  {formats.credits(item.quantity)}
                </td>
                <td className="num" data-label="Calls">
                  {formats.count(item.calls)}
                </td>
                <td className="num" data-label="Cost">
                  {costs.parts[i]}
                  {d.unit === 'credits' && <div className="muted">{credits[i]} credits</div>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {d.truncated && <p className="muted">Only the largest entries are listed.</p>}
    </>
  );
}
