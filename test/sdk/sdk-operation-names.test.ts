import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import YAML from 'yaml';
import { sdkSchemaPath } from '../../scripts/generate-sdk.js';
import type { operations, paths } from '../../sdk/src/generated/schema.js';
import { REPO } from '../helpers/processes.js';

/**
 * The SDK's generated types name every operation after its operationId (docs/api.md, "Operation
 * names"): `operations['createBatch']` is what `paths['/v1/batches']['post']` refers to, so an
 * SDK user (or a hover in an editor) reads the name rather than a path.
 */

function documentOperations(): Array<{ operationId: string; method: string; path: string }> {
  const doc = YAML.parse(fs.readFileSync(path.join(REPO, 'openapi.yaml'), 'utf8')) as { paths: Record<string, Record<string, { operationId: string }>> };
  return Object.entries(doc.paths).flatMap(([p, item]) => Object.entries(item).map(([method, op]) => ({ operationId: op.operationId, method, path: p })));
}

/** The text of one top-level `export interface <name> { … }` block of the generated file. */
function interfaceBlock(source: string, name: string): string {
  const start = source.indexOf(`export interface ${name} {\n`);
  expect(start, `export interface ${name}`).toBeGreaterThanOrEqual(0);
  return source.slice(start, source.indexOf('\n}\n', start));
}

describe('the SDK types name operations after their operationIds', () => {
  const source = fs.readFileSync(sdkSchemaPath, 'utf8');

  it('has one entry in `operations` per operationId of openapi.yaml', () => {
    const keys = [...interfaceBlock(source, 'operations').matchAll(/^ {4}(\w+): \{$/gm)].map((m) => m[1]);
    expect(keys.sort()).toEqual(documentOperations().map((o) => o.operationId).sort());
  });

  it('refers every method of `paths` to its named operation, none typed inline', () => {
    const refs = [...interfaceBlock(source, 'paths').matchAll(/^ {8}(get|put|post|delete|patch|head|options|trace): (.+);$/gm)]
      .filter((m) => m[2] !== 'never' && !m[0].includes('?: never'))
      .map((m) => `${m[1]} ${m[2]}`);
    const expected = documentOperations().map((o) => `${o.method} operations["${o.operationId}"]`);
    expect(refs.sort()).toEqual(expected.sort());
  });

  // Checked by the type checker (`npx tsc --noEmit -p .`, the first step of `npm test`).
  it('types the named operations as the paths use them', () => {
    expectTypeOf<paths['/v1/batches']['post']>().toEqualTypeOf<operations['createBatch']>();
    expectTypeOf<paths['/v1/batches']['get']>().toEqualTypeOf<operations['listBatches']>();
    expectTypeOf<paths['/v1/batches/{id}']['get']>().toEqualTypeOf<operations['getBatch']>();
    expectTypeOf<paths['/v1/batches/{id}/items']['get']>().toEqualTypeOf<operations['listBatchItems']>();
    expectTypeOf<operations['getBatch']['parameters']['path']>().toEqualTypeOf<{ id: string }>();
  });
});
