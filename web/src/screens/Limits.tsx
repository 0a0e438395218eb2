/** The month's alert threshold and allowed limit (threshold <= limit, checked as you type), and budgets. */
import { type FormEvent, useState } from 'react';
import { Await, ErrorNote, ListFoot, Panel } from '../components/states.tsx';
import { compareDecimal, isDecimal, percentFloor } from '../decimal.ts';
import { useOrg } from '../sessionContext.tsx';
import type { Limits } from '../types.ts';
import { useApi } from '../useApi.ts';
import { usePagedList } from '../usePagedList.ts';

/** Field errors for the limits form: each amount positive, the threshold not above the limit. */
export function limitProblems(threshold: string, limit: string): { threshold?: string; limit?: string } {
  const problems: { threshold?: string; limit?: string } = {};
  const check = (value: string) =>
    value === ''
      ? null
      : !isDecimal(value) || compareDecimal(value, '0') <= 0
        ? 'Enter a positive amount, such as 250 or 99.50.'
        : null;
  const t = check(threshold);
  const l = check(limit);
  if (t) problems.threshold = t;
  if (l) problems.limit = l;
  if (!t && !l && threshold && limit && compareDecimal(threshold, limit) > 0) {
    problems.threshold = 'The alert threshold must not exceed the allowed limit.';
  }
  return problems;
}

export function LimitsScreen() {
  const { org, can } = useOrg();
  const limits = useApi<Limits>(`/v1/orgs/${org.id}/limits`);
  return (
    <>
      <Panel title="Monthly limits">
        <Await loaded={limits} what="the limits">
          {(l) =>
            can('limits:write') ? (
              <LimitsForm limits={l} onSaved={limits.reload} />
            ) : (
              <LimitsView limits={l} />
            )
          }
        </Await>
      </Panel>
      <Budgets />
    </>
  );
}

function LimitsView({ limits }: { limits: Limits }) {
  const { formats } = useOrg();
  const show = (v: string | null) => (v === null ? 'Not set' : formats.money(v, limits.currency));
  return (
    <dl className="cards">
      <div className="card">
        <dt>Alert threshold</dt>
        <dd>{show(limits.alert_threshold)}</dd>
      </div>
      <div className="card">
        <dt>Allowed limit</dt>
        <dd>{show(limits.allowed_limit)}</dd>
      </div>
      <div className="card">
        <dt>Spent this month</dt>
        <dd>{formats.money(limits.spent, limits.currency)}</dd>
      </div>
    </dl>
  );
}

function LimitsForm({ limits, onSaved }: { limits: Limits; onSaved(): void }) {
  const { api, org, formats } = useOrg();
  const [threshold, setThreshold] = useState(limits.alert_threshold ?? '');
  const [limit, setLimit] = useState(limits.allowed_limit ?? '');
  const [saved, setSaved] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const problems = limitProblems(threshold.trim(), limit.trim());
  const blocked = Boolean(problems.threshold || problems.limit);
  const save = async (event: FormEvent) => {
    event.preventDefault();
    if (blocked) return;
    setError(null);
    try {
      await api.send('PUT', `/v1/orgs/${org.id}/limits`, {
        alert_threshold: threshold.trim() || null,
        allowed_limit: limit.trim() || null,
      });
      setSaved(true);
      onSaved();
    } catch (e) {
      setError(e as Error);
    }
  };
  return (
    <form onSubmit={save} className="form" noValidate>
      <p>
        Spent this month: <strong>{formats.money(limits.spent, limits.currency)}</strong>. Leave a field empty
        for no threshold or no limit.
      </p>
      <div className="field">
        <label htmlFor="alert-threshold">Alert threshold ({limits.currency})</label>
        <input
          id="alert-threshold"
          inputMode="decimal"
          value={threshold}
          onChange={(e) => {
            setThreshold(e.target.value);
            setSaved(false);
          }}
          aria-invalid={Boolean(problems.threshold)}
          aria-describedby="alert-threshold-error"
        />
        <p id="alert-threshold-error" className="field-error" role="alert">
          {problems.threshold}
        </p>
      </div>
      <div className="field">
        <label htmlFor="allowed-limit">Allowed limit ({limits.currency})</label>
        <input
          id="allowed-limit"
          inputMode="decimal"
          value={limit}
          onChange={(e) => {
            setLimit(e.target.value);
            setSaved(false);
          }}
          aria-invalid={Boolean(problems.limit)}
          aria-describedby="allowed-limit-error"
        />
        <p id="allowed-limit-error" className="field-error" role="alert">
          {problems.limit}
        </p>
      </div>
      <p className="muted">
        When spending reaches the allowed limit, credit-consuming features stop until the limit is raised or
        the month ends.
      </p>
      {error && <ErrorNote error={error} />}
      <button type="submit" className="primary" disabled={blocked}>
        Save
      </button>
      {saved && (
        <span className="saved" role="status">
          Saved
        </span>
      )}
    </form>
  );
}

interface Budget {
  id: string;
  name: string;
  scope: { kind: string; id: string; label: string };
  period: string;
  amount: string;
  enforcement: string;
  current_period: { spent: string; held: string; remaining: string; status: keyof typeof BUDGET_STATUS };
}

/** Budgets a page of the table loads (Load more reads the next). */
const BUDGETS_PAGE = 100;

/** How a budget's spend shows at each level its alerts fire at (75, 90, 95 and 100 %). */
const BUDGET_STATUS = {
  ok: { tone: '', label: null },
  warning: { tone: 'tone-warn', label: 'Warning' },
  caution: { tone: 'tone-warn', label: 'Caution' },
  critical: { tone: 'tone-error', label: 'Critical' },
  exceeded: { tone: 'tone-error', label: 'Exceeded' },
} as const;

