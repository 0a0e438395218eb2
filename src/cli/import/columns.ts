/** What an import file may hold: the event fields and usage counts, as CSV header names. */
import { USAGE_KEYS } from '../../domain/pricing.ts';

export type ImportFormat = 'csv' | 'jsonl';

const EVENT_FIELDS = [
  'id',
  'org_id',
  'member',
  'feature',
  'provider',
  'model',
  'occurred_at',
  'surface',
  'workspace',
  'workspace_group',
  'project',
  'conversation_id',
  'message_id',
  'parent_id',
  'metadata',
] as const;

export const CSV_COLUMNS: string[] = [...EVENT_FIELDS, ...USAGE_KEYS];
