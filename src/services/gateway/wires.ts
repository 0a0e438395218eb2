/** The providers the gateway speaks, by the name its paths give them (`/gateway/<provider>/v1/...`). */
import { anthropicWire } from './anthropic.ts';
import { openaiWire } from './openai.ts';
import type { ProviderWire } from './wire.ts';

const WIRES = { openai: openaiWire, anthropic: anthropicWire };
export type GatewayProvider = keyof typeof WIRES;

/** Whether a path's name is a provider: own names only (`toString`, `__proto__` name none). */
export const isGatewayProvider = (name: string): name is GatewayProvider => Object.hasOwn(WIRES, name);

/** The wire of the provider named so; undefined for any other name. */
export const wireNamed = (name: string): ProviderWire | undefined =>
  isGatewayProvider(name) ? WIRES[name] : undefined;
