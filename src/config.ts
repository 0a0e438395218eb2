/** Configuration from the environment, validated once at start with one message per bad value. */
import { z } from 'zod';
import { Ratio } from './domain/money.ts';

const decimal = (name: string, min: string) =>
  z.string().refine((v) => /^\d+(\.\d+)?$/.test(v) && Ratio.parse(v).cmp(Ratio.parse(min)) >= 0, {
    message: `${name} must be a decimal number of at least ${min}`,
  });

/** A whole number in [min, max], said in words when it is not (zod's own wording names types). */
const integer = (min: number, max?: number) => {
  const range = max === undefined ? `of at least ${min}` : `from ${min} to ${max}`;
  return z
    .string()
    .refine((v) => /^\d+$/.test(v) && Number(v) >= min && (max === undefined || Number(v) <= max), {
      message: `must be a whole number ${range}`,
    })
    .transform(Number);
};

const ORIGIN_EXAMPLE =
  'origins such as https://app.example.com, comma-separated (no path, no trailing slash)';
const isOrigin = (o: string) => URL.canParse(o) && new URL(o).origin === o;
const commaList = (v: string) =>
  v
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);

const url = z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' });

const schema = z.object({
  PORT: integer(0, 65535).default(4100),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  DATABASE_READ_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional(),
  TALLY_DATA_DIR: z.string().min(1).default('./.tally'),
  TALLY_ADMIN_KEY: z
    .string()
    .min(24, 'must be at least 24 characters')
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
    .optional(),
  TALLY_DEMO: z.enum(['0', '1'], { message: 'must be 0 or 1' }).default('1'),
  TALLY_PUBLIC_URL: url.optional(),
  TALLY_MAX_EVENT_COST: decimal('TALLY_MAX_EVENT_COST', '0.000001').default('1000'),
  TALLY_DEFAULT_MARKUP: decimal('TALLY_DEFAULT_MARKUP', '0').default('1.5'),
  TALLY_BODY_LIMIT_BYTES: integer(1024).default(5 * 1024 * 1024),
  /** Requests per second per key, shared by all processes (0: no limit), and the burst a key may send at once. */
  TALLY_RATE_LIMIT_PER_SECOND: integer(0).default(10_000),
  TALLY_RATE_LIMIT_BURST: integer(1).default(20_000),
  /** Reverse proxies in front of Tally: the client address is the one the farthest of them saw (X-Forwarded-For). */
  TALLY_TRUSTED_PROXIES: integer(0, 10).default(0),
  /** Browser origins allowed to call the API (CORS), comma-separated; unset: none. */
  TALLY_CORS_ORIGINS: z
    .string()
    .transform(commaList)
    .refine((list) => list.every(isOrigin), { message: `must be ${ORIGIN_EXAMPLE}` })
    .default([]),
  /**
   * Sites that may show the web app in a frame (CSP frame-ancestors): `*` (any, the default: the
   * page holds no ambient credential), `none`, or origins, comma-separated.
   */
  TALLY_FRAME_ANCESTORS: z
    .string()
    .transform((v): '*' | 'none' | string[] => {
      const word = v.trim();
      return word === '*' || word === 'none' ? word : commaList(v);
    })
    .refine((v) => typeof v === 'string' || (v.length > 0 && v.every(isOrigin)), {
      message: `must be *, none, or ${ORIGIN_EXAMPLE}`,
    })
    .default('*'),
  TALLY_LOG: z.enum(['json', 'off'], { message: 'must be json or off' }).default('json'),
  TALLY_JOBS: z.enum(['0', '1'], { message: 'must be 0 or 1' }).default('1'),
  /** Node processes serving HTTP on the one port (node:cluster); more than 1 needs DATABASE_URL. */
  TALLY_WORKERS: integer(1, 64).default(1),
  STRIPE_SECRET_KEY: z
    .string()
    .regex(/^(sk|rk)_/, 'must start with sk_ or rk_')
    .optional(),
  STRIPE_WEBHOOK_SECRET: z.string().startsWith('whsec_', 'must start with whsec_').optional(),
  STRIPE_API_BASE: url.optional(),
  /** The largest top-up one checkout may buy, in the org currency. */
  TALLY_MAX_TOPUP: decimal('TALLY_MAX_TOPUP', '1').default('10000'),
  OPENAI_API_KEY: z.string().min(1).optional(),
  ANTHROPIC_API_KEY: z.string().min(1).optional(),
  TALLY_UPSTREAM_OPENAI_URL: url.default('https://api.openai.com'),
  TALLY_UPSTREAM_ANTHROPIC_URL: url.default('https://api.anthropic.com'),
  /** Encrypts secrets Tally must read back (an org's own provider key for the gateway). */
  TALLY_SECRET_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  /** 1: webhooks may go to loopback, private and other non-public addresses (development, tests). */
  TALLY_WEBHOOK_ALLOW_PRIVATE: z.enum(['0', '1'], { message: 'must be 0 or 1' }).default('0'),
  /** A webhook endpoint whose every attempt failed for this many days since its last success is disabled. */
  TALLY_WEBHOOK_DISABLE_AFTER_DAYS: integer(1, 365).default(5),
  /** The gateway bills a stream every this many streamed output tokens (at least). */
  TALLY_GATEWAY_INCREMENT_TOKENS: integer(1, 10_000).default(16),
});

export type Config = z.infer<typeof schema>;

export class ConfigError extends Error {}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable counts as unset, as in most deployment tools.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(present);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
  throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
}

/** The address users reach Tally at, for links in answers: TALLY_PUBLIC_URL, else `fallback`; no trailing slash. */
export const publicBase = (config: Config, fallback: string): string =>
  (config.TALLY_PUBLIC_URL ?? fallback).replace(/\/+$/, '');
