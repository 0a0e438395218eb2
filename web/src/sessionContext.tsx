/** Who is signed in, on which org, and what they may do: shared by every screen. */
import { createContext, useContext } from 'react';
import type { Api } from './api.ts';
import type { Formats } from './format.ts';
import type { Org, Session } from './types.ts';

export interface SessionValue {
  api: Api;
  session: Session;
  /** The org on screen (null: an operator who has not picked one). */
  org: Org | null;
  formats: Formats;
  embedded: boolean;
  can(permission: string): boolean;
}

export const SessionContext = createContext<SessionValue | null>(null);

export function useSession(): SessionValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession outside the signed-in app');
  return value;
}

/** The org on screen, for screens that only render once one is chosen. */
export function useOrg(): { org: Org; formats: Formats; api: Api; can(permission: string): boolean } {
  const value = useSession();
  if (!value.org) throw new Error('No organization chosen');
  return { ...value, org: value.org };
}
