/**
 * `npm run sdk:generate`: writes sdk/src/generated/openapi.ts from the OpenAPI document the app
 * serves, built in-process on an empty in-memory database (no server, no network).
 * test/sdk/generated.test.ts regenerates it in memory and fails when the committed file differs.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript';
import { loadConfig } from '../../src/config.ts';
import { prepare } from '../../src/server.ts';
import { openEmbedded } from '../../src/store/db.ts';
import { migrate } from '../../src/store/migrate.ts';

export const GENERATED_TYPES_PATH = fileURLToPath(new URL('../src/generated/openapi.ts', import.meta.url));

/** The document exactly as GET /openapi.json answers it. */
export async function servedOpenApiDocument(): Promise<Record<string, unknown>> {
  const db = await openEmbedded();
  try {
    await migrate(db);
    const tally = await prepare(loadConfig({ TALLY_LOG: 'off', TALLY_JOBS: '0', TALLY_DEMO: '0' }), db);
    const response = await tally.app.request('/openapi.json');
    if (!response.ok) throw new Error(`GET /openapi.json answered ${response.status}`);
    return (await response.json()) as Record<string, unknown>;
  } finally {
    await db.close();
  }
}

export async function renderOpenApiTypes(): Promise<string> {
  const document = await servedOpenApiDocument();
  const nodes = await openapiTS(document as never, { exportType: false });
  return COMMENT_HEADER + astToString(nodes);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(GENERATED_TYPES_PATH, await renderOpenApiTypes());
  process.stdout.write(`Wrote ${GENERATED_TYPES_PATH}\n`);
}
