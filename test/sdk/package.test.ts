/** The SDK package builds on its own with web-platform types only: no Node API can slip in. */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const SDK = join(import.meta.dirname, '../../sdk');

it('typechecks against the ES2022 and DOM libraries alone (edge runtimes), without @types/node', async () => {
  const tsc = join(import.meta.dirname, '../../node_modules/typescript/bin/tsc');
  const result = await promisify(execFile)(process.execPath, [
    tsc,
    '-p',
    join(SDK, 'tsconfig.json'),
    '--noEmit',
  ])
    .then(() => ({ code: 0, stdout: '' }))
    .catch((error: { code: number; stdout: string }) => error);
  expect(result.stdout).toBe('');
  expect(result.code).toBe(0);
});

it('imports no node: module and declares no dependency', () => {
  const files = readdirSync(join(SDK, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) =>
    f.endsWith('.ts'),
  );
  expect(files).toContain('client.ts');
  for (const file of files) {
    expect(readFileSync(join(SDK, 'src', file), 'utf8'), file).not.toMatch(/from ['"]node:/);
  }
  const manifest = JSON.parse(readFileSync(join(SDK, 'package.json'), 'utf8'));
  expect(manifest.dependencies).toBeUndefined();
  expect(manifest.exports['.']).toEqual({ types: './dist/index.d.ts', import: './dist/index.js' });
});
