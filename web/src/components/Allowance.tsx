/**
 * The allowance bar (monthly then bonus credits used, what remains) with the month's alert threshold and
 * allowed limit as ticks, or for a BYOM org its month's spend against its cap; the cycle cards and the
 * run-out warning. Every figure is the API's.
 */
import { allowanceUsed } from '../allowance.ts';
import { leftOf, ratio } from '../decimal.ts';
import { Link } from '../router.tsx';
import { useOrg } from '../sessionContext.tsx';
import type { Balance, Limits } from '../types.ts';

export function AllowanceBar({ balance, limits }: { balance: Balance; limits: Limits }) {
  // A BYOM org has no credits: its bar is its spend against the monthly cap, in USD.
  if (balance.unit === 'usd') return <SpendCapBar limits={limits} />;
  return <CreditsBar balance={balance} limits={limits} />;
}

function CreditsBar({ balance, limits }: { balance: Balance; limits: Limits }) {
  const { formats, org } = useOrg();
  const credits = balance.unit === 'credits';
  // Limits are money per month; credits convert at the org's credit value (for drawing the ticks only).
  const inCredits = (amount: string) =>
    credits ? String(Number(amount) / Number(org.credit_value)) : amount;
  const { used, granted: total } = allowanceUsed(balance);
  const ticks = [
    { name: 'Alert threshold', amount: limits.alert_threshold, className: 'tick-alert' },
    { name: 'Allowed limit', amount: limits.allowed_limit, className: 'tick-limit' },
  ].filter((t): t is { name: string; amount: string; className: string } => t.amount !== null);
  const scale = String(Math.max(Number(total), ...ticks.map((t) => Number(inCredits(t.amount)))));
  const state =
    limits.status === 'exceeded' ? 'over-limit' : limits.status === 'alert' ? 'over-threshold' : '';
  const remainingToLimit = limits.allowed_limit ? leftOf(limits.allowed_limit, limits.spent) : null;
  const unitLabel = (value: string) =>
    credits ? `${formats.credits(value)} credits` : formats.money(value, 'USD');
  return (
    <div className={`allowance ${state}`}>
      <div className="allowance-head">
        <span>
          <strong>{unitLabel(balance.cycle.spent_credits)}</strong> used this cycle
        </span>
        <span>
          <strong>{unitLabel(balance.remaining_credits)}</strong> remaining
        </span>
      </div>
      {/* biome-ignore lint/a11y/useSemanticElements: <meter> cannot show monthly and bonus segments with limit ticks. */}
      <div
        className="allowance-track"
        role="meter"
        aria-label="Allowance used"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(Math.min(1, ratio(used, total)) * 100)}
      >
        <div
          className="seg seg-monthly"
          style={{ width: `${ratio(balance.monthly.used_credits, scale) * 100}%` }}
        />
        <div
          className="seg seg-bonus"
          style={{ width: `${ratio(balance.bonus.used_credits, scale) * 100}%` }}
        />
        {ticks.map((tick) => (
          <div
            key={tick.name}
            className={`tick ${tick.className}`}
            style={{ left: `${Math.min(100, ratio(inCredits(tick.amount), scale) * 100)}%` }}
            title={`${tick.name}: ${formats.money(tick.amount, limits.currency)}`}
          />
        ))}
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
        {ticks.map((tick) => (
          <li key={tick.name}>
            <span className={`swatch ${tick.className}`} aria-hidden="true" /> {tick.name}:{' '}
            {formats.money(tick.amount, limits.currency)}
          </li>
        ))}
        <li>
          Spent this month: {formats.money(limits.spent, limits.currency)}
          {remainingToLimit !== null && (
            <> · {formats.money(remainingToLimit, limits.currency)} left before the limit</>
          )}
        </li>
      </ul>
      {limits.status === 'alert' && (
        <p className="note warn">Spending has passed the alert threshold for this month.</p>
      )}
      {limits.status === 'exceeded' && (
        <p className="note error" role="alert">
          The allowed limit is reached: credit-consuming features are blocked.{' '}
          <Link href="/usage/quota">What now?</Link>
        </p>
      )}
    </div>
  );
}

/** A BYOM org's month: its spend at provider cost against the cap its admin set, if any. */
function SpendCapBar({ limits }: { limits: Limits }) {
  const { formats } = useOrg();
  const usd = (value: string) => formats.money(value, limits.currency);
  const cap = limits.allowed_limit;
  const state =
    limits.status === 'exceeded' ? 'over-limit' : limits.status === 'alert' ? 'over-threshold' : '';
  const left = cap ? leftOf(cap, limits.spent) : '0';
  return (
    <div className={`allowance ${state}`}>
      <div className="allowance-head">
        <span>
          <strong>{usd(limits.spent)}</strong> spent this month
        </span>
        <span>
          {cap ? (
            <>
              <strong>{usd(left)}</strong> left of the {usd(cap)} cap
            </>
          ) : (
            'No spend cap set'
          )}
        </span>
      </div>
      {cap && (
        // biome-ignore lint/a11y/useSemanticElements: <meter> cannot show the alert threshold tick.
        <div
          className="allowance-track"
          role="meter"
          aria-label="Spend cap used"
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={Math.round(Math.min(1, ratio(limits.spent, cap)) * 100)}
        >
          <div
            className="seg seg-monthly"
            style={{ width: `${Math.min(1, ratio(limits.spent, cap)) * 100}%` }}
          />
          {limits.alert_threshold && (
            <div
              className="tick tick-alert"
              style={{ left: `${Math.min(1, ratio(limits.alert_threshold, cap)) * 100}%` }}
              title={`Alert threshold: ${usd(limits.alert_threshold)}`}
            />
          )}
        </div>
      )}
      {limits.status === 'exceeded' && (
        <p className="note error" role="alert">
          The spend cap is reached: new requests are blocked until next month or until an admin raises it.{' '}
          <Link href="/usage/quota">What now?</Link>
        </p>
      )}
    </div>
  );
}

export function CycleCards({ balance }: { balance: Balance }) {
  const { formats, can } = useOrg();
  const { cycle } = balance;
  const average =
    balance.unit === 'usd'
      ? formats.money(cycle.average_per_day_credits, 'USD')
      : formats.credits(cycle.average_per_day_credits);
  return (
    <>
      {cycle.runs_out_before_cycle_end && (
        <div className="note warn banner" role="status">
          At the current rate {balance.unit === 'usd' ? 'spending reaches the cap' : 'your credits run out'}{' '}
          in {formats.count(cycle.run_out_in_days ?? 0)} days, before this cycle ends in{' '}
          {formats.count(cycle.days_remaining)} days.{' '}
          {balance.unit === 'usd'
            ? can('limits:write') && <Link href="/usage/limits">Review the cap</Link>
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
            {cycle.run_out_in_days === null
              ? 'Not at this rate'
              : `${formats.count(cycle.run_out_in_days)} days`}
          </dd>
        </div>
      </dl>
    </>
  );
}
