import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { GENERATED_TYPES_PATH, renderOpenApiTypes } from '../../sdk/scripts/generateTypes.ts';

const ROUTES_DIR = join(import.meta.dirname, '../../src/http/routes');

it('sdk/src/generated/openapi.ts is exactly what the served OpenAPI document generates (run npm run sdk:generate)', async () => {
  const committed = readFileSync(GENERATED_TYPES_PATH, 'utf8');
  const regenerated = await renderOpenApiTypes();
  expect(committed === regenerated, 'stale or hand-edited: run npm run sdk:generate').toBe(true);
});

it('names every schema of the OpenAPI document once: a second schema of the same name silently replaces the first', () => {
  const names = readdirSync(ROUTES_DIR)
    .filter((file) => file.endsWith('.ts'))
    .flatMap((file) => [...readFileSync(join(ROUTES_DIR, file), 'utf8').matchAll(/\.openapi\('(\w+)'/g)])
    .map((match) => match[1]!);
  const repeated = names.filter((name, i) => names.indexOf(name) !== i);
  expect(repeated).toEqual([]);
});
