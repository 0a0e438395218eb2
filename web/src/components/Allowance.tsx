/**
 * The allowance bar (monthly then bonus credits used of those granted, what remains) and, once the
 * org set an alert threshold or an allowed limit, its month's spend against them on a bar of its
 * own (money per month: the two ticks measure what the allowance bar does not), or for a BYOM org its
 * month's spend against its cap; the cycle cards and the run-out warning. Every figure is the API's.
 */
import { allowanceUsed } from '../allowance.ts';
import { compareDecimal, leftOf, ratio } from '../decimal.ts';
import { Link } from '../router.tsx';
import { useOrg } from '../sessionContext.tsx';
import type { Balance, Limits } from '../types.ts';

export function AllowanceBar({ balance, limits }: { balance: Balance; limits: Limits }) {
  // A BYOM org has no credits: its bar is its spend against the monthly cap, in USD.
  if (balance.unit === 'usd') return <MonthSpendBar limits={limits} cap="spend cap" />;
  const limited = limits.alert_threshold !== null || limits.allowed_limit !== null;
  return (
    <>
      <CreditsBar balance={balance} />
      {limited && <MonthSpendBar limits={limits} cap="allowed limit" />}
    </>
  );
}

function CreditsBar({ balance }: { balance: Balance }) {
  const { formats } = useOrg();
  const { used, granted } = allowanceUsed(balance);
  const unitLabel = (value: string) => `${formats.credits(value)} credits`;
  return (
    <div className="allowance">
      <div className="allowance-head">
        <span>
          <strong>{unitLabel(balance.cycle.spent_credits)}</strong> used this cycle
        </span>
        <span>
          <strong>{unitLabel(balance.remaining_credits)}</strong> remaining
        </span>
      </div>
      {/* biome-ignore lint/a11y/useSemanticElements: <meter> cannot show monthly and bonus segments. */}
      <div
        className="allowance-track"
        role="meter"
        aria-label="Allowance used"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(Math.min(1, ratio(used, granted)) * 100)}
      >
        <div
          className="seg seg-monthly"
          style={{ width: `${ratio(balance.monthly.used_credits, granted) * 100}%` }}
        />
        <div
          className="seg seg-bonus"
          style={{ width: `${ratio(balance.bonus.used_credits, granted) * 100}%` }}
        />
      </div>
      <ul className="allowance-legend">
        <li>
          <span className="swatch seg-monthly" aria-hidden="true" /> Monthly credits:{' '}
          {unitLabel(balance.monthly.used_credits)} of {unitLabel(balance.monthly.granted_credits)}
        </li>
        <li>
          <span className="swatch seg-bonus" aria-hidden="true" /> Bonus and purchased credits:{' '}
          {unitLabel(balance.bonus.used_credits)} of {unitLabel(balance.bonus.granted_credits)}
        </li>
        {compareDecimal(balance.overage_credits, '0') > 0 && (
          <li className="overage">
            <span className="swatch seg-overage" aria-hidden="true" /> Overage:{' '}
            {unitLabel(balance.overage_credits)} ({formats.money(balance.overage_amount, balance.currency)})
            used beyond the credits granted
          </li>
        )}
      </ul>
    </div>
  );
}

/** What the month's cap is called, and what reaching it means, by who pays the provider. */
const CAPS = {
  'spend cap': {
    label: 'Spend cap',
    meter: 'Spend cap used',
    reached:
      'The spend cap is reached: new requests are blocked until next month or until an admin raises it.',
  },
  'allowed limit': {
    label: 'Allowed limit',
    meter: 'Allowed limit used',
    reached: 'The allowed limit is reached: credit-consuming features are blocked.',
  },
} as const;
type CapName = keyof typeof CAPS;

/**
 * The month's spend against the org's allowed limit (for a BYOM org, its spend cap at provider cost),
 * with the alert threshold and the cap as ticks, in the currency limits are set in.
 */
function MonthSpendBar({ limits, cap: capName }: { limits: Limits; cap: CapName }) {
  const { formats } = useOrg();
  const money = (value: string) => formats.money(value, limits.currency);
  const cap = limits.allowed_limit;
  const threshold = limits.alert_threshold;
  // What the bar measures the spend against: the cap, else the alert threshold.
  const measure = cap ?? threshold;
  const state =
    limits.status === 'exceeded' ? 'over-limit' : limits.status === 'alert' ? 'over-threshold' : '';
  return (
    <div className={`allowance ${state}`}>
      <div className="allowance-head">
        <span>
          <strong>{money(limits.spent)}</strong> spent this month
        </span>
        <span>
          {cap ? (
            <>
              <strong>{money(leftOf(cap, limits.spent))}</strong> left of the {money(cap)} {capName}
            </>
          ) : (
            `No ${capName} set`
          )}
        </span>
      </div>
      {measure && (
        <>
          <MonthSpendTrack limits={limits} measure={measure} capName={capName} />
          <ul className="allowance-legend">
            {threshold && (
              <li>
                <span className="swatch tick-alert" aria-hidden="true" /> Alert threshold: {money(threshold)}
              </li>
            )}
            {cap && (
              <li>
                <span className="swatch tick-limit" aria-hidden="true" /> {CAPS[capName].label}: {money(cap)}
              </li>
            )}
          </ul>
        </>
      )}
      {limits.status === 'alert' && (
        <p className="note warn">Spending has passed the alert threshold for this month.</p>
      )}
      {limits.status === 'exceeded' && (
        <p className="note error" role="alert">
          {CAPS[capName].reached} <Link href="/usage/quota">What now?</Link>
        </p>
      )}
    </div>
  );
}

