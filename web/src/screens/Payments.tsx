/**
 * Top-ups (dialog with presets and a custom amount), the return from checkout, and the payments
 * list: the payments that went through, and on request the checkouts not completed.
 */
import { type FormEvent, useCallback, useEffect, useRef, useState } from 'react';
import { saveBlob } from '../api.ts';
import { Await, ErrorNote, ListFoot, Panel } from '../components/states.tsx';
import { compareDecimal } from '../decimal.ts';
import { navigate, useLocation } from '../router.tsx';
import { useOrg } from '../sessionContext.tsx';
import type { Balance } from '../types.ts';
import { useApi } from '../useApi.ts';
import { usePagedList } from '../usePagedList.ts';
import { AutoTopupPanel } from './AutoTopup.tsx';

const PRESETS = ['10', '50', '100', '300', '500', '1000'];

interface Payment {
  id: string;
  provider: 'stripe' | 'local';
  kind?: 'checkout' | 'auto_topup';
  status: 'pending' | 'completed' | 'failed' | 'refunded' | 'disputed';
  amount: string;
  currency: string;
  credits: string;
  invoice_number: string | null;
  invoice_url: string | null;
  created_at: string;
  completed_at: string | null;
}

/** Why a custom amount cannot be paid, or null when it can. */
export function amountProblem(text: string): string | null {
  const value = text.trim();
  if (!value) return 'Enter an amount.';
  if (!/^\d+(\.\d{1,2})?$/.test(value))
    return 'Enter a number with at most two decimals, such as 25 or 25.50.';
  if (compareDecimal(value, '1') < 0) return 'The smallest top-up is 1.';
  return null;
}

/**
 * Payment pages (Stripe Checkout) refuse to be framed: when the usage page runs inside the host app's
 * iframe, checkout opens in a new tab and this frame follows the payment until the credits arrive.
 */
const framed = () => window.self !== window.top;

export function TopUpButton() {
  const { can, org, api, formats } = useOrg();
  const dialog = useRef<HTMLDialogElement>(null);
  const [choice, setChoice] = useState('50');
  const [custom, setCustom] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [busy, setBusy] = useState(false);
  const [saveCard, setSaveCard] = useState(false);
  /** A checkout the browser would not open in a new tab: offered as a link to click. */
  const [blocked, setBlocked] = useState<{ url: string; payment: string } | null>(null);
  if (!can('billing:purchase') || org.billing_mode !== 'credits') return null;
  const amount = choice === 'custom' ? custom.trim() : choice;
  const pay = async (event: FormEvent) => {
    event.preventDefault();
    const invalid = choice === 'custom' ? amountProblem(custom) : null;
    setProblem(invalid);
    if (invalid) return;
    setBusy(true);
    setError(null);
    // Opened now, while the click still counts as one (a tab opened after the API answers is blocked).
    const tab = framed() ? window.open('', '_blank') : null;
    try {
      const session = await api.send<{ id: string; url: string | null }>(
        'POST',
        `/v1/orgs/${org.id}/checkout_sessions`,
        saveCard ? { amount, save_payment_method: true } : { amount },
      );
      if (!session.url) throw new Error('The payment provider gave no checkout page.');
      if (!framed()) return location.assign(session.url);
      if (tab) {
        // The checkout page gets no handle on this frame.
        tab.opener = null;
        tab.location.href = session.url;
        follow(session.id);
      } else {
        setBlocked({ url: session.url, payment: session.id });
      }
    } catch (e) {
      tab?.close();
      const failure = e as Error & { param?: string };
      if (failure.param === 'amount') setProblem(failure.message);
      else setError(failure);
    }
    setBusy(false);
  };
  /** The frame waits on the payments page for the payment made in the other tab. */
  const follow = (payment: string) => {
    dialog.current?.close();
    setBlocked(null);
    navigate(`/usage/payments?payment=${payment}&checkout=opened`);
  };
  return (
    <>
      <button type="button" className="primary" onClick={() => dialog.current?.showModal()}>
        Top up credits
      </button>
      <dialog ref={dialog} aria-labelledby="topup-title" className="dialog">
        <form onSubmit={pay} noValidate>
          <h2 id="topup-title">Top up credits</h2>
          <fieldset>
            <legend>Amount ({org.currency})</legend>
            <div className="presets">
              {PRESETS.map((preset) => (
                <label key={preset} className={choice === preset ? 'preset chosen' : 'preset'}>
                  <input
                    type="radio"
                    name="amount"
                    value={preset}
                    checked={choice === preset}
                    onChange={() => setChoice(preset)}
                  />
                  {formats.money(preset, org.currency)}
                </label>
              ))}
              <label className={choice === 'custom' ? 'preset chosen' : 'preset'}>
                <input
                  type="radio"
                  name="amount"
                  value="custom"
                  checked={choice === 'custom'}
                  onChange={() => setChoice('custom')}
                />
                Enter a custom amount
              </label>
            </div>
          </fieldset>
          {choice === 'custom' && (
            <div className="field">
              <label htmlFor="custom-amount">Custom amount ({org.currency})</label>
              <input
                id="custom-amount"
                inputMode="decimal"
                value={custom}
                onChange={(e) => {
                  setCustom(e.target.value);
                  setProblem(amountProblem(e.target.value));
                }}
                aria-invalid={Boolean(problem)}
                aria-describedby="custom-amount-error"
              />
              <p id="custom-amount-error" className="field-error" role="alert">
                {problem}
              </p>
            </div>
          )}
          <label className="inline">
            <input type="checkbox" checked={saveCard} onChange={(e) => setSaveCard(e.target.checked)} /> Save
            the card for automatic top-ups
          </label>
          {error && <ErrorNote error={error} />}
          {blocked && (
            <p className="note" role="status">
              The browser did not open the checkout tab.{' '}
              <a
                href={blocked.url}
                target="_blank"
                rel="noopener noreferrer"
                onClick={() => follow(blocked.payment)}
              >
                Open checkout in a new tab
              </a>
            </p>
          )}
          <div className="dialog-actions">
            <button type="button" className="secondary" onClick={() => dialog.current?.close()}>
              Cancel
            </button>
            <button type="submit" className="primary" disabled={busy}>
              {busy ? 'Opening checkout…' : 'Pay'}
            </button>
          </div>
        </form>
      </dialog>
    </>
  );
}

