/** Sign-in for the standalone page: an org API key, or the operator key for the operator view. */
import { type FormEvent, useState } from 'react';
import { createApi } from '../api.ts';
import { saveCredential } from '../session.ts';

export function SignIn({ onSignedIn, problem }: { onSignedIn(secret: string): void; problem?: string }) {
  const [secret, setSecret] = useState('');
  const [error, setError] = useState(problem ?? '');
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const key = secret.trim();
    if (!key) return setError('Enter an API key.');
    setBusy(true);
    try {
      await createApi(key).get('/v1/session');
      saveCredential(key);
      onSignedIn(key);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="standalone">
      <h1>Usage &amp; Billing</h1>
      <p>Sign in with an organization API key, or the operator key to see every organization.</p>
      <form onSubmit={submit} className="signin" noValidate>
        <label htmlFor="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autoComplete="off"
          value={secret}
          onChange={(e) => setSecret(e.target.value)}
          aria-invalid={Boolean(error)}
          aria-describedby={error ? 'api-key-error' : undefined}
        />
        {error && (
          <p id="api-key-error" className="field-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
