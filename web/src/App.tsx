/** Signs in (API key or embed token), learns the session and the org, then shows the screen for the path. */
import { type ReactNode, useEffect, useMemo, useState } from 'react';
import { ApiError, createApi } from './api.ts';
import { ErrorNote, Loading } from './components/states.tsx';
import { createFormats } from './format.ts';
import { Link, navigate, useLocation } from './router.tsx';
import { AlertsScreen } from './screens/Alerts.tsx';
import { ConversationScreen } from './screens/Conversation.tsx';
import { DailyScreen } from './screens/Daily.tsx';
import { LimitsScreen } from './screens/Limits.tsx';
import { MonthlyScreen } from './screens/Monthly.tsx';
import { OrgsScreen } from './screens/Orgs.tsx';
import { ByokNotice, OverviewScreen } from './screens/Overview.tsx';
import { CheckoutReturnedTab, PaymentsScreen } from './screens/Payments.tsx';
import { PricingScreen } from './screens/Pricing.tsx';
import { QuotaScreen } from './screens/Quota.tsx';
import { SettingsScreen } from './screens/Settings.tsx';
import { SignIn } from './screens/SignIn.tsx';
import {
  chooseOrg,
  isEmbedToken,
  overviewHref,
  readChosenOrg,
  readCredential,
  readLocale,
  signOut,
} from './session.ts';
import { SessionContext, type SessionValue, useSession as useSessionValue } from './sessionContext.tsx';
import type { Org, Session } from './types.ts';
import { UsageBar } from './usageBar/UsageBar.tsx';

export function App() {
  const [credential, setCredential] = useState(readCredential);
  const checkout = new URLSearchParams(location.search).get('checkout');
  if (!credential && location.pathname === '/usage/payments' && checkout) {
    return <CheckoutReturnedTab outcome={checkout} />;
  }
  if (!credential) return <SignIn onSignedIn={setCredential} />;
  return (
    <SignedIn
      key={credential}
      credential={credential}
      onSignOut={() => {
        signOut();
        setCredential(null);
      }}
    />
  );
}

function SignedIn({ credential, onSignOut }: { credential: string; onSignOut(): void }) {
  const api = useMemo(() => createApi(credential), [credential]);
  const embedded = isEmbedToken(credential);
  const [session, setSession] = useState<Session | null>(null);
  const [org, setOrg] = useState<Org | null>(null);
  const [orgId, setOrgId] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  useEffect(() => {
    api.get<Session>('/v1/session').then((s) => {
      setSession(s);
      // An operator may arrive on a link that names the org (the API's quota_url does).
      const named = new URLSearchParams(location.search).get('org');
      if (!s.org_id && named) chooseOrg(named);
      setOrgId(s.org_id ?? readChosenOrg());
    }, setError);
  }, [api]);
  // An embed token says when it stops working: the page says so then, not at the next click.
  useEffect(() => {
    if (!session?.expires_at) return;
    const timer = setTimeout(
      () => setError(new ApiError(401, 'embed_token_expired', 'The embed token has expired')),
      Date.parse(session.expires_at) - Date.now(),
    );
    return () => clearTimeout(timer);
  }, [session]);
  useEffect(() => {
    if (!orgId) return setOrg(null);
    api.get<Org>(`/v1/orgs/${orgId}`).then(setOrg, setError);
  }, [api, orgId]);

  if (error) {
    if (embedded && error.status === 401) {
      return (
        <main className="standalone">
          <h1>This usage link can no longer be used</h1>
          <p role="alert">{error.message}. Open the usage page again from the application you came from.</p>
        </main>
      );
    }
    if (error.status === 401) return <SignIn onSignedIn={() => location.reload()} problem={error.message} />;
    return (
      <main className="standalone">
        <ErrorNote error={error} retry={() => location.reload()} />
      </main>
    );
  }
  if (!session || (orgId && !org)) return <Loading what="your usage page" />;

  const formats = createFormats(org?.currency ?? 'USD', org?.timezone ?? 'UTC', readLocale());
  const value: SessionValue = {
    api,
    session,
    org,
    formats,
    embedded,
    can: (permission) => session.permissions.includes(permission),
  };
  const pick = (id: string) => {
    chooseOrg(id);
    setOrgId(id);
    navigate('/usage');
  };
  return (
    <SessionContext.Provider value={value}>
      <Screens onSignOut={onSignOut} onPickOrg={pick} />
    </SessionContext.Provider>
  );
}

