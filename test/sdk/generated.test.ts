import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { GENERATED_TYPES_PATH, renderOpenApiTypes } from '../../sdk/scripts/generateTypes.ts';

it('sdk/src/generated/openapi.ts is exactly what the served OpenAPI document generates (run npm run sdk:generate)', async () => {
  const committed = readFileSync(GENERATED_TYPES_PATH, 'utf8');
  const regenerated = await renderOpenApiTypes();
  expect(committed === regenerated, 'stale or hand-edited: run npm run sdk:generate').toBe(true);
});
