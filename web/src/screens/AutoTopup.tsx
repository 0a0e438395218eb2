/** Automatic top-up: below a threshold, buy up to a target, within a monthly cap (shown when the API offers it). */
import { type FormEvent, useEffect, useState } from 'react';
import { ErrorNote, Panel } from '../components/states.tsx';
import { compareDecimal, isDecimal } from '../decimal.ts';
import { useOrg } from '../sessionContext.tsx';
import { useApi } from '../useApi.ts';

interface AutoTopup {
  enabled: boolean;
  threshold_credits: string;
  target_credits: string;
  monthly_cap: string;
  currency: string;
  payment_method: string | null;
  purchased_this_month: string;
  disabled_reason: string | null;
}

type Fields = { threshold: string; target: string; cap: string };

/** Field errors: positive amounts, the target above the threshold. */
export function autoTopupProblems({ threshold, target, cap }: Fields): Partial<Fields> {
  const problems: Partial<Fields> = {};
  const positive = (value: string) => isDecimal(value) && compareDecimal(value, '0') > 0;
  if (!positive(threshold)) problems.threshold = 'Enter a number of credits, such as 500.';
  if (!positive(target)) problems.target = 'Enter a number of credits, such as 2000.';
  else if (!problems.threshold && compareDecimal(target, threshold) <= 0)
    problems.target = 'The target must be above the threshold.';
  if (!/^\d+(\.\d{1,2})?$/.test(cap) || compareDecimal(cap, '0') <= 0)
    problems.cap = 'Enter an amount with at most two decimals, such as 200.';
  return problems;
}

export function AutoTopupPanel() {
  const { org, api, formats, can } = useOrg();
  const settings = useApi<AutoTopup>(`/v1/orgs/${org.id}/auto_topup`);
  const [enabled, setEnabled] = useState(false);
  const [fields, setFields] = useState<Fields>({ threshold: '', target: '', cap: '' });
  const [error, setError] = useState<Error | null>(null);
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    if (!settings.data) return;
    setEnabled(settings.data.enabled);
    setFields({
      threshold: settings.data.threshold_credits,
      target: settings.data.target_credits,
      cap: settings.data.monthly_cap,
    });
  }, [settings.data]);
  // Not offered by this Tally, or not for this role: no panel.
  if (!can('billing:purchase') || settings.error?.status === 404 || !settings.data) return null;
  const problems = enabled ? autoTopupProblems(fields) : {};
  const blocked = Object.keys(problems).length > 0;
  const save = async (event: FormEvent) => {
    event.preventDefault();
    if (blocked) return;
    setError(null);
    try {
      await api.send('PUT', `/v1/orgs/${org.id}/auto_topup`, {
        enabled,
        threshold_credits: fields.threshold || '0',
        target_credits: fields.target || '0',
        monthly_cap: fields.cap || '0',
      });
      setSaved(true);
      settings.reload();
    } catch (e) {
      setError(e as Error);
    }
  };
  const field = (name: keyof Fields, label: string) => (
    <div className="field">
      <label htmlFor={`auto-${name}`}>{label}</label>
      <input
        id={`auto-${name}`}
        inputMode="decimal"
        value={fields[name]}
        disabled={!enabled}
        onChange={(e) => {
          setFields({ ...fields, [name]: e.target.value });
          setSaved(false);
        }}
        aria-invalid={Boolean(problems[name])}
        aria-describedby={`auto-${name}-error`}
      />
      <p id={`auto-${name}-error`} className="field-error" role="alert">
        {problems[name]}
      </p>
    </div>
  );
  const s = settings.data;
  return (
    <Panel title="Automatic top-up">
      {s.disabled_reason && <p className="note warn">Turned off: {s.disabled_reason}</p>}
      <form onSubmit={save} className="form" noValidate>
        <label className="inline">
          <input
            type="checkbox"
            checked={enabled}
            onChange={(e) => {
              setEnabled(e.target.checked);
              setSaved(false);
            }}
          />{' '}
          Top up automatically when credits run low
        </label>
        {field('threshold', 'When available credits fall below')}
        {field('target', 'Buy enough to reach (credits)')}
        {field('cap', `At most per month (${s.currency})`)}
        <p className="muted">
          Bought automatically this month: {formats.money(s.purchased_this_month, s.currency)}.{' '}
          {s.payment_method
            ? `Pays with: ${s.payment_method === 'local' ? 'the test payment provider' : 'the saved card'}.`
            : 'No card saved yet: it is saved at your next top-up.'}
        </p>
        {error && <ErrorNote error={error} />}
        <button type="submit" className="primary" disabled={blocked}>
          Save automatic top-up
        </button>
        {saved && (
          <span className="saved" role="status">
            Saved
          </span>
        )}
      </form>
    </Panel>
  );
}
