import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderOpenApiYaml } from '../../src/api/openapi-document.js';
import { REPO } from '../helpers/processes.js';

describe('openapi.yaml', () => {
  it('is the document the route definitions produce (run `npm run openapi` when this fails)', () => {
    const committed = fs.readFileSync(path.join(REPO, 'openapi.yaml'), 'utf8');
    expect(committed).toBe(renderOpenApiYaml());
  });
});
