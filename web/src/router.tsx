/** A small history-API router: the paths are the app's public addresses (checkout returns to /usage/payments). */
import {
  type AnchorHTMLAttributes,
  createContext,
  type MouseEvent,
  useContext,
  useEffect,
  useState,
} from 'react';

const LocationContext = createContext<URL>(new URL(location.href));

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  dispatchEvent(new PopStateEvent('popstate'));
}

/**
 * Sets query parameters of the current address in place (an empty value removes one), the others
 * kept (a host app's choices among them): for a choice on a page that a reload should keep.
 */
export function replaceQuery(changes: Record<string, string>): void {
  const url = new URL(location.href);
  for (const [name, value] of Object.entries(changes)) {
    if (value) url.searchParams.set(name, value);
    else url.searchParams.delete(name);
  }
  navigate(`${url.pathname}${url.search}${url.hash}`, true);
}

export function LocationProvider({ children }: { children: React.ReactNode }) {
  const [url, setUrl] = useState(() => new URL(location.href));
  useEffect(() => {
    const update = () => setUrl(new URL(location.href));
    addEventListener('popstate', update);
    return () => removeEventListener('popstate', update);
  }, []);
  return <LocationContext.Provider value={url}>{children}</LocationContext.Provider>;
}

export const useLocation = () => useContext(LocationContext);

export function Link({ href, onClick, ...rest }: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }) {
  const follow = (event: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(event);
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey)
      return;
    event.preventDefault();
    navigate(href);
    scrollTo(0, 0);
  };
  return <a href={href} onClick={follow} {...rest} />;
}
