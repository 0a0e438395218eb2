/** A table cell with a spend in the org's unit and, when it is in credits, its money under it. */
import { useOrg } from '../sessionContext.tsx';
import type { Figures, Unit } from '../types.ts';
import { moneyNote, spendText } from '../units.ts';

export function SpendCell({ unit, figures, currency }: { unit: Unit; figures: Figures; currency?: string }) {
  const { formats } = useOrg();
  const money = moneyNote(formats, unit, figures, currency);
  return (
    <td className="num">
      {spendText(formats, unit, figures)}
      {money && <div className="muted">{money}</div>}
    </td>
  );
}
