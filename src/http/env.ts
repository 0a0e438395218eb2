import type { Ctx } from '../services/context.ts';

/** What middleware leaves on the request for handlers. */
export interface AppEnv {
  Variables: {
    requestId: string;
    ctx: Ctx;
  };
}
