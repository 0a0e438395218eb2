/** Settings: members and their roles, API keys, webhook endpoints with deliveries and replay. */
import { type FormEvent, useState } from 'react';
import { Await, ErrorNote, ListFoot, Panel } from '../components/states.tsx';
import type { Formats } from '../format.ts';
import { memberLabel } from '../members.ts';
import { useOrg } from '../sessionContext.tsx';
import type { Member, Page } from '../types.ts';
import { useApi } from '../useApi.ts';
import { usePagedList } from '../usePagedList.ts';

const ROLES = ['owner', 'admin', 'billing', 'member', 'viewer'];

/** Runs an API change and reports its failure in place. */
function useAction() {
  const [error, setError] = useState<Error | null>(null);
  const run = async (action: () => Promise<unknown>, then?: () => void) => {
    setError(null);
    try {
      await action();
      then?.();
    } catch (e) {
      setError(e as Error);
    }
  };
  return { error, run };
}

export function SettingsScreen() {
  const { can } = useOrg();
  return (
    <>
      <MembersPanel />
      {can('keys:write') && <ApiKeysPanel />}
      {can('webhooks:write') && <WebhooksPanel />}
    </>
  );
}

function MembersPanel() {
  const { api, org, can } = useOrg();
  const members = usePagedList<Member>(`/v1/orgs/${org.id}/members`, { limit: 100 });
  const { error, run } = useAction();
  const writable = can('members:write');
  // In place, so the pages read stay open.
  const changeRole = (member: Member, role: string) =>
    run(async () => {
      const changed = await api.send<Member>('PATCH', `/v1/orgs/${org.id}/members/${member.id}`, { role });
      members.setRows((rows) => rows.map((m) => (m.id === changed.id ? changed : m)));
    });
  return (
    <Panel title="Members and roles">
      {error && <ErrorNote error={error} />}
      <Await loaded={members.first} what="members">
        {() => (
          <>
            <table className="table cards">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Email</th>
                  <th scope="col">Role</th>
                </tr>
              </thead>
              <tbody>
                {members.rows.map((m) => (
                  <tr key={m.id}>
                    <th scope="row">
                      {memberLabel(m)}
                      {m.status === 'removed' && <span className="tag">removed</span>}
                    </th>
                    <td data-label="Email">{m.email}</td>
                    <td data-label="Role">
                      {writable && m.status === 'active' ? (
                        <RoleChoice member={m} onSave={(role) => changeRole(m, role)} />
                      ) : (
                        m.role
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <ListFoot list={members} end="End of the member list" />
          </>
        )}
      </Await>
    </Panel>
  );
}

/**
 * A member's role, changed only by its own Save: arrow keys on a focused select change its value at
 * once, and a role is not something to change by a stray key press.
 */
function RoleChoice({ member, onSave }: { member: Member; onSave(role: string): void }) {
  const [draft, setDraft] = useState(member.role);
  const label = memberLabel(member);
  return (
    <span className="role-choice">
      <select aria-label={`Role of ${label}`} value={draft} onChange={(e) => setDraft(e.target.value)}>
        {ROLES.map((role) => (
          <option key={role}>{role}</option>
        ))}
      </select>
      {draft !== member.role && (
        <>
          <button type="button" className="primary" onClick={() => onSave(draft)}>
            Save role
          </button>
          <button type="button" className="link" onClick={() => setDraft(member.role)}>
            Cancel
          </button>
        </>
      )}
    </span>
  );
}

interface ApiKey {
  id: string;
  name: string;
  role: string;
  key_hint: string;
  created_at: string;
  revoked_at: string | null;
}

function ApiKeysPanel() {
  const { api, org, formats } = useOrg();
  const keys = useApi<Page<ApiKey>>(`/v1/orgs/${org.id}/api_keys`, { limit: 100 });
  const [name, setName] = useState('');
  const [role, setRole] = useState('member');
  const [secret, setSecret] = useState('');
  const { error, run } = useAction();
  const create = (event: FormEvent) => {
    event.preventDefault();
    run(async () => {
      const created = await api.send<{ key: string }>('POST', `/v1/orgs/${org.id}/api_keys`, {
        name: name.trim(),
        role,
      });
      setSecret(created.key);
      setName('');
    }, keys.reload);
  };
  return (
    <Panel title="API keys">
      {secret && (
        <div className="note ok" role="status">
          Copy the new key now, it is shown only once: <code>{secret}</code>
        </div>
      )}
      {error && <ErrorNote error={error} />}
      <Await loaded={keys} what="API keys">
        {(page) =>
          page.data.length === 0 ? (
            <p className="empty">No API keys.</p>
          ) : (
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Role</th>
                  <th scope="col">Ends with</th>
                  <th scope="col">Created</th>
                  <th scope="col">Status</th>
                </tr>
              </thead>
              <tbody>
                {page.data.map((k) => (
                  <tr key={k.id}>
                    <th scope="row">{k.name}</th>
                    <td>{k.role}</td>
                    <td>
                      <code>…{k.key_hint}</code>
                    </td>
                    <td>{formats.date(k.created_at)}</td>
                    <td>
                      {k.revoked_at ? (
                        'revoked'
                      ) : (
                        <button
                          type="button"
                          className="link"
                          aria-label={`Revoke key ${k.name}`}
                          onClick={() =>
                            run(() => api.send('DELETE', `/v1/orgs/${org.id}/api_keys/${k.id}`), keys.reload)
                          }
                        >
                          Revoke
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Await>
      <form onSubmit={create} className="form inline-form" noValidate>
        <label>
          Key name <input value={name} onChange={(e) => setName(e.target.value)} required />
        </label>
        <label>
          Role{' '}
          <select value={role} onChange={(e) => setRole(e.target.value)}>
            {ROLES.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <button type="submit" className="primary" disabled={!name.trim()}>
          Create key
        </button>
      </form>
    </Panel>
  );
}

interface Endpoint {
  id: string;
  url: string;
  description: string | null;
  event_types: string[];
  /** Nothing is sent while true; new messages wait for it, to go out in order once it is enabled. */
  disabled: boolean;
  disabled_at: string | null;
  /** failing: the delivery worker disabled it after days of failed attempts; manual: an admin did. */
  disabled_reason: 'failing' | 'manual' | null;
  /** The first failed attempt since the last success; null while the last attempt succeeded. */
  failing_since: string | null;
}
interface Delivery {
  id: string;
  type?: string;
  status: string;
  attempts: number;
  last_status_code: number | null;
  created_at: string;
}

/** What an endpoint's state says, and its tone: failing warns, disabled is an error. */
function endpointState(e: Endpoint, formats: Formats): { text: string; tone: 'ok' | 'warn' | 'error' } {
  if (e.disabled) {
    const when = e.disabled_at ? ` ${formats.date(e.disabled_at)}` : '';
    const why = e.disabled_reason === 'manual' ? 'by an admin' : 'after failing for days';
    return { text: `Disabled${when} (${why})`, tone: 'error' };
  }
  if (e.failing_since) return { text: `Failing since ${formats.date(e.failing_since)}`, tone: 'warn' };
  return { text: 'Active', tone: 'ok' };
}

function EndpointState({ endpoint }: { endpoint: Endpoint }) {
  const { formats } = useOrg();
  const { text, tone } = endpointState(endpoint, formats);
  return <span className={`endpoint-state tone-${tone}`}>{text}</span>;
}

function WebhooksPanel() {
  const { api, org } = useOrg();
  const base = `/v1/orgs/${org.id}/webhook_endpoints`;
  const endpoints = useApi<Page<Endpoint>>(base, { limit: 100 });
  const [url, setUrl] = useState('');
  const [secret, setSecret] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const [switched, setSwitched] = useState('');
  const { error, run } = useAction();
  const setDisabled = (e: Endpoint, disabled: boolean) =>
    run(async () => {
      setSwitched('');
      await api.send('PATCH', `${base}/${e.id}`, { disabled });
      // Enabling sends what waited for the endpoint: say so, as it may be a burst of old messages.
      setSwitched(
        disabled
          ? `${e.url} is disabled: new messages wait for it, none is lost.`
          : `${e.url} is enabled: the messages that waited for it are being delivered now, in order.`,
      );
    }, endpoints.reload);
  const create = (event: FormEvent) => {
    event.preventDefault();
    run(async () => {
      const created = await api.send<{ secret: string }>('POST', base, { url: url.trim() });
      setSecret(created.secret);
      setUrl('');
    }, endpoints.reload);
  };
  return (
    <Panel title="Webhooks">
      {secret && (
        <div className="note ok" role="status">
          Signing secret (shown once): <code>{secret}</code>
        </div>
      )}
      {switched && (
        <div className="note ok" role="status">
          {switched}
        </div>
      )}
      {error && <ErrorNote error={error} />}
      <Await loaded={endpoints} what="webhook endpoints">
        {(page) =>
          page.data.length === 0 ? (
            <p className="empty">No webhook endpoints.</p>
          ) : (
            <ul className="endpoints">
              {page.data.map((e) => (
                <li key={e.id}>
                  <div className="row">
                    <code className="grow">{e.url}</code>
                    <span className="muted">
                      {e.event_types.length ? e.event_types.join(', ') : 'all events'}
                    </span>
                    <EndpointState endpoint={e} />
                    <button
                      type="button"
                      className="link"
                      onClick={() => setOpen(open === e.id ? null : e.id)}
                      aria-expanded={open === e.id}
                    >
                      Deliveries
                    </button>
                    <button
                      type="button"
                      className="link"
                      aria-label={`${e.disabled ? 'Enable' : 'Disable'} endpoint ${e.url}`}
                      onClick={() => setDisabled(e, !e.disabled)}
                    >
                      {e.disabled ? 'Enable' : 'Disable'}
                    </button>
                    <button
                      type="button"
                      className="link"
                      aria-label={`Delete endpoint ${e.url}`}
                      onClick={() => run(() => api.send('DELETE', `${base}/${e.id}`), endpoints.reload)}
                    >
                      Delete
                    </button>
                  </div>
                  {open === e.id && <Deliveries path={`${base}/${e.id}/deliveries`} />}
                </li>
              ))}
            </ul>
          )
        }
      </Await>
      <form onSubmit={create} className="form inline-form" noValidate>
        <label>
          Endpoint URL{' '}
          <input
            type="url"
            value={url}
            onChange={(e) => setUrl(e.target.value)}
            placeholder="https://example.com/hooks/tally"
          />
        </label>
        <button type="submit" className="primary" disabled={!url.trim()}>
          Add endpoint
        </button>
      </form>
    </Panel>
  );
}

function Deliveries({ path }: { path: string }) {
  const { api, formats } = useOrg();
  const deliveries = useApi<Page<Delivery>>(path, { limit: 20 });
  const { error, run } = useAction();
  return (
    <div className="deliveries">
      {error && <ErrorNote error={error} />}
      <Await loaded={deliveries} what="deliveries">
        {(page) =>
          page.data.length === 0 ? (
            <p className="empty">Nothing sent yet.</p>
          ) : (
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Event</th>
                  <th scope="col">Status</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Replay</th>
                </tr>
              </thead>
              <tbody>
                {page.data.map((d) => (
                  <tr key={d.id}>
                    <td>{formats.dateTime(d.created_at)}</td>
                    <td>{d.type ?? '—'}</td>
                    <td>
                      {d.status}
                      {d.last_status_code !== null && ` (${d.last_status_code})`}
                    </td>
                    <td>{d.attempts}</td>
                    <td>
                      <button
                        type="button"
                        className="link"
                        onClick={() =>
                          run(() => api.send('POST', `${path}/${d.id}/replay`), deliveries.reload)
                        }
                      >
                        Replay
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Await>
    </div>
  );
}