/**
 * After checkout: credits arrive when the payment is confirmed, so watch the payment until it is.
 * "opened" is a framed page whose checkout runs in another tab.
 */
function CheckoutReturn({
  paymentId,
  outcome,
  onSettled,
}: {
  paymentId: string;
  outcome: string;
  onSettled(): void;
}) {
  const { api, org, formats } = useOrg();
  const [payment, setPayment] = useState<Payment | null>(null);
  const watched = outcome === 'success' || outcome === 'opened';
  useEffect(() => {
    if (!watched) return;
    let stopped = false;
    const check = async () => {
      try {
        const current = await api.get<Payment>(`/v1/orgs/${org.id}/payments/${paymentId}`);
        if (stopped) return;
        setPayment(current);
        if (current.status === 'pending') setTimeout(check, 2000);
        else onSettled();
      } catch {
        if (!stopped) setTimeout(check, 5000);
      }
    };
    check();
    return () => {
      stopped = true;
    };
  }, [api, org.id, paymentId, watched, onSettled]);
  if (!watched) return <p className="note">Checkout was cancelled; nothing was charged.</p>;
  if (payment?.status === 'completed') {
    return (
      <p className="note ok" role="status">
        Payment received: {formats.credits(payment.credits)} credits were added to your balance.
      </p>
    );
  }
  if (payment && payment.status !== 'pending') {
    return (
      <p className="note error">
        The payment is {STATUS_WORDS[payment.status].toLowerCase()}; no credits were added.
      </p>
    );
  }
  return (
    <p className="note" role="status">
      {outcome === 'opened' ? 'Complete the payment in the checkout tab. ' : 'Thank you! '}
      Your credits will appear shortly, as soon as the payment is confirmed.
    </p>
  );
}

/**
 * Where checkout returns in a tab that holds no credential (the usage page was embedded in the host
 * app, which keeps its session): the page that opened checkout shows the credits.
 */
export function CheckoutReturnedTab({ outcome }: { outcome: string }) {
  return (
    <main className="standalone">
      <h1>{outcome === 'success' ? 'Thank you for your payment' : 'Checkout was cancelled'}</h1>
      <p role="status">
        {outcome === 'success'
          ? 'Your credits will appear shortly on your usage page, as soon as the payment is confirmed.'
          : 'Nothing was charged.'}{' '}
        You can close this tab and go back to the application you came from.
      </p>
      <button type="button" className="secondary" onClick={() => window.close()}>
        Close this tab
      </button>
    </main>
  );
}

