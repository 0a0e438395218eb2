/** Building blocks of the request and response contracts; the OpenAPI document is generated from them. */
import { z } from '@hono/zod-openapi';
import { FIRST_YEAR, isCalendarDate, isTimeZone, LAST_YEAR } from '../domain/calendar.ts';
import { ROLES } from '../domain/permissions.ts';
import { USAGE_KEYS, type UsageKey } from '../domain/pricing.ts';

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    code: z.string(),
    param: z.string().optional(),
    request_id: z.string().optional(),
  })
  .openapi('Problem');

const problemContent = { 'application/problem+json': { schema: ProblemSchema } };

/** The error answers every authenticated route may give. */
export const errorResponses = {
  400: { description: 'Malformed request', content: problemContent },
  401: { description: 'Missing, invalid, revoked or expired key', content: problemContent },
  403: { description: 'The key may not do this', content: problemContent },
  404: { description: 'Not found (also: another org)', content: problemContent },
  409: { description: 'Conflict', content: problemContent },
  413: { description: 'Body too large', content: problemContent },
  422: { description: 'A field is invalid; `param` names it', content: problemContent },
} as const;

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

export const body = <T extends z.ZodType>(schema: T) => ({
  body: { content: { 'application/json': { schema } }, required: true },
});

/** A decimal amount as a string: never a JSON number, so no float ever holds it. */
export const Decimal = z
  .string()
  .max(40)
  .regex(/^-?\d+(\.\d+)?$/, 'must be a decimal number written as a string, such as "12.50"')
  .openapi({ example: '12.5' });

export const PositiveDecimal = (maxScale: number) =>
  z
    .string()
    .max(40)
    .regex(
      new RegExp(`^\\d+(\\.\\d{1,${maxScale}})?$`),
      `must be a non-negative decimal string with at most ${maxScale} decimals`,
    )
    // Credits are BIGINT micro-credits (below 9.2 x 10^12 credits) and money NUMERIC(20, 6) or wider:
    // past 12 integer digits a value would overflow its column and answer a 500.
    .regex(/^\d{1,12}(\.|$)/, 'must be below 1 000 000 000 000');

/**
 * Credits that go into an org's balance at once (a grant, a cycle's plan allowance): below a
 * billion, so the BIGINT balance holds thousands of the largest.
 */
export const GrantedCredits = PositiveDecimal(6).regex(
  /^\d{1,9}(\.|$)/,
  'must be below 1 000 000 000 credits',
);

/** Required text: not empty, not only spaces, at most `max` characters. */
export const Text = (max: number) => z.string().min(1).max(max).regex(/\S/, 'must not be blank');
export const OptionalText = (max: number) => z.string().max(max).nullish();

/** The fields of a usage object (every kind optional), each a count of the given schema. */
export const usageShape = <T extends z.ZodType>(count: T) =>
  Object.fromEntries(USAGE_KEYS.map((k) => [k, count.optional()])) as Record<UsageKey, z.ZodOptional<T>>;

export const Currency = z.enum(['EUR', 'USD']);
export const Role = z.enum(ROLES);
export const BillingMode = z.enum(['credits', 'byom', 'byok']);
export const TimeZone = z
  .string()
  .max(64)
  .refine(isTimeZone, 'must be an IANA time zone such as Europe/Berlin');
export const CalendarDate = z
  .string()
  .max(10)
  .refine(isCalendarDate, `must be a date as YYYY-MM-DD, in the years ${FIRST_YEAR} to ${LAST_YEAR}`);
export const Timestamp = z.iso
  .datetime({
    offset: true,
    message: 'must be an RFC 3339 time such as 2026-01-31T12:00:00Z',
  })
  // 9999-12-31T23:59:59-12:00 is in year 10 000 in UTC, which Postgres cannot read back as written.
  .refine((at) => new Date(at).getUTCFullYear() <= 9999, 'must be before the year 10000 in UTC');

export const Id = (prefix: string) =>
  z
    .string()
    .max(64)
    .openapi({ example: `${prefix}_4f9Qk2aLx0mN8pR1sT7v` });

export const OrgParam = z.object({ org: Id('org').openapi({ param: { name: 'org', in: 'path' } }) });

export const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  cursor: z.string().max(512).optional(),
});

export const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({ data: z.array(item), has_more: z.boolean(), next_cursor: z.string().nullable() });
