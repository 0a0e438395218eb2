/**
 * A table cell with a spend in the org's unit and, when it is in credits, its money under it;
 * `label` names its column where a phone shows the row as a card (`.table.cards`).
 */
import { useOrg } from '../sessionContext.tsx';
import type { Figures, Unit } from '../types.ts';
import { moneyNote, spendText } from '../units.ts';

export function SpendCell({
  unit,
  figures,
  currency,
  label,
}: {
  unit: Unit;
  figures: Figures;
  currency?: string;
  label?: string;
}) {
  const { formats } = useOrg();
  const money = moneyNote(formats, unit, figures, currency);
  return (
    <td className="num" data-label={label}>
      {spendText(formats, unit, figures)}
      {money && <div className="muted">{money}</div>}
    </td>
  );
}
