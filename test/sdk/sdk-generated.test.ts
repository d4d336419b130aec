import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSdkSchema, sdkSchemaPath } from '../../scripts/generate-sdk.js';

/** The SDK's committed types match what openapi-typescript makes of today's openapi.yaml. */
describe('sdk/src/generated/schema.ts', () => {
  it('is up to date with openapi.yaml (run `npm run sdk:generate` when this fails)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanout-sdk-gen-'));
    try {
      const fresh = path.join(dir, 'schema.ts');
      generateSdkSchema(fresh);
      const committed = fs.readFileSync(sdkSchemaPath, 'utf8');
      expect(committed === fs.readFileSync(fresh, 'utf8'), 'sdk/src/generated/schema.ts is stale: run `npm run sdk:generate`').toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
