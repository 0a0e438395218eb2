/** Names for the generated OpenAPI schemas the hand-written client speaks. */
import type { components } from './generated/openapi.ts';

type Schemas = components['schemas'];

export type UsageEvent = Schemas['UsageEvent'];
export type Usage = Schemas['Usage'];
export type EventResult = Schemas['EventResult'];
export type IngestAnswer = Schemas['IngestAnswer'];
export type AuthorizeRequest = Schemas['Authorize'];
export type Authorization = Schemas['Authorization'];
export type AuthorizationIncrement = Schemas['AuthorizationIncrement'];
export type Capture = Schemas['Capture'];
export type CaptureRequest = Schemas['CaptureInput'];
/** `usage` (since the previous increment) or `usage_total` (the call so far): exactly one. */
export type IncrementRequest = { usage: Usage } | { usage_total: Usage };
export type Void = Schemas['Void'];
export type Balance = Schemas['Balance'];
export type EmbedTokenRequest = Schemas['CreateEmbedToken'];
export type EmbedToken = Schemas['EmbedToken'];
export type ProblemBody = Schemas['Problem'];

/** An event as `track()` takes it: the id and the time default to a fresh id and now. */
export type TrackedEvent = Omit<UsageEvent, 'id' | 'occurred_at'> & { id?: string; occurred_at?: string };