function Screens({ onSignOut, onPickOrg }: { onSignOut(): void; onPickOrg(id: string): void }) {
  const { pathname } = useLocation();
  const value = useSessionValue();
  if (pathname === '/embed/bar' && value.org) return <UsageBar />;
  const operatorHome = value.session.kind === 'operator' && (!value.org || pathname === '/usage/orgs');
  const screen = operatorHome ? (
    <OrgsScreen onPick={onPickOrg} />
  ) : (
    route(pathname, value.org?.billing_mode === 'byok')
  );
  return (
    <Layout onSignOut={onSignOut} wide={operatorHome}>
      {screen}
    </Layout>
  );
}

/** BYOK orgs' spend is not tracked: the pages of spend and of its limits say so instead. */
const SPEND_PAGES = new Set(['daily', 'monthly', 'limits']);

function route(pathname: string, byok: boolean): ReactNode {
  const [, , page, param] = pathname.split('/');
  if (byok && page && SPEND_PAGES.has(page)) return <ByokNotice query={{ range: '30d' }} />;
  switch (page) {
    case undefined:
    case '':
      return <OverviewScreen />;
    case 'daily':
      return <DailyScreen date={param ?? ''} />;
    case 'monthly':
      return <MonthlyScreen />;
    case 'conversations':
      return <ConversationScreen id={decodeURIComponent(param ?? '')} />;
    case 'payments':
      return <PaymentsScreen />;
    case 'pricing':
      return <PricingScreen />;
    case 'limits':
      return <LimitsScreen />;
    case 'alerts':
      return <AlertsScreen />;
    case 'settings':
      return <SettingsScreen />;
    case 'quota':
      return <QuotaScreen />;
    default:
      return (
        <p className="empty">
          There is no page at {pathname}. <Link href="/usage">Back to the overview</Link>
        </p>
      );
  }
}

function Layout({ children, onSignOut, wide }: { children: ReactNode; onSignOut(): void; wide: boolean }) {
  const { org, session, can, embedded } = useSessionValue();
  const { pathname } = useLocation();
  const links: [string, string, boolean][] = [
    ['/usage', 'Overview', true],
    ['/usage/monthly', 'Monthly history', org?.billing_mode !== 'byok'],
    ['/usage/payments', 'Payments', can('billing:purchase') && org?.billing_mode === 'credits'],
    ['/usage/pricing', 'Pricing', true],
    ['/usage/limits', 'Limits', org?.billing_mode !== 'byok'],
    ['/usage/alerts', 'Alerts', true],
    ['/usage/settings', 'Settings', can('members:read')],
  ];
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <div className="brand">
          <h1 className="title">Usage &amp; Billing</h1>
          {org && !wide && <span className="org-name">{org.name}</span>}
        </div>
        {org && !wide && (
          <nav aria-label="Usage pages">
            <ul>
              {links
                .filter(([, , shown]) => shown)
                .map(([path, label]) => (
                  <li key={path}>
                    <Link
                      href={path === '/usage' ? overviewHref() : path}
                      aria-current={(pathname === '/' ? '/usage' : pathname) === path ? 'page' : undefined}
                    >
                      {label}
                    </Link>
                  </li>
                ))}
            </ul>
          </nav>
        )}
        <div className="who">
          {session.kind === 'operator' && !wide && <Link href="/usage/orgs">All organizations</Link>}
          {!embedded && (
            <button type="button" className="link" onClick={onSignOut}>
              Sign out
            </button>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}