const SCOPES = [
  ['member', 'Member'],
  ['workspace', 'Workspace'],
  ['workspace_group', 'Workspace group'],
  ['project', 'Project'],
  ['api_key', 'API key'],
] as const;

/** What a budget covers, as "Member: Ada Lovelace" or "Workspace: platform". */
function scopeText(scope: Budget['scope']): string {
  const kind = SCOPES.find(([value]) => value === scope.kind)?.[1] ?? scope.kind;
  return `${kind}: ${scope.label}`;
}

function Budgets() {
  const { api, org, can, formats } = useOrg();
  const budgets = usePagedList<Budget>(`/v1/orgs/${org.id}/budgets`, { limit: BUDGETS_PAGE });
  const [form, setForm] = useState({
    name: '',
    kind: 'member',
    id: '',
    amount: '',
    period: 'month',
    enforcement: 'hard',
  });
  const [error, setError] = useState<Error | null>(null);
  const [fieldError, setFieldError] = useState('');
  const create = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    if (!form.name.trim() || !form.id.trim())
      return setFieldError('Give the budget a name and say what it covers.');
    if (!isDecimal(form.amount) || compareDecimal(form.amount, '0') <= 0)
      return setFieldError('Enter a positive amount.');
    setFieldError('');
    try {
      await api.send('POST', `/v1/orgs/${org.id}/budgets`, {
        name: form.name.trim(),
        scope: { kind: form.kind, id: form.id.trim() },
        amount: form.amount.trim(),
        period: form.period,
        enforcement: form.enforcement,
      });
      setForm({ ...form, name: '', id: '', amount: '' });
      budgets.first.reload();
    } catch (e) {
      setError(e as Error);
    }
  };
  const remove = async (id: string) => {
    try {
      await api.send('DELETE', `/v1/orgs/${org.id}/budgets/${id}`);
      // In place, so the pages read stay open.
      budgets.setRows((rows) => rows.filter((b) => b.id !== id));
    } catch (e) {
      setError(e as Error);
    }
  };
  const writable = can('limits:write');
  // A BYOM org's budgets are in USD at provider cost, as its limits.
  const currency = org.billing_mode === 'byom' ? 'USD' : org.currency;
  return (
    <Panel title="Budgets">
      <Await loaded={budgets.first} what="budgets">
        {() =>
          budgets.rows.length === 0 ? (
            <p className="empty">
              No budgets. A budget caps one member, workspace, group, project or API key.
            </p>
          ) : (
            <>
              <table className="table">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Covers</th>
                    <th scope="col" className="num">
                      Amount
                    </th>
                    <th scope="col" className="num">
                      Spent this period
                    </th>
                    <th scope="col">When reached</th>
                    {writable && <th scope="col">Remove</th>}
                  </tr>
                </thead>
                <tbody>
                  {budgets.rows.map((b) => (
                    <tr key={b.id}>
                      <th scope="row">{b.name}</th>
                      <td>{scopeText(b.scope)}</td>
                      <td className="num">
                        {formats.money(b.amount, currency)} per{' '}
                        {b.period === 'month' ? 'month' : 'billing cycle'}
                      </td>
                      <td className={`num ${BUDGET_STATUS[b.current_period.status].tone}`}>
                        {formats.money(b.current_period.spent, currency)} (
                        {formats.percent(String(percentFloor(b.current_period.spent, b.amount)))})
                        {BUDGET_STATUS[b.current_period.status].label && (
                          <span className="tag">{BUDGET_STATUS[b.current_period.status].label}</span>
                        )}
                      </td>
                      <td>{b.enforcement === 'hard' ? 'Block' : 'Alert only'}</td>
                      {writable && (
                        <td>
                          <button
                            type="button"
                            className="link"
                            onClick={() => remove(b.id)}
                            aria-label={`Remove budget ${b.name}`}
                          >
                            Remove
                          </button>
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
              <ListFoot list={budgets} />
            </>
          )
        }
      </Await>
      {writable && (
        <form onSubmit={create} className="form inline-form" noValidate>
          <h3>New budget</h3>
          <label>
            Name <input value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} />
          </label>
          <label>
            Covers{' '}
            <select value={form.kind} onChange={(e) => setForm({ ...form, kind: e.target.value })}>
              {SCOPES.map(([value, label]) => (
                <option key={value} value={value}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          <label>
            Which (id or name){' '}
            <input value={form.id} onChange={(e) => setForm({ ...form, id: e.target.value })} />
          </label>
          <label>
            Amount ({currency}){' '}
            <input
              inputMode="decimal"
              value={form.amount}
              onChange={(e) => setForm({ ...form, amount: e.target.value })}
            />
          </label>
          <label>
            Period{' '}
            <select value={form.period} onChange={(e) => setForm({ ...form, period: e.target.value })}>
              <option value="month">Calendar month</option>
              <option value="cycle">Billing cycle</option>
            </select>
          </label>
          <label>
            When reached{' '}
            <select
              value={form.enforcement}
              onChange={(e) => setForm({ ...form, enforcement: e.target.value })}
            >
              <option value="hard">Block</option>
              <option value="soft">Alert only</option>
            </select>
          </label>
          {fieldError && (
            <p className="field-error" role="alert">
              {fieldError}
            </p>
          )}
          {error && <ErrorNote error={error} />}
          <button type="submit" className="primary">
            Add budget
          </button>
        </form>
      )}
    </Panel>
  );
}
