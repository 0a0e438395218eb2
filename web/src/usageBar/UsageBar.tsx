/**
 * The compact usage bar the <tally-usage-bar> element frames in a host app's header: live balance,
 * a referral button from 50 % use and an upgrade button from 75 %, or always for an org on the
 * free tier (a BYOM org: its month's spend against its cap, no buttons). Buttons tell the host
 * page (postMessage); the element turns that into DOM events.
 */
import { useEffect } from 'react';
import { allowanceUsed, shareUsed } from '../allowance.ts';
import { compareDecimal, leftOf, ratio } from '../decimal.ts';
import { useOrgChanges } from '../live.ts';
import { useOrg } from '../sessionContext.tsx';
import type { Balance, Limits } from '../types.ts';
import { useApi } from '../useApi.ts';

export const REFERRAL_FROM = 0.5;
export const UPGRADE_FROM = 0.75;

const tellHost = (type: 'tally:upgrade' | 'tally:referral') => parent.postMessage({ type }, '*');

export function UsageBar() {
  const { org, formats } = useOrg();
  const balance = useApi<Balance>(`/v1/orgs/${org.id}/balance`);
  // A BYOM org's bar is its month's spend against its cap.
  const byom = balance.data?.unit === 'usd';
  const limits = useApi<Limits>(byom ? `/v1/orgs/${org.id}/limits` : null);
  useEffect(() => document.body.classList.add('bar-page'), []);
  // Pushed: the figures reload as soon as the org's usage changes.
  const reload = () => {
    balance.reload();
    if (byom) limits.reload();
  };
  useOrgChanges(org.id, reload, { throttleMs: 1000, catchUpAtStart: true });
  const b = balance.data;
  if (!b || (byom && !limits.data)) {
    const error = balance.error ?? limits.error;
    return <div className="usage-bar">{error ? error.message : 'Loading…'}</div>;
  }
  const used = shareUsed(b, limits.data);
  const percent = used === null ? null : Math.min(100, Math.round(used * 100));
  const { granted } = allowanceUsed(b);
  const l = limits.data;
  const capLeft = l?.allowed_limit ? leftOf(l.allowed_limit, l.spent) : '0';
  const segments = byom
    ? [{ className: 'seg-monthly', share: used ?? 0 }]
    : [
        { className: 'seg-monthly', share: ratio(b.monthly.used_credits, granted) },
        { className: 'seg-bonus', share: ratio(b.bonus.used_credits, granted) },
      ];
  return (
    <div
      className={`usage-bar ${used === null ? '' : used >= 1 ? 'over-limit' : used >= UPGRADE_FROM ? 'over-threshold' : ''}`}
    >
      <div className="usage-bar-text" aria-live="polite">
        {byom && l ? (
          l.allowed_limit ? (
            <>
              <span data-testid="bar-available">{formats.money(capLeft, 'USD')}</span> left of the cap
            </>
          ) : (
            <>
              <span data-testid="bar-available">{formats.money(l.spent, 'USD')}</span> spent this month
            </>
          )
        ) : (
          <>
            <span data-testid="bar-available">{formats.credits(b.available_credits)}</span> credits left
            {compareDecimal(b.overage_credits, '0') > 0 && (
              <span className="over">
                {' '}
                · <span data-testid="bar-overage">{formats.credits(b.overage_credits)}</span> over
              </span>
            )}
          </>
        )}
        {percent !== null && <span className="muted"> · {formats.percent(String(percent))} used</span>}
      </div>
      {percent !== null && (
        // biome-ignore lint/a11y/useSemanticElements: <meter> cannot show the monthly and bonus segments.
        <div
          className="usage-bar-track"
          role="meter"
          aria-label={byom ? 'Spend cap used this month' : 'Credits used this cycle'}
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={percent}
        >
          {segments.map((s) => (
            <div
              key={s.className}
              className={`seg ${s.className}`}
              style={{ width: `${Math.min(1, s.share) * 100}%` }}
            />
          ))}
        </div>
      )}
      {/* Referrals earn credits and upgrades buy them: a BYOM org's cap is its admin's. */}
      {!byom && used !== null && used >= REFERRAL_FROM && (
        <button type="button" className="secondary" onClick={() => tellHost('tally:referral')}>
          Invite a friend
        </button>
      )}
      {!byom && (org.free_tier || (used !== null && used >= UPGRADE_FROM)) && (
        <button type="button" className="primary" onClick={() => tellHost('tally:upgrade')}>
          Upgrade
        </button>
      )}
    </div>
  );
}
