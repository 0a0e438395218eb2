/** What the org pays in, shown the same way everywhere: credits (with money), USD for BYOM, tokens for BYOK. */
import type { Formats } from './format.ts';
import type { Figures, Unit } from './types.ts';

export function spendText(formats: Formats, unit: Unit, figures: Figures): string {
  if (unit === 'usd') return formats.money(figures.cost, 'USD');
  if (unit === 'tokens') return `${formats.count(Number(figures.credits))} tokens`;
  return `${formats.credits(figures.credits)} credits`;
}

/** The currency equivalent under a credit figure (nothing to add for USD or token orgs). */
export function moneyNote(
  formats: Formats,
  unit: Unit,
  figures: Pick<Figures, 'cost'>,
  currency = formats.currency,
) {
  return unit === 'credits' ? formats.money(figures.cost, currency) : null;
}

/** The spend, with its money beside it when it is in credits (1,234 credits · €12.34). */
export function spendAndMoney(formats: Formats, unit: Unit, figures: Figures): string {
  const money = moneyNote(formats, unit, figures);
  return money ? `${spendText(formats, unit, figures)} · ${money}` : spendText(formats, unit, figures);
}

/** A bare amount in the unit, for chart axes and series values. */
export function unitValue(formats: Formats, unit: Unit) {
  return (value: string) =>
    unit === 'usd'
      ? formats.money(value, 'USD')
      : unit === 'tokens'
        ? formats.count(Number(value))
        : formats.credits(value);
}

/** The figure a chart draws for a point: credits, or the USD cost for BYOM. */
export const plotted = (unit: Unit, figures: { credits: string; cost: string }) =>
  unit === 'usd' ? figures.cost : figures.credits;

/** The kinds of usage that are not tokens, as an event's usage names them, singular and plural. */
const UNIT_NAMES = [
  ['images', 'image', 'images'],
  ['seconds', 'second', 'seconds'],
  ['requests', 'request', 'requests'],
  ['web_searches', 'web search', 'web searches'],
] as const;

/** What an event counted besides tokens, one phrase a kind: "3 images", "1 web search". */
export function otherUsageText(formats: Formats, usage: Partial<Record<string, number>>): string[] {
  return UNIT_NAMES.flatMap(([kind, one, many]) => {
    const n = usage[kind] ?? 0;
    return n > 0 ? [`${formats.count(n)} ${n === 1 ? one : many}`] : [];
  });
}
