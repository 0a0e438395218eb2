/**
 * The credential the page calls the API with: an API key typed into the sign-in form, or the embed token
 * the host app opened the page with. Kept in sessionStorage (this tab only), never in a cookie.
 */
const CREDENTIAL = 'tally.credential';
const ORG = 'tally.org';
const LOCALE = 'tally.locale';

/**
 * Browsers that block third-party storage refuse sessionStorage to the page framed by a host app:
 * it then keeps the credential in memory, for as long as the frame's document lives.
 */
function openStore(): Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> {
  try {
    const storage = window.sessionStorage;
    storage.getItem(CREDENTIAL);
    return storage;
  } catch {
    const memory = new Map<string, string>();
    return {
      getItem: (name) => memory.get(name) ?? null,
      setItem: (name, value) => void memory.set(name, value),
      removeItem: (name) => void memory.delete(name),
    };
  }
}
const store = openStore();

export const isEmbedToken = (secret: string) => secret.startsWith('tally_em_');

export function readCredential(): string | null {
  return store.getItem(CREDENTIAL);
}

export function saveCredential(secret: string): void {
  store.setItem(CREDENTIAL, secret);
}

export function signOut(): void {
  store.removeItem(CREDENTIAL);
  store.removeItem(ORG);
}

/** The org an operator picked in the organizations list (org keys and embed tokens have their own). */
export const readChosenOrg = () => store.getItem(ORG);
export const chooseOrg = (orgId: string) => store.setItem(ORG, orgId);

/** The locale numbers and dates are shown in: the host app's choice for its user, else the browser's. */
export const readLocale = (): string => store.getItem(LOCALE) ?? navigator.language;

function saveLocale(tag: string | null): void {
  if (!tag) return;
  try {
    store.setItem(LOCALE, Intl.getCanonicalLocales(tag)[0]!);
  } catch {
    // Not a language tag: keep the browser's.
  }
}

const OVERVIEW_QUERY = 'tally.overview';

/**
 * The overview's address as the reader left it (its period tabs, period and user): the app's links
 * back to the overview lead there, so a host app's tabs and the reader's choice survive a visit to
 * another page.
 */
export const overviewHref = (): string => {
  const query = store.getItem(OVERVIEW_QUERY);
  return query ? `/usage?${query}` : '/usage';
};
export const keepOverviewQuery = (query: string) => store.setItem(OVERVIEW_QUERY, query);

/** The overview's choices a host app may add to an embed link (see screens/Overview.tsx). */
const OVERVIEW_CHOICES = ['periods', 'period'];

/** The page to open, with the overview choices the link carries added to its query. */
function withOverviewChoices(next: string, params: URLSearchParams): string {
  const url = new URL(next, location.origin);
  for (const name of OVERVIEW_CHOICES) {
    const value = params.get(name);
    if (value !== null) url.searchParams.set(name, value);
  }
  return `${url.pathname}${url.search}`;
}

/**
 * An embed link carries its token (and an optional theme, locale, page and overview choices) in the
 * URL fragment: taken once, then removed from the address.
 */
function takeEmbedFragment(): { token: string | null; theme: Record<string, string>; next: string } {
  const params = new URLSearchParams(location.hash.slice(1));
  saveLocale(params.get('locale'));
  const theme: Record<string, string> = {};
  for (const [name, value] of params) {
    if (name.startsWith('--tally-')) theme[name] = value;
  }
  // Where to open, e.g. the quota page; only a page of this app, never another site.
  const next = params.get('next') ?? '';
  const page = /^\/usage(\/[\w/.-]*)?(\?[^#]*)?$/.test(next) ? next : '/usage';
  return { token: params.get('token'), theme, next: withOverviewChoices(page, params) };
}

/**
 * Opening an embed link: its token replaces whatever this tab held, its theme variables style the
 * page, and the address becomes the page it asked for. Runs before the first render.
 */
export function takeEmbedLink(): void {
  if (!location.pathname.startsWith('/embed')) return;
  const { token, theme, next } = takeEmbedFragment();
  for (const [name, value] of Object.entries(theme)) document.documentElement.style.setProperty(name, value);
  if (token) saveCredential(token);
  history.replaceState(
    null,
    '',
    location.pathname === '/embed' ? next : `${location.pathname}${location.search}`,
  );
}