/**
 * The bar under the month's spend: it runs up to `measure`, or up to the spend once past it, so the
 * ticks stay on the bar. Its meter value is the spend's share of `measure`, in percent.
 */
function MonthSpendTrack({
  limits,
  measure,
  capName,
}: {
  limits: Limits;
  measure: string;
  capName: CapName;
}) {
  const { formats } = useOrg();
  const money = (value: string) => formats.money(value, limits.currency);
  const { spent, alert_threshold: threshold, allowed_limit: cap } = limits;
  const end = compareDecimal(spent, measure) > 0 ? spent : measure;
  const at = (amount: string) => ratio(amount, end) * 100;
  const percent = Math.round(ratio(spent, measure) * 100);
  const thresholdText = cap && threshold ? `, alert threshold ${money(threshold)}` : '';
  return (
    // biome-ignore lint/a11y/useSemanticElements: <meter> cannot show the threshold and limit ticks.
    <div
      className="allowance-track"
      role="meter"
      aria-label={cap ? CAPS[capName].meter : 'Alert threshold used'}
      aria-valuemin={0}
      aria-valuemax={Math.max(100, percent)}
      aria-valuenow={percent}
      aria-valuetext={`${money(spent)} of the ${money(measure)} ${cap ? capName : 'alert threshold'}${thresholdText}`}
    >
      <div className="seg seg-monthly" style={{ width: `${at(spent)}%` }} />
      {threshold && (
        <div
          className="tick tick-alert"
          style={{ left: `${at(threshold)}%` }}
          title={`Alert threshold: ${money(threshold)}`}
        />
      )}
      {cap && (
        <div
          className="tick tick-limit"
          style={{ left: `${at(cap)}%` }}
          title={`${CAPS[capName].label}: ${money(cap)}`}
        />
      )}
    </div>
  );
}

/** What the run-out warning says runs out, by what runs out first. */
const RUN_OUT = {
  credits: 'your credits run out',
  allowed_limit: "spending reaches this month's allowed limit",
  spend_cap: 'spending reaches the cap',
} as const;

export function CycleCards({ balance }: { balance: Balance }) {
  const { formats, can } = useOrg();
  const { cycle } = balance;
  const average =
    balance.unit === 'usd'
      ? formats.money(cycle.average_per_day_credits, 'USD')
      : formats.credits(cycle.average_per_day_credits);
  // Under half a day rounds to 0: "within a day", unless nothing is left at all.
  const days = (n: number) => (n === 0 ? 'less than a day' : n === 1 ? '1 day' : `${formats.count(n)} days`);
  const usd = balance.unit === 'usd';
  const runOut = !usd && compareDecimal(balance.available_credits, '0') <= 0;
  // Days after today: none left means today is the cycle's last day, however many hours remain.
  const left =
    cycle.days_remaining === 0
      ? 'today is the last day of this cycle'
      : `${days(cycle.days_remaining)} ${cycle.days_remaining === 1 ? 'is' : 'are'} left in this cycle`;
  return (
    <>
      {cycle.runs_out_before_cycle_end && (
        <div className="note warn banner" role="status">
          {runOut
            ? `Your credits have run out, and ${left}.`
            : `At the current rate ${RUN_OUT[cycle.run_out_by ?? 'credits']} in ${days(cycle.run_out_in_days ?? 0)}, before this cycle ends (${left}).`}{' '}
          {cycle.run_out_by === 'spend_cap' || cycle.run_out_by === 'allowed_limit'
            ? can('limits:write') && (
                <Link href="/usage/limits">{usd ? 'Review the cap' : 'Review the limit'}</Link>
              )
            : can('billing:purchase') && <Link href="/usage/payments">Upgrade or top up</Link>}
        </div>
      )}
      <dl className="cards cycle-cards">
        <div className="card">
          <dt>Days remaining</dt>
          <dd>{formats.count(cycle.days_remaining)}</dd>
        </div>
        <div className="card">
          <dt>Days elapsed</dt>
          <dd>{formats.count(cycle.days_elapsed)}</dd>
        </div>
        <div className="card">
          <dt>Avg per day</dt>
          <dd>{average}</dd>
        </div>
        <div className="card">
          <dt>Run out in</dt>
          <dd>
            {runOut
              ? 'Run out'
              : cycle.run_out_in_days === null
                ? 'Not at this rate'
                : days(cycle.run_out_in_days)}
          </dd>
        </div>
      </dl>
    </>
  );
}
