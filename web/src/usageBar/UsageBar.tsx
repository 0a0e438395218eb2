/**
 * The compact usage bar the <tally-usage-bar> element frames in a host app's header: live balance,
 * a referral button from 50 % use and an upgrade button from 75 %. Buttons tell the host page (postMessage);
 * the element turns that into DOM events.
 */
import { useEffect } from 'react';
import { ratio } from '../decimal.ts';
import { useOrgChanges } from '../live.ts';
import { useOrg } from '../sessionContext.tsx';
import type { Balance } from '../types.ts';
import { useApi } from '../useApi.ts';

export const REFERRAL_FROM = 0.5;
export const UPGRADE_FROM = 0.75;

const tellHost = (type: 'tally:upgrade' | 'tally:referral') => parent.postMessage({ type }, '*');

export function UsageBar() {
  const { org, formats } = useOrg();
  const balance = useApi<Balance>(`/v1/orgs/${org.id}/balance`);
  useEffect(() => document.body.classList.add('bar-page'), []);
  // Pushed: the balance reloads as soon as the org's usage changes.
  useOrgChanges(org.id, balance.reload, { throttleMs: 1000, catchUpAtStart: true });
  const b = balance.data;
  if (!b) return <div className="usage-bar">{balance.error ? balance.error.message : 'Loading…'}</div>;
  const granted = String(Number(b.monthly.granted_credits) + Number(b.bonus.granted_credits));
  const used = ratio(b.consumed_credits, granted);
  const amount = (value: string) => (b.unit === 'usd' ? formats.money(value, 'USD') : formats.credits(value));
  return (
    <div className={`usage-bar ${used >= 1 ? 'over-limit' : used >= UPGRADE_FROM ? 'over-threshold' : ''}`}>
      <div className="usage-bar-text" aria-live="polite">
        <span data-testid="bar-available">{amount(b.available_credits)}</span>{' '}
        {b.unit === 'usd' ? 'left' : 'credits left'}
        <span className="muted"> · {Math.min(100, Math.round(used * 100))} % used</span>
      </div>
      {/* biome-ignore lint/a11y/useSemanticElements: <meter> cannot show the monthly and bonus segments. */}
      <div
        className="usage-bar-track"
        role="meter"
        aria-label="Credits used this cycle"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.min(100, Math.round(used * 100))}
      >
        <div
          className="seg seg-monthly"
          style={{ width: `${Math.min(1, ratio(b.monthly.used_credits, granted)) * 100}%` }}
        />
        <div
          className="seg seg-bonus"
          style={{ width: `${Math.min(1, ratio(b.bonus.used_credits, granted)) * 100}%` }}
        />
      </div>
      {used >= REFERRAL_FROM && (
        <button type="button" className="secondary" onClick={() => tellHost('tally:referral')}>
          Invite a friend
        </button>
      )}
      {used >= UPGRADE_FROM && (
        <button type="button" className="primary" onClick={() => tellHost('tally:upgrade')}>
          Upgrade
        </button>
      )}
    </div>
  );
}
