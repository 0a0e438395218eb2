/**
 * Which payment provider sells top-ups. With STRIPE_SECRET_KEY: Stripe Checkout through the official
 * SDK (pointed at STRIPE_API_BASE when set). With no Stripe key at all, in demo mode (TALLY_DEMO=1):
 * the local provider, a page served by Tally that completes the top-up without moving money (demo
 * and offline use); outside demo mode, none, for it would hand out credits for free. The local
 * provider can never run while a Stripe key is configured.
 */
import type Stripe from 'stripe';
import type { Config } from '../../config.ts';

export type ProviderKind = 'stripe' | 'local' | 'none';

export function paymentProvider(config: Config): ProviderKind {
  if (config.STRIPE_SECRET_KEY) return 'stripe';
  // A webhook secret alone means Stripe is half set up: refuse rather than fall back to free credits.
  if (config.STRIPE_WEBHOOK_SECRET) return 'none';
  return config.TALLY_DEMO === '1' ? 'local' : 'none';
}

export const localProviderEnabled = (config: Config): boolean => paymentProvider(config) === 'local';

const clients = new WeakMap<Config, Stripe>();

/** The Stripe SDK, loaded when first needed: most processes, and every test without payments, never do. */
export const stripeSdk = async (): Promise<typeof Stripe> => (await import('stripe')).default;

/** The SDK client for this configuration (one per config, so its HTTP agent is reused). */
export async function stripeClient(config: Config): Promise<Stripe> {
  let client = clients.get(config);
  if (client) return client;
  const Stripe = await stripeSdk();
  // Webhook verification needs no API key; the SDK still wants one to construct.
  const key = config.STRIPE_SECRET_KEY ?? 'sk_unset_webhook_verification_only';
  const base = config.STRIPE_API_BASE ? new URL(config.STRIPE_API_BASE) : null;
  client = new Stripe(key, {
    maxNetworkRetries: 2,
    timeout: 20_000,
    telemetry: false,
    ...(base
      ? {
          host: base.hostname,
          port: base.port || (base.protocol === 'https:' ? 443 : 80),
          protocol: base.protocol === 'http:' ? ('http' as const) : ('https' as const),
        }
      : {}),
  });
  clients.set(config, client);
  return client;
}