/** What the org has to spend, refreshed when a payment settles. */
function AvailableCredits({ generation }: { generation: number }) {
  const { org, formats } = useOrg();
  const balance = useApi<Balance>(`/v1/orgs/${org.id}/balance`, { _: generation || undefined });
  if (!balance.data) return null;
  return (
    <p className="available">
      Available:{' '}
      <strong data-testid="payments-available">{formats.credits(balance.data.available_credits)}</strong>{' '}
      credits
    </p>
  );
}

/**
 * What a payment's status means to the buyer. A checkout left unpaid until it expired is `failed`
 * to the API, but nothing went wrong with a card: "Not completed" covers both.
 */
const STATUS_WORDS: Record<Payment['status'], string> = {
  pending: 'Awaiting payment',
  completed: 'Paid',
  failed: 'Not completed',
  refunded: 'Refunded',
  disputed: 'Disputed',
};

/** The payments that went through, which the list shows unless asked for unfinished checkouts too. */
const WENT_THROUGH = 'completed,refunded,disputed';

export function PaymentsScreen() {
  const { org, api, formats } = useOrg();
  const url = useLocation();
  const paymentId = url.searchParams.get('payment');
  const outcome = url.searchParams.get('checkout');
  const [settled, setSettled] = useState(0);
  const [unfinished, setUnfinished] = useState(false);
  const payments = usePagedList<Payment>(`/v1/orgs/${org.id}/payments`, {
    limit: 100,
    status: unfinished ? undefined : WENT_THROUGH,
    _: settled || undefined,
  });
  const onSettled = useCallback(() => setSettled((n) => n + 1), []);
  const [error, setError] = useState<Error | null>(null);
  const invoice = async (payment: Payment) => {
    try {
      saveBlob(await api.download(payment.invoice_url!));
    } catch (e) {
      setError(e as Error);
    }
  };
  return (
    <>
      {paymentId && outcome && (
        <div className="checkout-return">
          <CheckoutReturn key={paymentId} paymentId={paymentId} outcome={outcome} onSettled={onSettled} />
          <button type="button" className="link" onClick={() => navigate('/usage/payments', true)}>
            Dismiss
          </button>
        </div>
      )}
      <Panel title="Payments" actions={<TopUpButton />}>
        <AvailableCredits generation={settled} />
        <label className="inline">
          <input type="checkbox" checked={unfinished} onChange={(e) => setUnfinished(e.target.checked)} />{' '}
          Show checkouts not completed
        </label>
        {error && <ErrorNote error={error} />}
        <Await loaded={payments.first} what="payments">
          {() =>
            payments.rows.length === 0 ? (
              <p className="empty">{unfinished ? 'No top-ups yet.' : 'No completed payments yet.'}</p>
            ) : (
              <>
                <table className="table">
                  <thead>
                    <tr>
                      <th scope="col">Date</th>
                      <th scope="col" className="num">
                        Amount
                      </th>
                      <th scope="col" className="num">
                        Credits
                      </th>
                      <th scope="col">Status</th>
                      <th scope="col">Invoice</th>
                    </tr>
                  </thead>
                  <tbody>
                    {payments.rows.map((p) => (
                      <tr key={p.id}>
                        <td>{formats.dateTime(p.created_at)}</td>
                        <td className="num">{formats.money(p.amount, p.currency)}</td>
                        <td className="num">{formats.credits(p.credits)}</td>
                        <td>
                          <span className={`status status-${p.status}`}>{STATUS_WORDS[p.status]}</span>
                          {p.kind === 'auto_topup' && <span className="tag">automatic</span>}
                          {p.provider === 'local' && <span className="tag">test payment</span>}
                        </td>
                        <td>
                          {p.invoice_url ? (
                            <button type="button" className="link" onClick={() => invoice(p)}>
                              {p.invoice_number ?? 'Invoice'} (PDF)
                            </button>
                          ) : (
                            <span className="muted">—</span>
                          )}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
                <ListFoot list={payments} end="End of payments" />
              </>
            )
          }
        </Await>
      </Panel>
      <AutoTopupPanel />
    </>
  );
}
