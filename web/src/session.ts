/**
 * The credential the page calls the API with: an API key typed into the sign-in form, or the embed token
 * the host app opened the page with. Kept in sessionStorage (this tab only), never in a cookie.
 */
const CREDENTIAL = 'tally.credential';
const ORG = 'tally.org';

export const isEmbedToken = (secret: string) => secret.startsWith('tally_em_');

export function readCredential(): string | null {
  return sessionStorage.getItem(CREDENTIAL);
}

export function saveCredential(secret: string): void {
  sessionStorage.setItem(CREDENTIAL, secret);
}

export function signOut(): void {
  sessionStorage.removeItem(CREDENTIAL);
  sessionStorage.removeItem(ORG);
}

/** The org an operator picked in the organizations list (org keys and embed tokens have their own). */
export const readChosenOrg = () => sessionStorage.getItem(ORG);
export const chooseOrg = (orgId: string) => sessionStorage.setItem(ORG, orgId);

/** An embed link carries its token (and an optional theme) in the URL fragment: taken once, then removed. */
export function takeEmbedFragment(): { token: string | null; theme: Record<string, string> } {
  const params = new URLSearchParams(location.hash.slice(1));
  const theme: Record<string, string> = {};
  for (const [name, value] of params) {
    if (name.startsWith('--tally-')) theme[name] = value;
  }
  return { token: params.get('token'), theme };
}
