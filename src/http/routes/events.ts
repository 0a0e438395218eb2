import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import {
  MAX_USAGE_COUNT,
  METADATA_KEY_MAX_CHARS,
  type ROLLUP_KEY_FIELDS,
  rollupKeyProblem,
} from '../../domain/usageEvent.ts';
import { ingestEvents } from '../../services/events/ingestEvents.ts';
import type { AppEnv } from '../env.ts';
import { body, errorResponses, json, Text, Timestamp, usageShape } from '../schemas.ts';

/** A count in an event's usage (also a hold's estimate); a bigger one is refused as absurd. */
export const Count = z
  .int('must be a whole number no larger than 2^53 - 1')
  .min(0, 'must not be negative')
  .max(MAX_USAGE_COUNT, 'must be at most 1 000 000 000 (one event counting more is refused as absurd)');

export const UsageSchema = z
  .strictObject(usageShape(Count))
  .superRefine((u, ctx) => {
    const input = u.input_tokens ?? 0;
    const cached = (u.cache_read_tokens ?? 0) + (u.cache_write_tokens ?? 0);
    if (cached > input) {
      ctx.addIssue({
        code: 'custom',
        path: ['cache_read_tokens'],
        message: `cache_read_tokens + cache_write_tokens (${cached}) may not exceed input_tokens (${input}), which counts every input token`,
      });
    }
    const cacheWrite = u.cache_write_tokens ?? 0;
    const cacheWrite1h = u.cache_write_1h_tokens ?? 0;
    if (cacheWrite1h > cacheWrite) {
      ctx.addIssue({
        code: 'custom',
        path: ['cache_write_1h_tokens'],
        message: `cache_write_1h_tokens (${cacheWrite1h}) may not exceed cache_write_tokens (${cacheWrite}), which counts every cache write`,
      });
    }
    const audio = u.input_audio_tokens ?? 0;
    if (audio > input) {
      ctx.addIssue({ code: 'custom', path: ['input_audio_tokens'], message: 'may not exceed input_tokens' });
    }
    // Cache writes are text; cache reads and audio overlap only by the cached audio: all three fit
    // in the input only if the writes and the larger of the other two do.
    const cacheRead = u.cache_read_tokens ?? 0;
    if (audio <= input && cached <= input && cacheWrite + Math.max(cacheRead, audio) > input) {
      ctx.addIssue({
        code: 'custom',
        path: ['input_audio_tokens'],
        message: `cache_write_tokens (${cacheWrite}) + input_audio_tokens (${audio}) may not exceed input_tokens (${input}): cache writes are text input`,
      });
    }
    // Cached audio is among both the cache reads and the audio input (and at least the overlap of
    // the two that input_tokens forces: see cachedAudioTokens).
    const cachedAudio = u.cache_audio_read_tokens ?? 0;
    if (cachedAudio > Math.min(cacheRead, audio)) {
      ctx.addIssue({
        code: 'custom',
        path: ['cache_audio_read_tokens'],
        message: `cache_audio_read_tokens (${cachedAudio}) may not exceed cache_read_tokens (${cacheRead}) or input_audio_tokens (${audio}): it counts the tokens among both`,
      });
    }
    if ((u.output_audio_tokens ?? 0) > (u.output_tokens ?? 0)) {
      ctx.addIssue({
        code: 'custom',
        path: ['output_audio_tokens'],
        message: 'may not exceed output_tokens',
      });
    }
  })
  .openapi('Usage');

/** Refuses a call whose rollup dimensions would not fit one index key: a 422 naming the longest. */
export function withinRollupKey(
  call: Partial<Record<(typeof ROLLUP_KEY_FIELDS)[number], string>>,
  ctx: z.RefinementCtx,
): void {
  const problem = rollupKeyProblem(call);
  if (problem) ctx.addIssue({ code: 'custom', path: [problem.field], message: problem.message });
}

const METADATA_MAX_BYTES = 16 * 1024;
/** An optional attribute of a call (surface, workspace, conversation, ...): events and holds alike. */
export const Dimension = z.string().min(1).max(200).optional();
/** A call's free-form metadata; NUL characters and nesting are refused for every body (jsonGuard). */
export const Metadata = z
  .record(z.string().max(METADATA_KEY_MAX_CHARS), z.unknown())
  .refine(
    (m) => Buffer.byteLength(JSON.stringify(m)) <= METADATA_MAX_BYTES,
    `must be at most ${METADATA_MAX_BYTES} bytes as JSON`,
  );

export const EventSchema = z
  .strictObject({
    id: Text(200).openapi({ description: 'Client-chosen; the idempotency key of the event within the org' }),
    org_id: z.string().max(64).optional().openapi({ description: 'Only with an operator key' }),
    member: Text(200).openapi({ description: "The host app's user id (the member's external_id)" }),
    feature: Text(200),
    provider: Text(100),
    model: Text(200),
    occurred_at: Timestamp,
    surface: Dimension,
    workspace: Dimension,
    workspace_group: Dimension,
    project: Dimension,
    conversation_id: Dimension,
    message_id: Dimension,
    parent_id: Dimension,
    usage: UsageSchema,
    metadata: Metadata.optional(),
  })
  .superRefine(withinRollupKey)
  .openapi('UsageEvent');

const EventBatch = z
  .strictObject({
    events: z.array(EventSchema).min(1, 'send 1 to 1 000 events').max(1000, 'send 1 to 1 000 events'),
  })
  .openapi('EventBatch');

const EventResultSchema = z
  .object({
    id: z.string(),
    status: z.enum(['accepted', 'duplicate', 'rejected']),
    credits: z.string().nullable(),
    cost: z.string().nullable(),
    currency: z.string().nullable(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
  })
  .openapi('EventResult');

export const IngestAnswer = z.object({ results: z.array(EventResultSchema) }).openapi('IngestAnswer');

export function eventRoutes(app: OpenAPIHono<AppEnv>, onResults: (statuses: string[]) => void) {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/events',
      tags: ['Usage in'],
      summary: 'Send 1 to 1 000 usage events; one result per event, in request order',
      request: body(EventBatch),
      responses: { 200: json(IngestAnswer, 'Per-event results'), ...errorResponses },
    }),
    async (c) => {
      const results = await ingestEvents(c.get('ctx'), c.req.valid('json').events);
      onResults(results.map((r) => r.status));
      return c.json({ results }, 200);
    },
  );
}
